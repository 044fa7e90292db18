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


# Moderation: a moderator's actions. Each takes a short note and writes one audit row; the actions
# on a listing also resolve its open reports, so the queue empties as the moderator works.

MODERATOR_CLOSED = "Closed by a moderator"


class ModerationError(Exception):
    """An action the current state does not allow (the report was already handled, the listing
    is no longer public); the message says why, for the moderator to read."""


def _require_note(note: str) -> str:
    note = " ".join(note.split())
    if not note:
        raise ModerationError("Write a short note saying why.")
    return note[:500]


def _locked_open_report(report: Report) -> Report:
    report = (
        # Lock the report row only: PostgreSQL cannot lock the nullable side of an outer join.
        Report.objects.select_for_update(of=("self",))
        .select_related("posting__company", "handled_by")
        .get(pk=report.pk)
    )
    if report.status != Report.Status.OPEN:
        who = report.handled_by or "someone"
        when = timezone.localtime(report.handled_at).strftime("%Y-%m-%d %H:%M")
        raise ModerationError(
            f"This report was already {report.get_status_display().lower()} by {who} at {when}."
        )
    return report


def _close_report(report: Report, *, status: str, by, note: str, now: datetime) -> None:
    report.status = status
    report.handled_by, report.handled_at, report.handling_note = by, now, note
    report.save(update_fields=["status", "handled_by", "handled_at", "handling_note"])


@transaction.atomic
def report_dismiss(*, report: Report, by, note: str) -> Report:
    """The report does not hold up: close it without touching the listing."""
    note = _require_note(note)
    report = _locked_open_report(report)
    _close_report(report, status=Report.Status.DISMISSED, by=by, note=note, now=timezone.now())
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.DISMISS,
        report=report,
        posting=report.posting,
        company=report.posting.company,
        actor=by,
        note=note,
    )
    return report


@transaction.atomic
def report_resolve(*, report: Report, by, note: str) -> Report:
    """The report was right and was dealt with (the note says how)."""
    note = _require_note(note)
    report = _locked_open_report(report)
    _close_report(report, status=Report.Status.RESOLVED, by=by, note=note, now=timezone.now())
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.RESOLVE,
        report=report,
        posting=report.posting,
        company=report.posting.company,
        actor=by,
        note=note,
    )
    return report


def _settle_open_reports(posting: Posting, *, status: str, by, note: str) -> int:
    now = timezone.now()
    reports = list(Report.objects.select_for_update().open().about(posting))
    for report in reports:
        _close_report(report, status=status, by=by, note=note, now=now)
    return len(reports)


def _lock_posting(posting: Posting) -> Posting:
    return Posting.objects.select_for_update().select_related("company").get(pk=posting.pk)


@transaction.atomic
def posting_dismiss_reports(*, posting: Posting, by, note: str) -> int:
    """Every open report on the listing is unfounded; returns how many were dismissed."""
    note = _require_note(note)
    posting = _lock_posting(posting)
    count = _settle_open_reports(posting, status=Report.Status.DISMISSED, by=by, note=note)
    if not count:
        raise ModerationError(f"“{posting.title}” has no open reports left.")
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.DISMISS,
        posting=posting,
        company=posting.company,
        actor=by,
        note=f"{note} ({count} report{'s' if count != 1 else ''})",
    )
    return count


@transaction.atomic
def posting_hide(*, posting: Posting, by, note: str) -> Posting:
    """Take a public listing out of sight until it is reviewed again."""
    note = _require_note(note)
    posting = _lock_posting(posting)
    if posting.status != Posting.Status.PUBLISHED:
        raise ModerationError(
            f"“{posting.title}” is {posting.get_status_display().lower()}, not public: "
            "nothing to hide."
        )
    posting.status = Posting.Status.PENDING_REVIEW
    posting.save(update_fields=["status", "modified_at"])
    _settle_open_reports(posting, status=Report.Status.RESOLVED, by=by, note=note)
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.HIDE,
        posting=posting,
        company=posting.company,
        actor=by,
        note=note,
    )
    return posting


