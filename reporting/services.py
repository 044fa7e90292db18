"""Writes for reports and moderation. The safety net lives here too: it acts with nobody at the
keyboard, so every step it takes is written to the same audit log as a moderator's."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from postings.counters import address_hash, client_ip
from postings.models import Posting

from .models import ModerationAction, Report

logger = logging.getLogger(__name__)


@transaction.atomic
def report_submit(
    *,
    posting: Posting,
    reason: str,
    reporter: str,
    details: str = "",
    duplicate_of: Posting | None = None,
    email: str = "",
) -> tuple[Report, bool]:
    """File a report; the same visitor, listing and reason count once. Returns (report, new)."""
    try:
        with transaction.atomic():
            report = Report.objects.create(
                posting=posting,
                reason=reason,
                reporter=reporter,
                details=details.strip(),
                duplicate_of=duplicate_of if reason == Report.Reason.DUPLICATED else None,
                email=email.strip().lower(),
            )
    except IntegrityError:
        report = Report.objects.get(posting=posting, reason=reason, reporter=reporter)
        return report, False
    if reason in Report.DANGEROUS:
        safety_net_check(posting=posting)
    return report, True


def reporter_of(request) -> str:
    """Who reports, for counting distinct reporters: a salted hash of the address alone, so a
    visitor cannot become several reporters by switching browsers. Never the raw address."""
    return address_hash(client_ip(request))


def distinct_dangerous_reporters(*, posting: Posting, now: datetime | None = None) -> int:
    since = (now or timezone.now()) - timedelta(hours=24)
    return (
        Report.objects.filter(posting=posting, reason__in=Report.DANGEROUS, created_at__gte=since)
        .values("reporter")
        .distinct()
        .count()
    )


@transaction.atomic
def safety_net_check(*, posting: Posting, now: datetime | None = None) -> bool:
    """Hide a listing pending review once N distinct visitors reported it as fake or unsafe
    within 24 hours (N = settings.SAFETY_NET_REPORTS). Returns whether it hid the listing."""
    reporters = distinct_dangerous_reporters(posting=posting, now=now)
    if reporters < settings.SAFETY_NET_REPORTS:
        return False
    posting = Posting.objects.select_for_update().select_related("company").get(pk=posting.pk)
    if posting.status != Posting.Status.PUBLISHED:
        return False  # already hidden, closed or removed: nothing more to do
    posting.status = Posting.Status.PENDING_REVIEW
    posting.save(update_fields=["status", "modified_at"])
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.AUTO_HIDE,
        posting=posting,
        company=posting.company,
        note=(
            f"{reporters} different visitors reported it as fake or unsafe within 24 hours; "
            "hidden until a moderator reviews it."
        ),
    )
    logger.warning("safety net hid posting %s after %s reports", posting.pk, reporters)
    transaction.on_commit(lambda: notify_members_listing_hidden(posting_id=posting.pk))
    return True


def notify_members_listing_hidden(*, posting_id: int) -> int:
    """Tell the company's members that the safety net hid their listing; returns emails sent."""
    posting = Posting.objects.select_related("company").get(pk=posting_id)
    members = list(posting.company.memberships.select_related("user"))
    context = {
        "posting": posting,
        "site_name": settings.SITE_NAME,
        "dashboard_url": settings.SITE_URL + reverse("employer:dashboard"),
    }
    subject = " ".join(
        render_to_string("reporting/email/listing_hidden_subject.txt", context).split()
    )
    body = render_to_string("reporting/email/listing_hidden.txt", context)
    sent = 0
    for membership in members:
        try:
            sent += send_mail(subject, body, None, [membership.user.email])
        except OSError:
            logger.exception(
                "could not tell %s that posting %s was hidden", membership.user.email, posting_id
            )
    return sent
