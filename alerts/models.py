"""Saved searches: a list page's filters kept for an email address, with the alerts sent for it.

No account is needed. An address is subscribed only after it confirms a signed link (double
opt-in); every alert carries a one-click unsubscribe. ``AlertDelivery`` remembers each listing an
alert carried, so no subscriber ever gets the same listing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from postings.models import Posting


class SavedSearchQuerySet(models.QuerySet["SavedSearch"]):
    def active(self) -> SavedSearchQuerySet:
        """Confirmed and not unsubscribed: the searches that get alerts."""
        return self.filter(confirmed_at__isnull=False, unsubscribed_at__isnull=True)

    def due(self, now: datetime | None = None) -> SavedSearchQuerySet:
        return self.active().filter(next_alert_at__lte=now or timezone.now())

    def unconfirmed(self) -> SavedSearchQuerySet:
        return self.filter(confirmed_at__isnull=True)

    def for_email(self, email: str) -> SavedSearchQuerySet:
        return self.filter(email=email.strip().lower())


class SavedSearch(models.Model):
    class Frequency(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"

    PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}

    email = models.EmailField(help_text="Stored lower-cased.")
    # The list page's valid filters, normalized (postings.browse.canonical_filters), e.g.
    # "q=python&workplace=remote". Empty means every new job.
    query = models.CharField(max_length=2000, blank=True)
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.DAILY)
    # Until confirmed: when the newest confirmation link was asked for (deleted once it expires).
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    # Listings posted since then are new to this subscriber (less a grace period, see services).
    covered_until = models.DateTimeField(null=True, blank=True)
    next_alert_at = models.DateTimeField(null=True, blank=True)
    # Set when a run queues this search, so the next run does not queue it again meanwhile.
    queued_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    alerts_sent = models.PositiveIntegerField(default=0)

    objects = SavedSearchQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "saved searches"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["email", "query"], name="saved_search_once_per_email")
        ]
        indexes = [
            models.Index(
                "next_alert_at",
                name="saved_search_due",
                condition=Q(confirmed_at__isnull=False, unsubscribed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.email}: {self.query or 'all jobs'} ({self.frequency})"

    @property
    def is_active(self) -> bool:
        return self.confirmed_at is not None and self.unsubscribed_at is None

    @property
    def period(self) -> timedelta:
        return self.PERIODS[self.frequency]


class AlertDelivery(models.Model):
    """A listing one alert carried to one saved search: never again to that search."""

    saved_search = models.ForeignKey(
        SavedSearch, on_delete=models.CASCADE, related_name="deliveries"
    )
    posting = models.ForeignKey(Posting, on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(default=timezone.now)
    alert_number = models.PositiveIntegerField(help_text="Which alert of the search carried it.")

    class Meta:
        verbose_name_plural = "alert deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["saved_search", "posting"], name="alert_delivery_once_per_search"
            )
        ]

    def __str__(self) -> str:
        return f"posting {self.posting_id} to search {self.saved_search_id}"
