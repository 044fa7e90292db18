"""Writes for reports and moderation. The safety net lives here too: it acts with nobody at the
keyboard, so every step it takes is written to the same audit log as a moderator's."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from postings.duplicates import likely_duplicates
from postings.freshness import recheck_soon
from postings.models import MODERATOR_CLOSED, Company, Posting, PostingRevision
from postings.services import (
    PostingActionError,
    company_verify,
    posting_approve,
    posting_revision_approve,
    posting_revision_reject,
)

from . import safety_net
from .models import ModerationAction, Report
from .tasks import send_safety_net_alerts

logger = logging.getLogger(__name__)


@transaction.atomic
def report_submit(
    *,
    posting: Posting,
    reason: str,
    reporter: str,
    network: str = "",
    agent: str = "",
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
                network=network,
                agent=agent,
                details=details.strip(),
                duplicate_of=duplicate_of if reason == Report.Reason.DUPLICATED else None,
                email=email.strip().lower(),
            )
    except IntegrityError:
        report = Report.objects.get(posting=posting, reason=reason, reporter=reporter)
        return report, False
    if reason in Report.DANGEROUS:
        safety_net_check(posting=posting)
    if reason == Report.Reason.CLOSED:
        recheck_soon(posting)  # its source may say so within minutes
    return report, True


# The reporter of reports the re-check worker files; one per failure streak.
SOURCE_CHECK_REPORTER = "source-check"


def report_source_unreachable(*, posting_id: int, why: str) -> Report | None:
    """Ask a moderator to look at a listing whose source kept failing; one open report at most."""
    posting = Posting.objects.filter(pk=posting_id).first()
    if posting is None:
        return None
    if (
        Report.objects.open()
        .filter(posting=posting, reason=Report.Reason.SOURCE_UNREACHABLE)
        .exists()
    ):
        return None
    report, _ = Report.objects.get_or_create(
        posting=posting,
        reason=Report.Reason.SOURCE_UNREACHABLE,
        reporter=f"{SOURCE_CHECK_REPORTER}:{timezone.now():%Y%m%d%H%M%S}",
        defaults={
            "details": (
                f"The re-check could not read {posting.source_url} "
                f"{posting.check_failures} times in a row. Last: {why}"
            )[:2000]
        },
    )
    logger.warning("re-check flagged posting %s for a moderator: %s", posting.pk, why)
    return report


# The reporter of automatic duplicate reports.
DUPLICATE_CHECK_REPORTER = "duplicate-check"


@transaction.atomic
def report_likely_duplicate(*, posting_id: int) -> Report | None:
    """Ask a moderator whether a listing repeats an open one; one open automatic report at most.

    The listing's row lock makes two runs at once take turns, so the second finds the first's
    report. Nothing is filed for a listing that is no longer live or waiting, or already marked.
    """
    posting = Posting.objects.select_for_update().filter(pk=posting_id).first()
    live = (Posting.Status.PUBLISHED, Posting.Status.PENDING_REVIEW)
    if posting is None or posting.status not in live or posting.duplicate_of_id:
        return None
    if (
        Report.objects.open()
        .filter(posting=posting, reason=Report.Reason.LIKELY_DUPLICATE)
        .exists()
    ):
        return None
    matches = [(other, why) for other, why in likely_duplicates(posting) if other.is_open]
    if not matches:
        return None
    lines = [f"Listing {other.pk}, “{other.title}”: {why}." for other, why in matches[:5]]
    report = Report.objects.create(
        posting=posting,
        reason=Report.Reason.LIKELY_DUPLICATE,
        reporter=f"{DUPLICATE_CHECK_REPORTER}:{timezone.now():%Y%m%d%H%M%S%f}",
        duplicate_of=matches[0][0],
        details=("Found automatically when it was published or imported.\n" + "\n".join(lines))[
            :2000
        ],
    )
    logger.info("posting %s looks like a duplicate of %s", posting.pk, matches[0][0].pk)
    return report


@transaction.atomic
def safety_net_check(*, posting: Posting, now: datetime | None = None) -> bool:
    """Weigh the listing's fake/unsafe reports (safety_net.assess) once SAFETY_NET_REPORTS
    distinct visitors made them within 24 hours. Then moderators are alerted at once, and the
    listing is hidden pending review only if it is public, its company is not verified and the
    reports weigh as much as its threshold. Returns whether it hid the listing."""
    now = now or timezone.now()
    # The listing's lock makes reports on it take turns here: one hide, one alert.
    posting = Posting.objects.select_for_update().select_related("company").get(pk=posting.pk)
    if posting.status != Posting.Status.PUBLISHED:
        return False  # already hidden, closed or removed: nothing more to do
    assessment = safety_net.assess(posting=posting, now=now)
    if not assessment.trips:
        return False
    company = posting.company
    if assessment.warrants_hiding and not company.is_verified:
        posting.status = Posting.Status.PENDING_REVIEW
        posting.save(update_fields=["status", "modified_at"])
        ModerationAction.objects.create(
            kind=ModerationAction.Kind.AUTO_HIDE,
            posting=posting,
            company=company,
            note=f"{assessment.summary()} Hidden until a moderator reviews it."[:1000],
        )
        logger.warning("safety net hid posting %s: %s", posting.pk, assessment.summary())
        transaction.on_commit(lambda: notify_members_listing_hidden(posting_id=posting.pk))
        transaction.on_commit(_queue_safety_net_alerts, robust=True)
        return True
    alerted = ModerationAction.objects.filter(
        posting=posting,
        kind__in=safety_net.ALERT_KINDS,
        created_at__gte=now - safety_net.WINDOW,
    ).exists()
    if alerted:
        return False  # moderators know already; the listing's page lists the later reports
    if company.is_verified:
        outcome = "Not hidden: the company is verified, so only a moderator may hide it."
    else:
        outcome = "Not hidden: the reports weigh less than the threshold."
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.NET_ALERT,
        posting=posting,
        company=company,
        note=f"{assessment.summary()} {outcome}"[:1000],
    )
    logger.warning("safety net alerted moderators to posting %s", posting.pk)
    transaction.on_commit(_queue_safety_net_alerts, robust=True)
    return False


def _queue_safety_net_alerts() -> None:
    # Queued with a robust on_commit: a queue that is away must not fail the visitor's report
    # (Django logs the error; the next digest run sends the alert instead).
    send_safety_net_alerts.delay()


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


def _act_on_listing(posting: Posting, kind: str, *, by, note: str) -> None:
    """What every action on a listing ends with: its open reports resolved, one audit row."""
    _settle_open_reports(posting, status=Report.Status.RESOLVED, by=by, note=note)
    ModerationAction.objects.create(
        kind=kind, posting=posting, company=posting.company, actor=by, note=note
    )


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
    _act_on_listing(posting, ModerationAction.Kind.HIDE, by=by, note=note)
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
    _act_on_listing(posting, ModerationAction.Kind.CLOSE, by=by, note=note)
    return posting


@transaction.atomic
def posting_ask_correction(*, posting: Posting, by, note: str) -> Posting:
    """Email the company's members the moderator's note asking them to fix the listing."""
    note = _require_note(note)
    posting = _lock_posting(posting)
    _act_on_listing(posting, ModerationAction.Kind.ASK_CORRECTION, by=by, note=note)
    transaction.on_commit(
        lambda: notify_members(posting_id=posting.pk, template="correction_request", note=note)
    )
    return posting


@transaction.atomic
def posting_moderation_approve(
    *, posting: Posting, by, note: str = "", seen: datetime | None = None
) -> Posting:
    """Let a listing waiting for review (or hidden for it) go public. ``seen``: when the listing
    the moderator's page showed was last changed; its employer may edit it while it waits."""

    def changed_since_seen() -> bool:
        return (
            seen is not None
            and Posting.objects.select_for_update()
            .filter(pk=posting.pk, modified_at__gt=seen)
            .exists()
        )

    return _approve(
        company_id=posting.company_id,
        what="listings",
        changed_since_seen=changed_since_seen,
        changed_message=(
            f"The employer changed “{posting.title}” after this page was shown: read it again "
            "before approving."
        ),
        approve=lambda: posting_approve(posting=posting, by=by),
        by=by,
        note=" ".join(note.split()) or "Approved.",
    )


