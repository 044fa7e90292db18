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
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import lru_cache, partial

import httpx
import redis
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import duplicates, sources
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
    """When the open listing the workers have waited on longest was last checked (never checked:
    when it was posted).

    A listing whose source keeps failing is never checked however often the workers try it (with
    backoff, at least once an interval): it counts from its last attempt, so a dead source does
    not make the workers look behind. ``failing_sources`` counts those listings apart.
    """
    open_listings = Posting.objects.filter(status=Posting.Status.PUBLISHED)
    reachable = open_listings.filter(check_failures=0)
    candidates = [
        reachable.filter(last_checked_at__isnull=True).aggregate(m=Min("posted_at"))["m"],
        reachable.aggregate(m=Min("last_checked_at"))["m"],
        open_listings.filter(check_failures__gt=0).aggregate(m=Min("check_attempted_at"))["m"],
    ]
    return min((moment for moment in candidates if moment is not None), default=None)


def failing_sources() -> dict[str, int]:
    """Open listings whose last check failed (``count``), and how many of them failed often
    enough to be put to a moderator (``flagged``)."""
    flagged = Q(check_failures__gte=settings.RECHECK_MAX_FAILURES)
    return Posting.objects.filter(status=Posting.Status.PUBLISHED, check_failures__gt=0).aggregate(
        count=Count("pk"), flagged=Count("pk", filter=flagged)
    )


def freshness_lag(now: datetime | None = None) -> timedelta | None:
    """The age of the least recently checked open listing's check; None with no open listings."""
    oldest = oldest_check()
    if oldest is None:
        return None
    return max((now or timezone.now()) - oldest, timedelta(0))


# --- Verdicts -------------------------------------------------------------------------------

OPEN = "open"  # still open: nothing to change
EXPIRED = "expired"  # its deadline passed
UNCHANGED = "unchanged"  # the source still lists the same job
UPDATED = "updated"  # the source changed the job: fields refreshed, updated_at moved
CLOSED = "closed"  # the source no longer lists the job
FAILED = "failed"  # no verdict: the source could not be read (retried with backoff)
DEFERRED = "deferred"  # not attempted: the source host is at its request limit
SKIPPED = "skipped"  # not ours: checked since it was queued, being checked, or not open

SOURCE_GONE = "The source no longer lists this job."
POINTS_ELSEWHERE = "The source now points to another job."
DEADLINE_PASSED = "The deadline passed."

# A queued batch that never ran (its message lost) gives its listings back after this long.
QUEUED_FOR = timedelta(minutes=15)


def _log(posting: Posting, verdict: str, why: str) -> str:
    logger.info("re-check posting=%s verdict=%s: %s", posting.pk, verdict, why)
    return verdict


# What a check writes when the job itself did not change. Saving only these keeps the search
# trigger (on title, description, place) from re-indexing the row at every check.
CHECK_FIELDS = (
    "last_checked_at", "check_attempted_at", "next_check_at", "check_failures", "check_note",
    "source_etag", "source_last_modified", "source_hash",
)  # fmt: skip
ENDING_FIELDS = ("status", "closed_at", "closed_reason")


def _reached(
    posting: Posting, now: datetime, verdict: str, why: str, *, content_changed: bool = False
) -> str:
    """A check that reached a verdict: last checked now, the failure streak over."""
    posting.last_checked_at = now
    posting.check_attempted_at = now
    posting.next_check_at = None
    posting.check_failures = 0
    posting.check_note = f"{verdict.capitalize()}: {why}"[:300]
    if content_changed:
        posting.save()
    elif verdict in (EXPIRED, CLOSED):
        posting.save(update_fields=[*CHECK_FIELDS, *ENDING_FIELDS])
    else:  # only bookkeeping (Posting.LAGGING_FIELDS): kept pages showing it stay
        posting.save(update_fields=CHECK_FIELDS)
    return _log(posting, verdict, why)