@transaction.atomic
def posting_moderator_close(*, posting: Posting, by, note: str) -> Posting:
    """Close a listing for good (published or hidden pending review)."""
    note = _require_note(note)
    posting = _lock_posting(posting)
    closable = (Posting.Status.PUBLISHED, Posting.Status.PENDING_REVIEW)
    if posting.status not in closable:
        raise ModerationError(
            f"“{posting.title}” is already {posting.get_status_display().lower()}."
        )
    posting.status = Posting.Status.CLOSED
    posting.closed_at = timezone.now()
    posting.closed_reason = MODERATOR_CLOSED
    posting.save(update_fields=["status", "closed_at", "closed_reason", "modified_at"])
    _settle_open_reports(posting, status=Report.Status.RESOLVED, by=by, note=note)
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.CLOSE,
        posting=posting,
        company=posting.company,
        actor=by,
        note=note,
    )
    return posting


@transaction.atomic
def posting_ask_correction(*, posting: Posting, by, note: str) -> Posting:
    """Email the company's members the moderator's note asking them to fix the listing."""
    note = _require_note(note)
    posting = _lock_posting(posting)
    _settle_open_reports(posting, status=Report.Status.RESOLVED, by=by, note=note)
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.ASK_CORRECTION,
        posting=posting,
        company=posting.company,
        actor=by,
        note=note,
    )
    transaction.on_commit(
        lambda: notify_members(posting_id=posting.pk, template="correction_request", note=note)
    )
    return posting


@transaction.atomic
def posting_moderation_approve(*, posting: Posting, by, note: str = "") -> Posting:
    from postings.services import PostingActionError, posting_approve

    note = " ".join(note.split()) or "Approved."
    try:
        posting = posting_approve(posting=posting, by=by)
    except PostingActionError as error:
        raise ModerationError(str(error)) from error
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.APPROVE,
        posting=posting,
        company=posting.company,
        actor=by,
        note=note[:500],
    )
    return posting


@transaction.atomic
def posting_reject(*, posting: Posting, by, note: str) -> Posting:
    """Send a posting from the review queue back to a draft; the employer sees why."""
    note = _require_note(note)
    posting = _lock_posting(posting)
    if posting.status != Posting.Status.PENDING_REVIEW:
        raise ModerationError(f"“{posting.title}” is no longer waiting for review.")
    posting.status = Posting.Status.DRAFT
    posting.closed_reason = note[:200]
    posting.save(update_fields=["status", "closed_reason", "modified_at"])
    _settle_open_reports(posting, status=Report.Status.RESOLVED, by=by, note=note)
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.REJECT,
        posting=posting,
        company=posting.company,
        actor=by,
        note=note,
    )
    transaction.on_commit(
        lambda: notify_members(posting_id=posting.pk, template="rejected", note=note)
    )
    return posting


@transaction.atomic
def company_moderation_verify(*, company, by, note: str = "") -> list[Posting]:
    from postings.services import company_verify

    if company.is_verified:
        raise ModerationError(f"{company.name} is already verified.")
    approved = company_verify(company=company, by=by)
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.VERIFY_COMPANY,
        company=company,
        actor=by,
        note=(" ".join(note.split()) or "Verified.")[:500],
    )
    return approved


def notify_members(*, posting_id: int, template: str, note: str) -> int:
    """Email a moderator's note about a listing to its company's members; returns emails sent."""
    posting = Posting.objects.select_related("company").get(pk=posting_id)
    context = {
        "posting": posting,
        "note": note,
        "site_name": settings.SITE_NAME,
        "dashboard_url": settings.SITE_URL + reverse("employer:dashboard"),
    }
    subject = " ".join(render_to_string(f"reporting/email/{template}_subject.txt", context).split())
    body = render_to_string(f"reporting/email/{template}.txt", context)
    sent = 0
    for membership in posting.company.memberships.select_related("user"):
        try:
            sent += send_mail(subject, body, None, [membership.user.email])
        except OSError:
            logger.exception(
                "could not email %s about posting %s", membership.user.email, posting_id
            )
    return sent