def _approve(
    *,
    company_id: int,
    what: str,
    changed_since_seen: Callable[[], bool],
    changed_message: str,
    approve: Callable[[], Posting],
    by,
    note: str,
) -> Posting:
    """Approve (a listing or an edit of one) unless its company is suspended or it changed since
    the moderator read it, with an audit row."""
    company = Company.objects.select_for_update().get(pk=company_id)
    if company.is_suspended:
        raise ModerationError(
            f"{company.name} is suspended: lift the suspension before approving its {what}."
        )
    if changed_since_seen():
        raise ModerationError(changed_message)
    try:
        posting = approve()
    except PostingActionError as error:
        raise ModerationError(str(error)) from error
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.APPROVE,
        posting=posting,
        company=posting.company,
        actor=by,
        note=note[:1000],
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
    _act_on_listing(posting, ModerationAction.Kind.REJECT, by=by, note=note)
    transaction.on_commit(
        lambda: notify_members(posting_id=posting.pk, template="rejected", note=note)
    )
    return posting


# An edit (or reopen) waiting for review is approved or rejected under the listing's own kinds
# of audit row; the note says it was the edit.
REVISION_APPROVED = "Edit approved: "
REVISION_REJECTED = "Edit not approved: "


@transaction.atomic
def revision_moderation_approve(
    *, revision: PostingRevision, by, note: str = "", seen: datetime | None = None
) -> Posting:
    """Let a pending edit of a listing go live (and open it again, when it asked to).

    ``seen``: when the edit the moderator read was submitted. A later edit replaces the one
    waiting in place, so approving it unread would let words no one reviewed go live."""

    def changed_since_seen() -> bool:
        if seen is None:
            return False
        submitted_at = (
            PostingRevision.objects.select_for_update()
            .values_list("submitted_at", flat=True)
            .get(pk=revision.pk)
        )
        return bool(submitted_at and submitted_at > seen)

    note = " ".join(note.split()) or ("Reopened." if revision.reopen else "Approved.")
    return _approve(
        company_id=revision.posting.company_id,
        what="edits",
        changed_since_seen=changed_since_seen,
        changed_message=(
            "The employer changed this edit after you opened it: read it again before approving."
        ),
        approve=lambda: posting_revision_approve(revision=revision, by=by),
        by=by,
        note=f"{REVISION_APPROVED}{note}",
    )