def _expire(posting: Posting, now: datetime, *, content_changed: bool = False) -> str:
    posting.status = Posting.Status.EXPIRED
    posting.closed_at = posting.deadline
    posting.closed_reason = DEADLINE_PASSED
    why = f"the deadline ({posting.deadline:%Y-%m-%d %H:%M} UTC) passed"
    return _reached(posting, now, EXPIRED, why, content_changed=content_changed)


def _close(posting: Posting, now: datetime, why: str, *, reason: str = SOURCE_GONE) -> str:
    posting.status = Posting.Status.CLOSED
    posting.closed_at = now
    posting.closed_reason = reason
    return _reached(posting, now, CLOSED, why)


def _failed(posting: Posting, now: datetime, why: str) -> str:
    """No verdict: try again later, with backoff; after too many in a row, ask a moderator."""
    posting.check_failures += 1
    posting.check_attempted_at = now
    posting.next_check_at = now + sources.retry_delay(
        posting.check_failures, base=settings.RECHECK_TICK, cap=settings.RECHECK_INTERVAL
    )
    limit = settings.RECHECK_MAX_FAILURES
    posting.check_note = f"Failed ({posting.check_failures} of {limit} in a row): {why}"[:300]
    posting.save(
        update_fields=["check_failures", "check_attempted_at", "next_check_at", "check_note"]
    )
    if posting.check_failures == limit:
        transaction.on_commit(lambda: flag_unreachable(posting_id=posting.pk, why=why))
    return _log(posting, FAILED, f"{why} (failure {posting.check_failures} in a row)")


def flag_unreachable(*, posting_id: int, why: str) -> None:
    """Put a listing whose source keeps failing in front of a moderator (it stays as it is)."""
    from reporting.services import report_source_unreachable

    report_source_unreachable(posting_id=posting_id, why=why)


# --- Checking one listing -------------------------------------------------------------------


def _locked(posting_id: int, not_attempted_since: datetime | None) -> Posting | None:
    """The open listing, row-locked, unless another worker holds it or it was checked since."""
    listings = Posting.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        pk=posting_id, status=Posting.Status.PUBLISHED
    )
    if not_attempted_since is not None:
        listings = listings.filter(
            Q(check_attempted_at__isnull=True) | Q(check_attempted_at__lt=not_attempted_since)
        )
    return listings.select_related("company").first()


def check_listing(
    posting_id: int,
    *,
    not_attempted_since: datetime | None = None,
    client: httpx.Client | None = None,
) -> str:
    """Check one listing and save the verdict; returns it.

    The row stays locked from start to verdict: a second worker skips it, and a worker killed in
    between leaves nothing behind (its transaction rolls back, its lock goes with its connection).
    """
    with transaction.atomic():
        posting = _locked(posting_id, not_attempted_since)
        if posting is None:
            return SKIPPED
        now = timezone.now()
        if posting.is_past_deadline:
            return _expire(posting, now)
        if not posting.source_url:
            return _reached(posting, now, OPEN, "open, and its deadline is ahead")
        try:
            fetched = sources.fetch(
                posting.source_url,
                etag=posting.source_etag,
                last_modified=posting.source_last_modified,
                client=client,
            )
        except sources.HostBusy as busy:
            posting.next_check_at = now + timedelta(seconds=busy.retry_after)
            posting.save(update_fields=["next_check_at"])
            return _log(posting, DEFERRED, str(busy))
        except sources.SourceUnavailable as exc:
            return _failed(posting, now, str(exc))
        return _judge(posting, fetched, now)


