"""Public pages kept rendered for up to ``PAGE_CACHE_SECONDS``, and never less true for it.

Rendering the job list or a listing costs tens of milliseconds of templates; most visitors are
anonymous and ask for the same pages. So a page an anonymous visitor gets (no session, no
pending messages) is kept in the cache, zlib-compressed, with what it showed of each listing on
it: status, deadline and last change. Before a kept page is served again:

- one query by primary key re-reads those listings: if any of them closed, reopened, was
  removed or edited since, the page is rendered afresh, so a kept page never shows a closed
  listing as open nor an edit older than it;
- it is dropped once the first of its deadlines passes, for the same reason;
- its counts (views, the list's count and the filter numbers) are at most a minute old: the
  page is kept ``PAGE_CACHE_SECONDS`` (30) at most, and a list page built on the counts snapshot
  only as long as the snapshot is under ``FACET_CACHE_SECONDS`` old (``postings/facets.py``).

The CSRF tokens in its forms are the only part that belongs to a visitor: they are kept as a
placeholder and filled in with this visitor's token on the way out. The cache holds what was
rendered in the last half minute, so its size follows the render rate, not the number of
addresses anyone can make up. A cache that is down means rendering every time, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils import timezone

from . import counters
from .models import Posting

logger = logging.getLogger(__name__)

_CSRF_VALUE = re.compile(rb'(name="csrfmiddlewaretoken" value=")[^"]*(")')
_PLACEHOLDER = b"\x00csrf\x00"
MESSAGES_COOKIE = "messages"  # django.contrib.messages' CookieStorage

# Status, deadline and last change, the times in microseconds since 1970: PostgreSQL works them
# out itself, faster than Django's loader parses timestamps (the kept page's one query).
Fingerprint = tuple[str, int | None, int | None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Kept:
    content: bytes  # compressed, CSRF tokens replaced by the placeholder
    content_type: str
    shown: dict[int, Fingerprint]  # listing id -> its fingerprint as rendered
    until: float  # time.time() past which it is not served


def fingerprint(posting: Posting) -> Fingerprint:
    return (posting.status, _micros(posting.deadline), _micros(posting.updated_at))


def _micros(moment: datetime | str | int | None) -> int | None:
    """Microseconds since 1970 (SQLite's cursor gives naive UTC, or text)."""
    if moment is None or isinstance(moment, int):
        return moment
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def applies_to(request: HttpRequest) -> bool:
    """Only anonymous GETs with nothing personal to show are kept and served from the cache."""
    return (
        settings.PAGE_CACHE_SECONDS > 0
        and request.method == "GET"
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
        and MESSAGES_COOKIE not in request.COOKIES
    )


def key_for(request: HttpRequest, kind: str) -> str:
    address = f"{request.scheme}://{request.get_host()}{request.get_full_path()}"
    return f"page:v2:{kind}:{hashlib.sha256(address.encode()).hexdigest()}"


def serve(
    request: HttpRequest,
    kind: str,
    render: Callable[[], tuple[HttpResponse, Iterable[Posting], float]],
    visit: counters.Visit | None = None,
) -> HttpResponse:
    """The kept page when it is still true, else ``render()``: (response, the listings it shows,
    the most seconds it may be kept). A ``visit`` is counted when a kept page is served (the
    rendering counts its own), in the same round trip as the kept page is fetched if it can."""
    if not applies_to(request):
        return render()[0]
    key = key_for(request, kind)
    kept, counted = _get(key, visit)
    if kept is not None and _still_true(kept):
        if visit is not None and counted is None:
            visit.count()
        return _response(request, kept)
    try:
        response, postings, seconds = render()
        if hasattr(response, "render"):
            response.render()
    except Exception:  # no such listing now (404), or a failure: not a view of it
        if counted:
            visit.undo()  # type: ignore[union-attr]
        raise
    if counted and response.status_code != 200:  # counted ahead, but not the listing's page
        visit.undo()  # type: ignore[union-attr]
    if response.status_code == 200 and not response.cookies:
        _keep(key, response, list(postings), seconds)
    return response


def _get(key: str, visit: counters.Visit | None = None) -> tuple[Kept | None, bool | None]:
    """The kept page, if any, and whether the visit was counted with it (None: not yet)."""
    call = visit.script_call() if visit is not None else None
    try:
        if call is not None:
            kept, counted = cache.get_with_script(key, *call)  # type: ignore[attr-defined]
            return kept, None if counted == -1 else bool(counted)
        return cache.get(key), None
    except Exception:
        logger.exception("page cache unavailable")
        return None, None


def _still_true(kept: Kept) -> bool:
    if time.time() >= kept.until:
        return False
    if not kept.shown:
        return True
    return _fingerprints(list(kept.shown)) == kept.shown


def _fingerprints(ids: list[int]) -> dict[int, Fingerprint]:
    """Status, deadline and last change of these listings as stored now. Plain SQL: this runs on
    every kept page served, where the ORM's compiling cost more than the query."""
    marks = ", ".join(["%s"] * len(ids))
    if connection.vendor == "postgresql":
        columns = "id, status, " + ", ".join(
            f"(extract(epoch FROM {name}) * 1000000)::bigint" for name in ("deadline", "updated_at")
        )
    else:
        columns = "id, status, deadline, updated_at"
    with connection.cursor() as cursor:
        cursor.execute(
            # Only names and placeholders are formatted in; the ids are parameters.
            f"SELECT {columns} FROM {Posting._meta.db_table} WHERE id IN ({marks})",  # noqa: S608
            ids,
        )
        return {
            pk: (status, _micros(deadline), _micros(updated))
            for pk, status, deadline, updated in cursor.fetchall()
        }


def _keep(key: str, response: HttpResponse, postings: list[Posting], seconds: float) -> None:
    now = timezone.now()
    # A quarter of it at random: pages rendered together (after a deploy, a new snapshot) would
    # otherwise all expire together and be rendered again at once.
    seconds = min(seconds, settings.PAGE_CACHE_SECONDS) * random.uniform(0.75, 1.0)
    for posting in postings:  # gone from the cache when the first deadline passes
        if posting.deadline is not None and posting.deadline > now:
            seconds = min(seconds, (posting.deadline - now).total_seconds())
    if seconds < 1:
        return
    content = _CSRF_VALUE.sub(rb"\1" + _PLACEHOLDER + rb"\2", response.content)
    kept = Kept(
        content=zlib.compress(content, 1),
        content_type=response["Content-Type"],
        shown={posting.pk: fingerprint(posting) for posting in postings},
        until=time.time() + seconds,
    )
    try:
        cache.set(key, kept, int(seconds) + 1)
    except Exception:
        logger.exception("page cache unavailable")


def _response(request: HttpRequest, kept: Kept) -> HttpResponse:
    content = zlib.decompress(kept.content)
    if _PLACEHOLDER in content:
        content = content.replace(_PLACEHOLDER, get_token(request).encode())
    return HttpResponse(content, content_type=kept.content_type)
