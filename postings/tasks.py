"""Celery tasks. Each takes ids, fetches afresh, and is safe to run twice or on two workers.

Tasks that talk to other machines (mail servers, source sites) retry network errors with
exponential backoff and jitter; their countdowns stay under the broker's visibility timeout.
"""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.utils.dateparse import parse_datetime

from . import counters, facets, freshness, sources

logger = logging.getLogger(__name__)

# For tasks that send mail: a mail server that is down or refuses for now is tried again.
MAIL_RETRY = {
    "autoretry_for": (smtplib.SMTPException, OSError),
    "retry_backoff": 30,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task
def flush_view_counts() -> int:
    """Add buffered view and apply-click counts to the postings (safe to run concurrently)."""
    added = counters.flush("views") + counters.flush("applies")
    counters.forget_old_flushes()
    return added


@shared_task
def refresh_facet_counts() -> int:
    """Count the snapshot behind the list's count and the filter panel's numbers afresh; the
    web processes pick it up on their next request. Returns its number of cells."""
    return len(facets.refresh_cube().counts)


@shared_task(**MAIL_RETRY)
def send_application_emails(application_id: int, site_url: str = "") -> int:
    """Confirm an application to the candidate and tell the company (each at most once)."""
    from .applications import application_notify
    from .models import Application

    application = (
        Application.objects.select_related("posting__company").filter(pk=application_id).first()
    )
    if application is None:  # deleted since it was queued
        return 0
    return application_notify(application=application, site_url=site_url)


@shared_task(**MAIL_RETRY)
def send_deadline_reminders() -> int:
    """Email each open listing's company three days before its deadline, once."""
    from .reminders import deadline_reminders_send

    return deadline_reminders_send()


@shared_task(soft_time_limit=50, time_limit=60)
def schedule_rechecks() -> int:
    """Beat, every tick: expire listings past their deadline and queue the due re-checks."""
    return freshness.schedule_rechecks()


@shared_task(soft_time_limit=240, time_limit=300)
def recheck_batch(posting_ids: list[int], queued_at: str) -> dict[str, int]:
    """Check a batch; listings attempted since ``queued_at`` are skipped (twice is a no-op)."""
    return freshness.check_batch(posting_ids, queued_at=parse_datetime(queued_at))


@shared_task(soft_time_limit=60, time_limit=90)
def recheck_listing(posting_id: int, requested_at: str) -> str:
    """Check one listing now (a visitor reported it closed), unless checked since the request."""
    return freshness.check_listing(posting_id, not_attempted_since=parse_datetime(requested_at))


@shared_task(
    bind=True,
    autoretry_for=(sources.SourceUnavailable,),
    retry_backoff=60,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=60,
    time_limit=90,
)
def import_source(self, url: str) -> str:
    """Create or update the listing of a source page's JobPosting (by canonical source URL)."""
    from .imports import ImportRefused, import_url

    try:
        result = import_url(url)
    except sources.HostBusy as busy:
        raise self.retry(countdown=busy.retry_after) from busy
    except ImportRefused as exc:  # the page is not a job we can list: retrying will not help
        logger.warning("not imported: %s: %s", url, exc)
        return f"not imported: {exc}"
    return result.describe()