def _judge(posting: Posting, fetched: sources.Fetched, now: datetime) -> str:
    if fetched.status in (404, 410):
        return _close(posting, now, f"the source answered {fetched.status}")
    if fetched.not_modified:
        return _reached(posting, now, UNCHANGED, "the source answered 304 Not Modified")
    if fetched.status != 200:
        return _failed(posting, now, f"the source answered {fetched.status}")
    page = sources.read_page(fetched.body)
    if page.job is None and fetched.redirected:
        return _close(
            posting, now, f"the source redirects to a page that is not a job ({fetched.url[:120]})"
        )
    if page.job is None and posting.source_hash.startswith("ld:"):
        return _close(posting, now, "the source page no longer describes a job")
    other = another_job(posting, page.job, fetched.url) if page.job and fetched.redirected else ""
    if other:
        why = f"the source now points to another job ({other})"
        return _close(posting, now, why, reason=POINTS_ELSEWHERE)
    posting.source_etag, posting.source_last_modified = fetched.etag, fetched.last_modified
    if page.content_hash == posting.source_hash:
        return _reached(posting, now, UNCHANGED, "the job at the source is the same")
    posting.source_hash = page.content_hash
    if page.job is None:
        posting.updated_at = now
        return _reached(
            posting, now, UPDATED, "the job text at the source changed", content_changed=True
        )
    changed, problem = apply_job_facts(posting, page.job)
    if problem:
        return _reached(posting, now, UNCHANGED, f"the source changed but was not used: {problem}")
    if not changed:
        return _reached(posting, now, UNCHANGED, "the source changed nothing we show")
    posting.updated_at = now
    if posting.is_past_deadline:
        _expire(posting, now, content_changed=True)
        return _log(posting, UPDATED, f"changed {', '.join(changed)}; its new deadline has passed")
    return _reached(posting, now, UPDATED, f"changed {', '.join(changed)}", content_changed=True)


def another_job(posting: Posting, job: sources.JobFacts, landed_at: str) -> str:
    """How the job a redirected source lands on differs from the listing's; "" if it is the same.

    A job page that now redirects to another job (a filled role sent to an open one) means ours
    is gone: taking the other job's words would turn the listing into a job it never was. The
    same job moved (a new address, a new slug) keeps its title and company.
    """
    try:
        landed = sources.canonical_url(landed_at)
    except ValueError:
        landed = landed_at
    listed = Posting.objects.filter(source_url=landed).exclude(pk=posting.pk).first()
    if listed is not None:
        return f"{landed[:120]}, listed here as #{listed.pk}"
    if duplicates.title_key(job.title) != duplicates.title_key(posting.title):
        return f"{job.title[:80]!r} at {landed[:120]}"
    company = posting.company.name.casefold()
    if job.company_name and job.company_name.casefold() != company:
        return f"{job.title[:80]!r} at {job.company_name[:80]}, {landed[:120]}"
    return ""


# Facts a source may refresh. Seniority and practice area are our reading of its title, made
# once at import; a moderator may correct them, and a re-check does not undo that.
REFRESHED_FIELDS = (
    "title", "description_html", "employment_type", "workplace", "city", "region", "country",
    "salary_min", "salary_max", "salary_currency", "salary_period", "deadline",
)  # fmt: skip


def apply_job_facts(posting: Posting, job: sources.JobFacts) -> tuple[list[str], str]:
    """Refresh the posting from the source's facts; returns (changed fields, problem).

    Nothing changes when the result would be invalid (say, a city in another country): the
    problem is returned instead.
    """
    before = {name: getattr(posting, name) for name in REFRESHED_FIELDS}
    before["country"] = str(posting.country)
    wanted = {name: getattr(job, name) for name in REFRESHED_FIELDS}
    for name in ("employment_type", "workplace", "country"):
        wanted[name] = wanted[name] or before[name]  # what the source does not say stays
    changed = [name for name in REFRESHED_FIELDS if wanted[name] != before[name]]
    if not changed:
        return [], ""
    for name in REFRESHED_FIELDS:
        if name == "description_html":
            posting.set_description_html(job.description_html)
        else:
            setattr(posting, name, wanted[name])
    try:
        posting.clean()
    except ValidationError as exc:
        for name, value in before.items():
            if name != "description_html":
                setattr(posting, name, value)
        posting.set_description_html(before["description_html"])
        return [], "; ".join(exc.messages)
    return [name.removesuffix("_html") for name in changed], ""


