"""Public pages kept rendered for up to ``PAGE_CACHE_SECONDS``, and never less true for it.

Rendering the job list or a listing costs tens of milliseconds of templates; most visitors are
anonymous and ask for the same pages. So a page an anonymous visitor gets (no session, no
pending messages) is kept in Redis, zlib-compressed, with the change marks (``changes``) of the
board, of every listing on it and of their companies. One Redis round trip serves it again, and
only while it is still true, checked inside Redis by a script:

- every mark it was kept with is still there, unchanged (``changes``): if any listing on it
  closed, reopened, was removed or edited since, or its company changed, or the schema, the page
  is rendered afresh, so a kept page never shows a closed listing as open nor an edit older than
  it;
- it is gone once the first of its deadlines passes (its expiry), for the same reason;
- its counts (views, the list's count and the filter numbers) are at most a minute old: the
  page is kept ``PAGE_CACHE_SECONDS`` (60) at most, and a list page built on the counts snapshot
  only as long as the snapshot is under ``FACET_CACHE_SECONDS`` old (``postings/facets.py``).

A visitor to a listing's page is counted (``counters.Visit``) by the same script when the kept
page is served; a page rendered afresh counts its own visitor. Each web process holds the pages it
served lately, decompressed (``_Held``, a few megabytes): while a page's version in Redis is the
one held, the script answers without its body.

Before a page is kept, the marks are read and then its listings are read back from the database:
kept only if they are as rendered (status, deadline and last change, and their companies' last
change), so a change that landed while the page was rendering is never kept behind a fresh mark.

The CSRF tokens in its forms are the only part that belongs to a visitor: they are kept as a
placeholder and filled in with this visitor's token on the way out. Redis holds what was rendered
in the last minute, so its size follows the render rate, not the number of addresses anyone
can make up. Without Redis nothing is kept; Redis down means rendering every time, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import secrets
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import InitVar, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import Resolver404, get_urlconf, resolve
from django.utils import timezone

from jobboard.csrf import get_token

from . import changes, counters
from .models import Company, Posting

logger = logging.getLogger(__name__)

_CSRF_VALUE = re.compile(rb'(name="csrfmiddlewaretoken" value=")[^"]*(")')
_PLACEHOLDER = b"\x00csrf\x00"
# Filled in only as a whole field: a page's text can hold the placeholder (a visitor's query
# echoed back), never this, its quotes being escaped.
_FIELD_BEFORE, _FIELD_AFTER = b'name="csrfmiddlewaretoken" value="', b'"'
_PLACEHOLDER_FIELD = _FIELD_BEFORE + _PLACEHOLDER + _FIELD_AFTER
# What CSRF's middleware and ``get_token`` note on a request: undone when a kept page asked for
# is not served after all, and the page renders as for any request.
_CSRF_META = ("CSRF_COOKIE", "CSRF_COOKIE_NEEDS_UPDATE")
MESSAGES_COOKIE = "messages"  # django.contrib.messages' CookieStorage

# Status, deadline and last change of a listing, and its company's last change (their
# ``modified_at``, which every change but to the counts moves), the times in
# microseconds since 1970: PostgreSQL works them out itself, faster than Django's loader parses
# timestamps.
Fingerprint = tuple[str, int | None, int | None, int | None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# The kept page, if it is still true, and the visitor counted with it. KEYS[1] is the page, a
# hash: m, the marks it was kept with ("key token key token ..."); v, its version (random); h, the
# headers the view set (a line "Name: value" each: its content type, a feed's caching); r, when
# its render began (seconds since 1970); b, its body. KEYS[2..4] and ARGV[1..3], when there are
# any, are the visit's (``counters.COUNT_FUNCTION``); the last ARGV is the version this process
# holds already ("" for none). Returns {version, headers, rendered, counted, body}: counted 1, 0,
# or -1 when there is no visit to count; body "" when the version held is the one kept. Nil when
# there is no such page or a mark has changed. The marks' keys are read from the page (fine on one
# Redis server; a cluster would want them in KEYS).
_SERVE = (
    counters.COUNT_FUNCTION
    + """
local page = redis.call('HMGET', KEYS[1], 'm', 'v', 'h', 'r')
if not page[1] then
  return nil
end
for key, token in string.gmatch(page[1], '(%S+) (%S+)') do
  if redis.call('GET', key) ~= token then
    return nil
  end
end
local counted = -1
if #KEYS > 1 then
  counted = count_once(2)
