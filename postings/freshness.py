"""Keeping "last checked" and "updated" true: the re-check scheduler and the check of a listing.

Every open listing is checked at least once per ``RECHECK_INTERVAL``, the least recently checked
first. ``schedule_rechecks`` (beat, every ``RECHECK_TICK``) expires listings past their deadline
and queues the due ones in batches; ``recheck_batch`` checks a batch.

A check holds its listing's row lock (``select_for_update(skip_locked=True)``) from the moment it
starts until its verdict is saved, so two workers never check one listing at once, and a worker
killed mid-check releases the lock with its connection: the redelivered task checks it again.
A batch skips listings attempted since it was queued, so running it twice checks nothing twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import Min
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import Posting

logger = logging.getLogger(__name__)

BEAT_TICK_KEY = "freshness:beat-tick"


def record_beat_tick(now: datetime | None = None) -> None:
    """Remember when beat last ran the scheduler (for the status page and health check)."""
    cache.set(BEAT_TICK_KEY, (now or timezone.now()).isoformat(), timeout=7 * 24 * 3600)


def last_beat_tick() -> datetime | None:
    value = cache.get(BEAT_TICK_KEY)
    return parse_datetime(value) if value else None


def oldest_check() -> datetime | None:
    """When the least recently checked open listing was last checked (never: when it was posted)."""
    open_listings = Posting.objects.filter(status=Posting.Status.PUBLISHED)
    never = open_listings.filter(last_checked_at__isnull=True).aggregate(m=Min("posted_at"))["m"]
    if never is not None:
        return never
    return open_listings.aggregate(m=Min("last_checked_at"))["m"]


def freshness_lag(now: datetime | None = None) -> timedelta | None:
    """The age of the least recently checked open listing's check; None with no open listings."""
    oldest = oldest_check()
    if oldest is None:
        return None
    return max((now or timezone.now()) - oldest, timedelta(0))
