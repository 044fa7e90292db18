"""Deadline reminders: a listing's company hears once, ``DEADLINE_REMINDER_BEFORE`` ahead of its
deadline, so it can extend the deadline or close the listing in time.

Safe on any number of workers: each listing is handled in its own transaction that holds its row
(one held by another worker is skipped, not waited for), re-checks it is still due, sends, and
marks it sent before committing. Moving the deadline clears the mark (``postings.services``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import Posting, PostingQuerySet

logger = logging.getLogger(__name__)


def reminders_due(now: datetime) -> PostingQuerySet:
    """Published listings not yet reminded whose deadline is within the reminder window, and that
    were posted before that window opened (one posted with two days to go needs no reminder)."""
    before = settings.DEADLINE_REMINDER_BEFORE
    return Posting.objects.filter(
        status=Posting.Status.PUBLISHED,
        deadline_reminder_sent_at__isnull=True,
        deadline__gt=now,
        deadline__lte=now + before,
        posted_at__lte=F("deadline") - before,
        company__is_suspended=False,
    )


def deadline_reminders_send(*, now: datetime | None = None, limit: int = 500) -> int:
    """Remind the companies of up to ``limit`` due listings, soonest deadline first; returns
    emails sent. A listing whose email fails stays due, for the next run."""
    now = now or timezone.now()
    due = reminders_due(now).order_by("deadline", "pk").values_list("pk", flat=True)[:limit]
    sent = 0
    for posting_id in list(due):
        try:
            sent += deadline_reminder_send(posting_id=posting_id, now=now)
        except Exception:  # one listing's failure must not hold up the others
            logger.exception(
                "deadline reminder for posting %s failed; next run retries", posting_id
            )
    return sent


def deadline_reminder_send(*, posting_id: int, now: datetime | None = None) -> int:
    """Remind one listing's company of its deadline if it is still due; returns emails sent."""
    now = now or timezone.now()
    with transaction.atomic():
        posting = (
            reminders_due(now)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("company")
            .filter(pk=posting_id)
            .first()
        )
        if posting is None:  # another worker holds or sent it, or it is no longer due
            return 0
        # Send, then mark, then commit. A worker that dies after the mail server accepted the
        # emails but before COMMIT leaves the listing unmarked, and the next run reminds it again:
        # a reminder may (rarely) be duplicated, never silently lost. Marking and committing
        # first would turn that same crash into a reminder nobody ever gets. A failed send raises
        # and rolls back, so the listing stays due.
        emails = _reminder_emails(posting, now)
        sent = 0
        if emails:
            with get_connection() as connection:
                sent = connection.send_messages(emails) or 0
            logger.info("deadline reminder for posting %s sent to %s member(s)", posting.pk, sent)
        else:
            logger.warning(
                "deadline reminder for posting %s not sent: company %s has no active members",
                posting.pk,
                posting.company_id,
            )
        posting.deadline_reminder_sent_at = now
        posting.save(update_fields=["deadline_reminder_sent_at"])
    return sent


def _reminder_emails(posting: Posting, now: datetime) -> list[EmailMessage]:
    """One email per active member: colleagues' addresses are not shown to each other."""
    site_url = settings.SITE_URL
    context = {
        "posting": posting,
        "company": posting.company,
        "now": now,
        "site_name": settings.SITE_NAME,
        "posting_url": site_url + posting.get_absolute_url(),
        "edit_url": site_url + reverse("employer:posting_edit", args=[posting.pk]),
        "dashboard_url": site_url + reverse("employer:dashboard"),
    }
    subject = " ".join(
        render_to_string("postings/email/deadline_reminder_subject.txt", context).split()
    )
    body = render_to_string("postings/email/deadline_reminder.txt", context)
    members = posting.company.memberships.filter(user__is_active=True).select_related("user")
    return [EmailMessage(subject=subject, body=body, to=[m.user.email]) for m in members]