@transaction.atomic
def revision_moderation_reject(*, revision: PostingRevision, by, note: str) -> PostingRevision:
    """Turn a pending edit down: the listing keeps its approved words, the employer is told why
    (by email, and beside the listing in their dashboard)."""
    note = _require_note(note)
    try:
        revision = posting_revision_reject(revision=revision, by=by, note=note)
    except PostingActionError as error:
        raise ModerationError(str(error)) from error
    posting = revision.posting
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.REJECT,
        posting=posting,
        company=posting.company,
        actor=by,
        note=f"{REVISION_REJECTED}{note}"[:1000],
    )
    transaction.on_commit(
        lambda: notify_members(posting_id=posting.pk, template="revision_rejected", note=note)
    )
    return revision


@transaction.atomic
def company_moderation_verify(*, company, by, note: str = "") -> list[Posting]:
    """Verify a company: its waiting listings and edits go live, later ones publish at once."""
    company = Company.objects.select_for_update().get(pk=company.pk)
    if company.is_verified:
        raise ModerationError(f"{company.name} is already verified.")
    if company.is_suspended:
        # Verifying approves the company's waiting listings, which the suspension hid.
        raise ModerationError(f"{company.name} is suspended: lift the suspension first.")
    approved = company_verify(company=company, by=by)
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.VERIFY_COMPANY,
        company=company,
        actor=by,
        note=(" ".join(note.split()) or "Verified.")[:500],
    )
    return approved


DUPLICATE_CLOSED = "Listed again: see the other listing."
# The audit log has no kind of its own for lifting a suspension: it is a SUSPEND_COMPANY row
# whose note starts with this.
SUSPENSION_LIFTED = "Suspension lifted: "