# --- Batches and the scheduler --------------------------------------------------------------


def check_batch(posting_ids: list[int], *, queued_at: datetime) -> dict[str, int]:
    """Check a batch queued at ``queued_at``; listings attempted since then are skipped.

    Listings without a source are decided together in one short transaction; source pages are
    fetched by up to ``RECHECK_FETCH_THREADS`` threads, each with its own database connection.
    """
    with_source = sorted(
        Posting.objects.filter(pk__in=posting_ids)
        .exclude(source_url="")
        .values_list("pk", flat=True)
    )
    has_source = set(with_source)
    verdicts = check_without_source(
        [pk for pk in posting_ids if pk not in has_source], queued_at=queued_at
    )
    if not with_source:
        return verdicts
    threads = min(settings.RECHECK_FETCH_THREADS, len(with_source))
    with sources.new_client() as client:
        if threads <= 1:
            results = [
                check_listing(pk, not_attempted_since=queued_at, client=client)
                for pk in with_source
            ]
        else:
            results = _check_in_threads(with_source, queued_at, client, threads)
    for verdict in results:
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
    return verdicts


def _check_in_threads(
    posting_ids: list[int], queued_at: datetime, client: httpx.Client, threads: int
) -> list[str]:
    """Check listings on ``threads`` threads, each with one database connection for the batch.

    Slow source sites are waited for side by side. A thread takes the next listing when it is
    done with one; if the task is stopped (its time limit), threads take no new listing.
    """
    pending, lock, stop = iter(posting_ids), threading.Lock(), threading.Event()
    results: list[str] = []

    def work() -> None:
        try:
            while not stop.is_set():
                with lock:
                    posting_id = next(pending, None)
                if posting_id is None:
                    return
                verdict = check_listing(posting_id, not_attempted_since=queued_at, client=client)
                with lock:
                    results.append(verdict)
        finally:
            connections.close_all()  # this thread's connection only

    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="recheck")
    try:
        for future in [pool.submit(work) for _ in range(threads)]:
            future.result()
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def check_without_source(posting_ids: list[int], *, queued_at: datetime) -> dict[str, int]:
    """Listings of our own employers: open until their deadline. One transaction for them all."""
    if not posting_ids:
        return {}
    with transaction.atomic():
        now = timezone.now()
        listings = list(
            Posting.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=posting_ids, status=Posting.Status.PUBLISHED, source_url="")
            .filter(Q(check_attempted_at__isnull=True) | Q(check_attempted_at__lt=queued_at))
        )
        past = [p for p in listings if p.deadline is not None and p.deadline <= now]
        for posting in past:
            _expire(posting, now)
        still_open = [p.pk for p in listings if p not in past]
        Posting.objects.filter(pk__in=still_open).update(
            last_checked_at=now,
            check_attempted_at=now,
            next_check_at=None,
            check_failures=0,
            check_note="Open: open, and its deadline is ahead",
        )
    for pk in still_open:
        logger.info("re-check posting=%s verdict=open: open, and its deadline is ahead", pk)
    verdicts = {
        OPEN: len(still_open),
        EXPIRED: len(past),
        SKIPPED: len(posting_ids) - len(listings),
    }
    return {verdict: n for verdict, n in verdicts.items() if n}


EXPIRE_CHUNK = 1000


