"""Reports about listings, and the append-only log of what moderators (and the safety net) did."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Count, F, Max, Q

from postings.models import Company, Posting


class ReportQuerySet(models.QuerySet["Report"]):
    def open(self) -> ReportQuerySet:
        return self.filter(status=Report.Status.OPEN)

    def about(self, posting: Posting) -> ReportQuerySet:
        return self.filter(posting=posting)


class Report(models.Model):
    """One visitor's report about one listing; never deleted (dismissed and resolved ones stay)."""

    class Reason(models.TextChoices):
        UNSAFE = "unsafe", "Unsafe (scam, harassment, asks for money)"
        FAKE = "fake", "Fake (no such job or company)"
        CLOSED = "closed", "Closed (the job is no longer open)"
        DUPLICATED = "duplicated", "Duplicated (the same job is listed again)"
        INACCURATE = "inaccurate", "Inaccurate (wrong facts)"
        OTHER = "other", "Something else"
        # Filed by the re-check worker, never by a visitor.
        SOURCE_UNREACHABLE = "source_unreachable", "Source unreachable (automatic check)"
        # Filed when a listing published or imported repeats an open one (postings/duplicates.py).
        LIKELY_DUPLICATE = "likely_duplicate", "Likely duplicate (found automatically)"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DISMISSED = "dismissed", "Dismissed"
        RESOLVED = "resolved", "Resolved"

    # Lower is more urgent: the queue shows unsafe and fake first.
    URGENCY = {
        "unsafe": 0,
        "fake": 0,
        "closed": 1,
        "duplicated": 2,
        "inaccurate": 2,
        "other": 3,
        "source_unreachable": 2,
        "likely_duplicate": 3,
    }
    # The reasons a visitor may give; the others are filed by the system.
    VISITOR_REASONS = ("unsafe", "fake", "closed", "duplicated", "inaccurate", "other")
    # The reasons the safety net acts on by itself.
    DANGEROUS = ("unsafe", "fake")

    posting = models.ForeignKey(Posting, on_delete=models.PROTECT, related_name="reports")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    details = models.TextField(blank=True, max_length=2000)
    duplicate_of = models.ForeignKey(
        Posting, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    email = models.EmailField(blank=True, help_text="Optional, for a follow-up.")
    # A salted hash of the visitor's address and browser: enough to count distinct reporters,
    # never the address itself.
    reporter = models.CharField(max_length=64)
    # Salted hashes of the reporter's network (IPv4 /24, IPv6 /48) and browser (user agent), for
    # the safety net to tell many people from one person with several addresses (safety_net.py).
    # Empty on reports filed before they were kept, and on reports the system files.
    network = models.CharField(max_length=64, blank=True)
    agent = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    handling_note = models.CharField(max_length=500, blank=True)

    objects = ReportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("moderate", "Can work the moderation queue")]
        constraints = [
            # The same visitor reporting the same listing for the same reason counts once.
            models.UniqueConstraint(
                fields=["posting", "reason", "reporter"], name="report_once_per_visitor_and_reason"
            ),
            models.CheckConstraint(
                name="report_duplicate_of_only_for_duplicates",
                condition=Q(duplicate_of__isnull=True)
                | Q(reason__in=["duplicated", "likely_duplicate"]),
            ),
            models.CheckConstraint(
                name="report_handled_when_closed",
                condition=Q(status="open") | Q(handled_at__isnull=False),
            ),
        ]
        indexes = [
            models.Index("status", "posting", name="report_open_by_posting"),
            # The safety net's look-ups: a reporter's or network's dismissed reports, and one
            # browser's reports across listings.
            models.Index("reporter", "status", name="report_by_reporter"),
            models.Index("network", "status", name="report_by_network"),
            models.Index("agent", "created_at", name="report_by_agent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} report on posting {self.posting_id}"


class ModerationAction(models.Model):
    """The audit log: who did what, when and why. Rows are only ever added."""

    class Kind(models.TextChoices):
        DISMISS = "dismiss", "Dismissed a report"
        RESOLVE = "resolve", "Resolved a report"
        HIDE = "hide", "Hid the listing"
        CLOSE = "close", "Closed the listing"
        MARK_DUPLICATE = "mark_duplicate", "Marked the listing a duplicate"
        ASK_CORRECTION = "ask_correction", "Asked the employer to correct it"
        SUSPEND_COMPANY = "suspend_company", "Suspended the company"
        APPROVE = "approve", "Approved the listing"
        REJECT = "reject", "Rejected the listing"
        VERIFY_COMPANY = "verify_company", "Verified the company"
        AUTO_HIDE = "auto_hide", "Safety net hid the listing"
        NET_ALERT = "net_alert", "Safety net alerted moderators"

    kind = models.CharField(max_length=30, choices=Kind.choices)
    posting = models.ForeignKey(
        Posting, on_delete=models.PROTECT, null=True, blank=True, related_name="moderation_log"
    )
    company = models.ForeignKey(
        Company, on_delete=models.PROTECT, null=True, blank=True, related_name="moderation_log"
    )
    report = models.ForeignKey(
        Report, on_delete=models.PROTECT, null=True, blank=True, related_name="actions"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="moderation_actions",
        help_text="Empty when the safety net acted with nobody at the keyboard.",
    )
    note = models.CharField(max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        who = self.actor or "safety net"
        return f"{who}: {self.get_kind_display()}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("The moderation log is append-only: actions are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("The moderation log is append-only: actions are never deleted.")


class DigestState(models.Model):
    """One row: when moderators last got a digest, the last report it covered, and the last
    safety-net alert they were sent."""

    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_report_id = models.BigIntegerField(default=0)
    # The last safety-net action (auto_hide or net_alert) moderators were emailed about at once.
    last_alert_action_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"digest up to report {self.last_report_id}"


# The two queues of listings out of sight (pending review), told apart by the audit log: a listing
# hidden (by a moderator or the safety net) since its last approval or rejection is "hidden after
# reports"; every other one is "waiting for approval" (an unverified company's new listing or
# edit, or a suspended company's listing).
HIDDEN_KINDS = (ModerationAction.Kind.HIDE, ModerationAction.Kind.AUTO_HIDE)
REVIEWED_KINDS = (ModerationAction.Kind.APPROVE, ModerationAction.Kind.REJECT)


def postings_pending_review() -> models.QuerySet[Posting]:
    """Listings pending review with when they were last hidden and last reviewed, and their
    open reports."""
    return Posting.objects.filter(status=Posting.Status.PENDING_REVIEW).annotate(
        last_hidden=Max(
            "moderation_log__created_at", filter=Q(moderation_log__kind__in=HIDDEN_KINDS)
        ),
        last_reviewed=Max(
            "moderation_log__created_at", filter=Q(moderation_log__kind__in=REVIEWED_KINDS)
        ),
        open_reports=Count("reports", filter=Q(reports__status="open"), distinct=True),
    )


def postings_hidden_after_reports() -> models.QuerySet[Posting]:
    return postings_pending_review().filter(
        Q(last_reviewed__isnull=True) | Q(last_hidden__gt=F("last_reviewed")),
        last_hidden__isnull=False,
    )


def postings_waiting_for_approval() -> models.QuerySet[Posting]:
    return postings_pending_review().filter(
        Q(last_hidden__isnull=True) | Q(last_reviewed__gt=F("last_hidden"))
    )
