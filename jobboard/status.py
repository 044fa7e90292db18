"""Are the background workers doing their job? Beat, the workers, the queue and the re-checks.

``workers_status()`` gathers the figures for ``/healthz/workers/`` and the moderators' status
page. It never raises: a service it cannot reach is reported as ``"unreachable"`` (and logged).

Each part is a dict with a ``state``; the overall ``status`` is

- ``"embedded"``: Celery runs eagerly (the default without Redis). There is no broker, no worker
  and no beat; tasks run inside the web process. Nothing is wrong.
- ``"ok"``: beat ticked lately, at least one worker answers, the broker answers and the least
  recently checked open listing is within its target (a listing whose source keeps failing
  counts from its last attempt; ``failing`` counts those listings apart).
- ``"degraded"``: anything else.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from postings import freshness
from postings.models import Posting

from .celery import app

logger = logging.getLogger(__name__)

# Beat is stale when it missed this many ticks in a row.
BEAT_STALE_TICKS = 3
# How far past RECHECK_INTERVAL the oldest check may be and still count as on time: a listing
# that falls due is queued on the next tick (one tick), may wait behind a full queue for another,
# and its batch fetches slow source pages for a few minutes at most.
LAG_MARGIN_TICKS = 2
LAG_MARGIN_EXTRA = timedelta(minutes=5)
# Workers answer a ping within this long, or count as not answering.
PING_TIMEOUT = 1.0
# Ping answers are cached this long, so reloading the page does not ping every time.
PING_CACHE_KEY = "status:workers-ping"
PING_CACHE_SECONDS = 15

OK, DEGRADED, EMBEDDED = "ok", "degraded", "embedded"
UNREACHABLE, NOT_USED = "unreachable", "not used"


def lag_allowed() -> timedelta:
    """The oldest check may be this old before the re-checks count as behind."""
    return settings.RECHECK_INTERVAL + LAG_MARGIN_TICKS * settings.RECHECK_TICK + LAG_MARGIN_EXTRA


def beat_stale_after() -> timedelta:
    return BEAT_STALE_TICKS * settings.RECHECK_TICK


def _beat(now: datetime, embedded: bool) -> dict[str, Any]:
    try:
        tick = freshness.last_beat_tick()
    except Exception:
        logger.exception("status: cannot read beat's last tick from the cache")
        return {"state": UNREACHABLE, "last_tick": None, "age_seconds": None}
    age = max(now - tick, timedelta(0)) if tick else None
    if embedded:
        state = NOT_USED
    elif tick is None:
        state = "never"
    else:
        state = "stale" if age > beat_stale_after() else OK
    return {
        "state": state,
        "last_tick": tick.isoformat() if tick else None,
        "age_seconds": int(age.total_seconds()) if age is not None else None,
        "stale_after_seconds": int(beat_stale_after().total_seconds()),
    }


def _queue() -> dict[str, Any]:
    name = settings.CELERY_TASK_DEFAULT_QUEUE
    try:
        length = freshness.queue_length()
    except Exception:
        logger.exception("status: cannot read the length of queue %r from the broker", name)
        return {"state": UNREACHABLE, "name": name, "length": None}
    return {"state": OK, "name": name, "length": int(length)}


def _ping() -> list[str] | None:
    """The names of the workers that answer, or None when the ping itself failed (cached)."""
    try:
        cached = cache.get(PING_CACHE_KEY)
    except Exception:
        logger.exception("status: cache unreachable, pinging the workers uncached")
        cached = None
    if cached is not None:
        return cached["names"]
    try:
        replies = app.control.ping(timeout=PING_TIMEOUT) or []
        names: list[str] | None = sorted(name for reply in replies for name in reply)
    except Exception:
        logger.exception("status: pinging the workers failed")
        names = None
    try:
        cache.set(PING_CACHE_KEY, {"names": names}, PING_CACHE_SECONDS)
    except Exception:
        logger.warning("status: could not cache the ping answers")
    return names


def _workers(embedded: bool, broker_reachable: bool) -> dict[str, Any]:
    if embedded:
        return {"state": NOT_USED, "count": 0, "names": []}
    if not broker_reachable:  # a ping would only wait for the broker to time out
        return {"state": UNREACHABLE, "count": None, "names": []}
    names = _ping()
    if names is None:
        return {"state": UNREACHABLE, "count": None, "names": []}
    return {"state": OK if names else "none", "count": len(names), "names": names}


def _freshness(now: datetime) -> dict[str, Any]:
    interval, allowed = settings.RECHECK_INTERVAL, lag_allowed()
    figures: dict[str, Any] = {
        "interval_seconds": int(interval.total_seconds()),
        "allowed_seconds": int(allowed.total_seconds()),
    }
    try:
        lag = freshness.freshness_lag(now)
    except Exception:
        logger.exception("status: cannot read the oldest check from the database")
        return {"state": UNREACHABLE, "lag_seconds": None, **figures}
    if lag is None:
        return {"state": "no open listings", "lag_seconds": None, **figures}
    state = OK if lag <= allowed else "behind"
    return {"state": state, "lag_seconds": int(lag.total_seconds()), **figures}


def overdue_count(now: datetime) -> int:
    """Open listings not checked within RECHECK_INTERVAL (never checked: not since posted), but
    for those whose source is failing (counted apart: ``_failing``)."""
    cutoff = now - settings.RECHECK_INTERVAL
    return Posting.objects.filter(
        Q(last_checked_at__lt=cutoff) | Q(last_checked_at__isnull=True, posted_at__lt=cutoff),
        status=Posting.Status.PUBLISHED,
        check_failures=0,
    ).count()


def _overdue(now: datetime) -> dict[str, Any]:
    try:
        count = overdue_count(now)
    except Exception:
        logger.exception("status: cannot count overdue listings")
        return {"state": UNREACHABLE, "count": None}
    return {"state": OK if count == 0 else "some", "count": count}


def _failing() -> dict[str, Any]:
    """Open listings whose source cannot be read: the sources' fault, not the workers'."""
    try:
        figures = freshness.failing_sources()
    except Exception:
        logger.exception("status: cannot count listings with failing sources")
        return {"state": UNREACHABLE, "count": None, "flagged": None}
    return {"state": OK if figures["count"] == 0 else "failing", **figures}


def workers_status(now: datetime | None = None) -> dict[str, Any]:
    """Every figure of the background work, as JSON-ready values (see the module docstring)."""
    now = now or timezone.now()
    embedded = bool(settings.CELERY_TASK_ALWAYS_EAGER)
    if embedded:
        queue = {"state": NOT_USED, "name": settings.CELERY_TASK_DEFAULT_QUEUE, "length": None}
    else:
        queue = _queue()
    parts = {
        "beat": _beat(now, embedded),
        "workers": _workers(embedded, queue["state"] == OK),
        "queue": queue,
        "freshness": _freshness(now),
        "overdue": _overdue(now),
        "failing": _failing(),
    }
    if embedded:
        status = EMBEDDED
    else:
        # Overdue listings alone are not a fault: the lag allows a margin past the interval.
        # Nor are failing sources: the workers try them on time; moderators hear of them.
        healthy = all(parts[name]["state"] == OK for name in ("beat", "workers", "queue"))
        healthy = healthy and parts["freshness"]["state"] in (OK, "no open listings")
        status = OK if healthy else DEGRADED
    return {"status": status, "checked_at": now.isoformat(), **parts}


def public_status(status: dict[str, Any]) -> dict[str, Any]:
    """The figures without the workers' host names, for the unauthenticated endpoint."""
    workers = {key: value for key, value in status["workers"].items() if key != "names"}
    return {**status, "workers": workers}