end
local body = ''
if page[2] ~= ARGV[#ARGV] then
  body = redis.call('HGET', KEYS[1], 'b')
end
return {page[2], page[3], page[4], counted, body}
"""
)


@dataclass(frozen=True)
class Kept:
    version: bytes
    content: InitVar[bytes]  # CSRF tokens replaced by the placeholder
    headers: tuple[tuple[str, str], ...]  # those the view set, Content-Type among them
    rendered_at: float  # seconds since 1970: a response that caches may keep says its Age
    # The content around its CSRF fields, which ``_response`` joins with the visitor's own.
    parts: tuple[bytes, ...] = field(init=False, repr=False)
    size: int = field(init=False)  # bytes of content

    def __post_init__(self, content: bytes) -> None:
        object.__setattr__(self, "parts", tuple(content.split(_PLACEHOLDER_FIELD)))
        object.__setattr__(self, "size", len(content))


class _Held:
    """The kept pages this process served lately, decompressed: a page served again (its version
    unchanged) comes back from Redis without its body, and is not decompressed again. At most
    ``limit`` bytes, the least recently served dropped first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.pages: OrderedDict[str, Kept] = OrderedDict()
        self.lock = threading.Lock()  # runserver's threads; gunicorn's sync workers have one

    def get(self, key: str) -> Kept | None:
        with self.lock:
            kept = self.pages.get(key)
            if kept is not None:
                self.pages.move_to_end(key)
            return kept

    def put(self, key: str, kept: Kept) -> None:
        with self.lock:
            old = self.pages.pop(key, None)
            self.size -= old.size if old is not None else 0
            if kept.size > self.limit:
                return
            self.pages[key] = kept
            self.size += kept.size
            while self.size > self.limit:
                _key, dropped = self.pages.popitem(last=False)
                self.size -= dropped.size


HELD_BYTES = 8 * 1024 * 1024  # a few hundred pages: a web worker's memory stays well in bounds
_held = _Held(HELD_BYTES)


def fingerprint(posting: Posting) -> Fingerprint:
    return (
        posting.status,
        _micros(posting.deadline),
        _micros(posting.modified_at),
        _micros(posting.company.modified_at),
    )


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
    """Only anonymous GETs with nothing personal to show are kept and served again, and only
    where there is Redis to keep them in."""
    return (
        settings.PAGE_CACHE_SECONDS > 0
        and request.method == "GET"
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
        and MESSAGES_COOKIE not in request.COOKIES
        and changes.client() is not None
    )


def key_for(request: HttpRequest, kind: str) -> str:
    address = f"{request.scheme}://{request.get_host()}{request.get_full_path()}"
    digest = hashlib.sha256(address.encode()).hexdigest()
    return f"{settings.REDIS_KEY_PREFIX}:page:v5:{kind}:{digest}"


@dataclass(frozen=True)
class KeptPage:
    """A view's pages are kept (``kept_page = KeptPage(...)`` on the view, or on its class): their
    kind, and for a listing's page the visit each serving counts."""

    kind: str
    visit: Callable[..., counters.Visit | None] | None = None  # (request, **url kwargs)


class KeptPageMiddleware:
    """Serves a kept page ahead of the rest of the middleware, with one Redis round trip, the
    response made ready while Redis checks the page (``_Asked``).

    It comes right after the security, static-file, Content-Security-Policy and
    Permissions-Policy middleware, which so set their headers on a kept page too. A kept page is
    only served to a visitor without a session or pending messages (``applies_to``): for them the
    session, authentication, messages and login-lockout middleware have nothing to do. The two
    that shape such a page's response, the CSRF cookie (with ``Vary: Cookie``) and
    ``X-Frame-Options``, are applied here by those middlewares' own methods; ``Content-Length`` as
    Django's common middleware sets it. Anything else, and a page that is not kept, goes down the
    whole stack, where the view renders the page and keeps it (``render_and_keep``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.csrf = CsrfViewMiddleware(get_response)
        self.frame_options = XFrameOptionsMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = _kept_page_of(request)
        asked = _ask(*found) if found is not None else None
        if asked is not None:
            csrf_before = {name: request.META.get(name) for name in _CSRF_META}
            self.csrf.process_request(request)  # the visitor's CSRF secret, from their cookie
            try:  # while Redis works: the page served is most often the version held here
                ready = self._respond(request, asked.held) if asked.held is not None else None
            finally:
                kept = asked.answer()
            if kept is not None:
                return ready if kept is asked.held else self._respond(request, kept)
            for name, value in csrf_before.items():  # rendered instead: as if never asked
                if value is None:
                    request.META.pop(name, None)
                else:
                    request.META[name] = value
        return self.get_response(request)

    def _respond(self, request: HttpRequest, kept: Kept) -> HttpResponse:
        response = _response(request, kept)
        self.csrf.process_response(request, response)
        return self.frame_options.process_response(request, response)


def _kept_page_of(request: HttpRequest) -> tuple[str, counters.Visit | None] | None:
    """The key of the page this request would be served from, and the visit to count with it."""
    if not applies_to(request):
        return None
    found = _kept_view_at(settings.ROOT_URLCONF, get_urlconf(), request.path_info)
    if found is None:
        return None
    kept_page, kwargs = found
    visit = kept_page.visit(request, **dict(kwargs)) if kept_page.visit is not None else None
    return key_for(request, kept_page.kind), visit


@lru_cache(maxsize=4096)
def _kept_view_at(
    root_urlconf: str, urlconf: str | None, path: str
) -> tuple[KeptPage, tuple[tuple[str, object], ...]] | None:
    """The kept pages of the view at this path, and its URL arguments. Remembered for the paths
    asked for lately: resolving walks the URL patterns, a tenth of a kept page's time. (Keyed by
    the URLconf too, which tests and per-request urlconfs change.)"""
    try:
        match = resolve(path, urlconf)
    except Resolver404:
        return None
    kept_page = getattr(getattr(match.func, "view_class", match.func), "kept_page", None)
    if kept_page is None:
        return None
    return kept_page, tuple(match.kwargs.items())


def render_and_keep(
    request: HttpRequest,
    kind: str,
    render: Callable[[], tuple[HttpResponse, Iterable[Posting], float]],
) -> HttpResponse:
    """``render()`` (response, the listings it shows, the most seconds it may be kept), and keep
    the page for those served next (``KeptPageMiddleware``) when it is for anyone."""
    if not applies_to(request):
        return render()[0]
    board = _board_mark()  # read before anything the page shows
    started = timezone.now()  # what the page shows is as of then, or later
    response, postings, seconds = render()
    if hasattr(response, "render"):
        response.render()
    if board is not None and response.status_code == 200 and not response.cookies:
        shown = list(postings)
        until = _kept_until(started, shown, seconds)
        if until is not None:
            _keep(key_for(request, kind), response, shown, started, until, board)
    return response


def _ask(key: str, visit: counters.Visit | None) -> _Asked | None:
    """Ask Redis for the kept page at ``key``, counting ``visit`` if it is served; None when
    Redis is away."""
    call = visit.script_call() if visit is not None else None
    keys, args = call if call is not None else ([], [])
    held = _held.get(key)
    try:
        return _Asked(
            changes.client(), [key, *keys], [*args, held.version if held is not None else ""], held
        )
    except redis.RedisError:
        logger.exception("kept pages unavailable")
        return None


class _Asked:
    """The serving script (``_SERVE``) sent on a connection of the pool; ``answer()`` reads what
    it found. In between, the worker makes the response ready from the page it holds: Python's
    work and Redis's overlap instead of one waiting for the other (a web worker waiting on Redis
    leaves a core idle)."""

    def __init__(
        self, client: redis.Redis, keys: list[str], args: list[object], held: Kept | None
    ) -> None:
        self.client, self.keys, self.args, self.held = client, keys, args, held
        self.script = _serve_script(client)
        self.connection = client.connection_pool.get_connection()
        command = ("EVALSHA", self.script.sha, len(keys), *keys, *args)
        try:
            try:
                self.connection.send_command(*command)
            except (redis.ConnectionError, redis.TimeoutError):
                # A connection Redis closed since (a restart): once more, on a new one. Nothing
                # reached Redis, so nothing was counted.
                self.connection.send_command(*command)
        except BaseException:
            self.client.connection_pool.release(self.connection)
            raise

    def answer(self) -> Kept | None:
        """The kept page if it is still true (its visit counted), else None."""
        try:
            try:
                found = self.connection.read_response()
            finally:  # the connection drops itself on errors that leave an answer unread
                self.client.connection_pool.release(self.connection)
        except redis.exceptions.NoScriptError:  # Redis restarted, or its scripts were flushed
            try:
                found = self.script(keys=self.keys, args=self.args)  # loads it, then runs it
            except redis.RedisError:
                logger.exception("kept pages unavailable")
                return None
        except redis.RedisError:
            logger.exception("kept pages unavailable")
            return None
        if found is None:
            return None
        version, headers, rendered_at, _counted, body = found
        key, held = self.keys[0], self.held
        if not body and held is not None and held.version == version:
            return held
        lines = headers.decode().split("\n")
        kept = Kept(
            version,
            zlib.decompress(body),
            tuple(tuple(line.split(": ", 1)) for line in lines),
            float(rendered_at),
        )
        _held.put(key, kept)
        return kept


@lru_cache(maxsize=4)
def _serve_script(client: redis.Redis):
    return client.register_script(_SERVE)


def _board_mark() -> dict[str, str] | None:
    try:
        return changes.current([])
    except redis.RedisError:
        logger.exception("kept pages unavailable")
        return None


def _fingerprints(ids: list[int]) -> dict[int, Fingerprint]:
    """What ``fingerprint`` reads of these listings, as stored now. Plain SQL: the ORM's compiling
    cost more than the query."""
    moments = ("p.deadline", "p.modified_at", "c.modified_at")
    if connection.vendor == "postgresql":
        columns = ", ".join(f"(extract(epoch FROM {name}) * 1000000)::bigint" for name in moments)
    else:
        columns = ", ".join(moments)
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            # Only names and placeholders are formatted in; the ids are parameters.
            f"SELECT p.id, p.status, {columns} FROM {Posting._meta.db_table} p"  # noqa: S608
            f" JOIN {Company._meta.db_table} c ON c.id = p.company_id WHERE p.id IN ({marks})",
            ids,
        )
        return {
            pk: (status, _micros(deadline), _micros(updated), _micros(company_modified))
            for pk, status, deadline, updated, company_modified in cursor.fetchall()
        }


DEADLINE_MARGIN = timedelta(milliseconds=500)


def _kept_until(started: datetime, postings: list[Posting], seconds: float) -> datetime | None:
    """Until when a page rendered from ``started`` on may be served: ``seconds`` at most (its
    counts' age) and never past the first deadline it shows still ahead, since it shows that
    listing as open. None when that leaves it less than a second."""
    # A quarter of it at random: pages rendered together (after a deploy, a new snapshot) would
    # otherwise all expire together and be rendered again at once.
    seconds = min(seconds, settings.PAGE_CACHE_SECONDS) * random.uniform(0.75, 1.0)
    until = started + timedelta(seconds=seconds)
    for posting in postings:  # a deadline passed before it rendered shows as passed: true still
        if posting.deadline is not None and started < posting.deadline:
            # Redis counts the page's life from when its command arrives, a moment after now.
            until = min(until, posting.deadline - DEADLINE_MARGIN)
    return until if (until - timezone.now()).total_seconds() >= 1 else None


def _keep(
    key: str,
    response: HttpResponse,
    postings: list[Posting],
    started: datetime,
    until: datetime,
    board: dict[str, str],
) -> None:
    shown = {posting.pk: fingerprint(posting) for posting in postings}
    try:
        marks = changes.current(list(shown), [posting.company_id for posting in postings])
    except redis.RedisError:
        logger.exception("kept pages unavailable")
        return
    if any(marks[name] != token for name, token in board.items()):
        return  # the board changed while this page rendered
    if shown and _fingerprints(list(shown)) != shown:
        return  # a listing on it, or its company, changed while it rendered
    content = _CSRF_VALUE.sub(rb"\1" + _PLACEHOLDER + rb"\2", response.content)
    page = {
        "m": " ".join(f"{name} {token}" for name, token in marks.items()),
        "v": secrets.token_hex(8),
        "b": zlib.compress(content, 1),
        # Header values hold no line breaks: Django refuses them.
        "h": "\n".join(f"{name}: {value}" for name, value in response.items()),
        "r": f"{started.timestamp():.3f}",
    }
    # Its lifetime counted from now, on this process's clock (not Redis's), just before it is kept.
    milliseconds = int((until - timezone.now()).total_seconds() * 1000)
    if milliseconds < 1000:
        return
    try:
        pipe = changes.client().pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping=page)
        pipe.pexpire(key, milliseconds)
        pipe.execute()
    except redis.RedisError:
        logger.exception("kept pages unavailable")


def _response(request: HttpRequest, kept: Kept) -> HttpResponse:
    content = kept.parts[0]
    if len(kept.parts) > 1:
        content = (_FIELD_BEFORE + get_token(request).encode() + _FIELD_AFTER).join(kept.parts)
    response = HttpResponse(content)
    for name, value in kept.headers:
        response.headers[name] = value
    response.headers["Content-Length"] = str(len(content))
    if "Cache-Control" in response.headers:  # caches downstream count its max-age from its render
        response.headers["Age"] = str(max(0, int(time.time() - kept.rendered_at)))
    return response