@transaction.atomic
def posting_mark_duplicate(*, posting: Posting, other: Posting, by, note: str) -> Posting:
    """Close a listing that repeats another public one; its page sends candidates there."""
    note = _require_note(note)
    if other.pk == posting.pk:
        raise ModerationError("That is this listing: give the other one.")
    # Lock both rows in id order, so two moderators marking the pair each way take turns.
    locked = Posting.objects.select_for_update().in_bulk(sorted((posting.pk, other.pk)))
    posting = _lock_posting(locked[posting.pk])
    other = locked[other.pk]
    if other.status not in Posting.PUBLIC_STATUSES:
        raise ModerationError(
            f"“{other.title}” is {other.get_status_display().lower()}, not public: "
            "candidates cannot be sent there."
        )
    markable = (*Posting.PUBLIC_STATUSES, Posting.Status.PENDING_REVIEW)
    if posting.status not in markable:
        raise ModerationError(
            f"“{posting.title}” is {posting.get_status_display().lower()}: "
            "only a public listing or one waiting for review can be marked a duplicate."
        )
    if posting.posted_at is None:
        # Closing would make its unreviewed words public (a closed listing has a page).
        raise ModerationError(
            f"“{posting.title}” was never public: reject it instead, with a note naming "
            f"the other listing ({other.pk})."
        )
    seen, step = {other.pk}, other
    while step.duplicate_of_id is not None:
        if step.duplicate_of_id == posting.pk:
            raise ModerationError(
                f"“{other.title}” is already marked a duplicate of this listing: "
                "marking this one a duplicate of it would make a loop."
            )
        if step.duplicate_of_id in seen:
            break
        seen.add(step.duplicate_of_id)
        step = Posting.objects.only("pk", "duplicate_of").get(pk=step.duplicate_of_id)
    if other.duplicate_of_id is not None:
        target = Posting.objects.only("pk", "title").get(pk=other.duplicate_of_id)
        raise ModerationError(
            f"“{other.title}” is itself marked a duplicate of “{target.title}” "
            f"(listing {target.pk}): mark this one a duplicate of that listing instead."
        )
    posting.duplicate_of = other
    posting.status = Posting.Status.CLOSED
    posting.closed_at = timezone.now()
    posting.closed_reason = DUPLICATE_CLOSED
    posting.save(
        update_fields=["duplicate_of", "status", "closed_at", "closed_reason", "modified_at"]
    )
    _settle_open_reports(posting, status=Report.Status.RESOLVED, by=by, note=note)
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.MARK_DUPLICATE,
        posting=posting,
        company=posting.company,
        actor=by,
        note=f"{note} (duplicate of listing {other.pk}: {other.title})"[:1000],
    )
    return posting


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@transaction.atomic
def company_suspend(*, company: Company, by, note: str) -> dict[str, int]:
    """Suspend a company: its public and waiting listings are hidden pending review, it cannot
    publish or reopen, and the open reports on its listings are resolved. Returns the counts."""
    note = _require_note(note)
    company = Company.objects.select_for_update().get(pk=company.pk)
    if company.is_suspended:
        raise ModerationError(f"{company.name} is already suspended.")
    company.is_suspended = True
    company.save(update_fields=["is_suspended"])
    visible = Posting.objects.select_for_update().filter(
        company=company, status__in=(Posting.Status.PUBLISHED, Posting.Status.PENDING_REVIEW)
    )
    hidden = already_waiting = 0
    for posting in visible:
        if posting.status == Posting.Status.PUBLISHED:
            posting.status = Posting.Status.PENDING_REVIEW
            posting.save(update_fields=["status", "modified_at"])
            hidden += 1
        else:
            already_waiting += 1
    resolved = 0
    for posting in Posting.objects.filter(
        company=company, reports__status=Report.Status.OPEN
    ).distinct():
        resolved += _settle_open_reports(posting, status=Report.Status.RESOLVED, by=by, note=note)
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.SUSPEND_COMPANY,
        company=company,
        actor=by,
        note=(
            f"{note} ({_plural(hidden, 'public listing')} hidden pending review, "
            f"{already_waiting} already waiting; {_plural(resolved, 'open report')} resolved)"
        )[:1000],
    )
    transaction.on_commit(lambda: notify_company_suspended(company_id=company.pk, note=note))
    return {"hidden": hidden, "waiting": already_waiting, "resolved": resolved}


def notify_company_suspended(*, company_id: int, note: str) -> int:
    """Tell a suspended company's members why; returns emails sent."""
    company = Company.objects.get(pk=company_id)
    context = {
        "company": company,
        "note": note,
        "site_name": settings.SITE_NAME,
        "dashboard_url": settings.SITE_URL + reverse("employer:dashboard"),
    }
    subject = " ".join(
        render_to_string("reporting/email/company_suspended_subject.txt", context).split()
    )
    body = render_to_string("reporting/email/company_suspended.txt", context)
    sent = 0
    for membership in company.memberships.select_related("user"):
        try:
            sent += send_mail(subject, body, None, [membership.user.email])
        except OSError:
            logger.exception(
                "could not tell %s that company %s is suspended", membership.user.email, company_id
            )
    return sent


@transaction.atomic
def company_lift_suspension(*, company: Company, by, note: str) -> int:
    """Let a suspended company publish again. Its hidden listings stay pending review for a
    moderator to approve one by one; returns how many are waiting."""
    note = _require_note(note)
    company = Company.objects.select_for_update().get(pk=company.pk)
    if not company.is_suspended:
        raise ModerationError(f"{company.name} is not suspended.")
    company.is_suspended = False
    company.save(update_fields=["is_suspended"])
    waiting = Posting.objects.filter(company=company, status=Posting.Status.PENDING_REVIEW).count()
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.SUSPEND_COMPANY,
        company=company,
        actor=by,
        note=f"{SUSPENSION_LIFTED}{note} ({_plural(waiting, 'listing')} left pending review)"[
            :1000
        ],
    )
    return waiting


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