def expire_past_deadline(*, now: datetime | None = None, limit: int = EXPIRE_CHUNK) -> int:
    """Expire open listings whose deadline has passed (the pages already read them as expired)."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Posting.objects.select_for_update(skip_locked=True)
            .filter(status=Posting.Status.PUBLISHED, deadline__lte=now)
            .order_by("deadline", "pk")
            .values_list("pk", "deadline")[:limit]
        )
        if not due:
            return 0
        Posting.objects.filter(pk__in=[pk for pk, _ in due]).update(
            status=Posting.Status.EXPIRED,
            closed_at=F("deadline"),
            closed_reason=DEADLINE_PASSED,
            last_checked_at=now,
            check_attempted_at=now,
            next_check_at=None,
            check_failures=0,
            check_note="Expired: the deadline passed.",
        )
    for pk, deadline in due:
        logger.info("re-check posting=%s verdict=expired: the deadline (%s) passed", pk, deadline)
    return len(due)


@lru_cache(maxsize=4)
def broker_client(url: str) -> redis.Redis:
    """A Redis client for the broker, with short timeouts (status pages must not hang)."""
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def queue_length() -> int:
    """Messages waiting on the task queue (0 without a Redis broker); may raise RedisError."""
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return 0
    client = broker_client(settings.CELERY_BROKER_URL)
    return int(client.llen(settings.CELERY_TASK_DEFAULT_QUEUE))


def due_for_check(now: datetime, limit: int) -> list[int]:
    """Ids of open listings due, never checked first, then the least recently checked.

    Due: not checked for nearly an interval, and not queued already or backing off after a
    failure. Rows another scheduler is queueing right now are skipped, not waited for.
    """
    due_before = now - max(
        settings.RECHECK_INTERVAL - 2 * settings.RECHECK_TICK, settings.RECHECK_TICK
    )
    open_listings = (
        Posting.objects.filter(status=Posting.Status.PUBLISHED)
        .filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
        .select_for_update(skip_locked=True)
    )
    # Two index scans: a single ORDER BY last_checked_at NULLS FIRST cannot use a portable index.
    ids = list(
        open_listings.filter(last_checked_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if len(ids) < limit:
        ids += (
            open_listings.filter(last_checked_at__lt=due_before)
            .order_by("last_checked_at", "pk")
            .values_list("pk", flat=True)[: limit - len(ids)]
        )
    return ids


def schedule_rechecks(*, now: datetime | None = None) -> int:
    """Expire what is past its deadline, then queue the due listings in batches; returns how many.

    Queued listings are marked (``next_check_at``) in the same transaction, so a second beat, or
    the next tick, does not queue them again; a batch whose message is lost gives them back after
    ``QUEUED_FOR``. Nothing is queued while the queue is already full: the backlog drains first.
    """
    now = now or timezone.now()
    record_beat_tick(now)
    while expire_past_deadline(now=now) == EXPIRE_CHUNK:
        pass
    try:
        waiting = queue_length()
    except redis.RedisError:
        logger.warning("re-check: could not read the queue's length", exc_info=True)
        waiting = 0
    room = max(settings.RECHECK_MAX_QUEUE - waiting, 0) * settings.RECHECK_BATCH_SIZE
    limit = min(room, settings.RECHECK_MAX_PER_TICK)
    if not limit:
        logger.warning("re-check: %s tasks already waiting; queueing nothing this tick", waiting)
        return 0
    with transaction.atomic():
        ids = due_for_check(now, limit)
        Posting.objects.filter(pk__in=ids).update(next_check_at=now + QUEUED_FOR)
        size = settings.RECHECK_BATCH_SIZE
        for start in range(0, len(ids), size):
            batch = ids[start : start + size]
            transaction.on_commit(partial(_send_batch, batch, now))
    logger.info("re-check: queued %s listings in batches of %s", len(ids), size)
    return len(ids)


def _send_batch(posting_ids: list[int], queued_at: datetime) -> None:
    from .tasks import recheck_batch

    recheck_batch.delay(posting_ids, queued_at.isoformat())


def recheck_soon(posting: Posting) -> bool:
    """Re-check a listing within minutes (a visitor reported it closed); at most once a cooldown."""
    if posting.status != Posting.Status.PUBLISHED:
        return False
    cooldown = settings.RECHECK_ON_REPORT_COOLDOWN.total_seconds()
    if not cache.add(f"recheck-soon:{posting.pk}", 1, timeout=int(cooldown)):
        return False
    from .tasks import recheck_listing

    requested_at = timezone.now().isoformat()
    transaction.on_commit(lambda: recheck_listing.delay(posting.pk, requested_at))
    return True
