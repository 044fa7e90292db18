"""Saved searches and their email alerts.

Subscribing takes an address, a frequency and the list page's filters, and sends a signed
confirmation link; nothing is ever sent to an address that did not confirm it (double opt-in).

Sending is batched and resumable. Beat runs ``alerts_schedule``, which queues the due searches in
batches. Each search is then sent in a transaction of its own that holds its row (a search held by
another worker is skipped, not waited for), checks that it is still due, records every listing
the alert carries in ``AlertDelivery`` (unique per search and listing), sends, and only then
commits. A worker killed before the mail server accepted the email rolls all of that back, so the
search is still due and the next try sends it once; a killed batch leaves the searches it had not
reached due too. The one window left is between the mail server's acceptance and our COMMIT (one
database round trip): the email then goes again on the next try, with the same ``Message-ID``, so
mail systems that deduplicate by it show it once. Committing before sending would turn that same
crash into an alert nobody ever gets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import QueryDict
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_countries import countries

from jobboard.mailbox import email_allowed
from postings.filters import PostingFilter
from postings.models import Posting

from .models import AlertDelivery, SavedSearch

logger = logging.getLogger(__name__)

CONFIRM_SALT = "alerts.confirm"
MANAGE_SALT = "alerts.manage"
# Filters that make no sense for an alert: it carries open listings new since the last one.
NOT_SAVED = ("include_closed", "posted")


class InvalidLink(Exception):
    """A confirmation or management link that was altered, or has expired."""


class SubscribeRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- What a saved search is ---------------------------------------------------------------------


def normalize_query(params: QueryDict) -> str:
    """The valid list filters of ``params`` in one spelling (sorted, spaces collapsed), so the
    same search asked twice is one saved search; invalid and unknown parameters are dropped."""
    filterset = PostingFilter(params, queryset=Posting.objects.none())
    filterset.is_valid()
    kept = QueryDict(mutable=True)
    for name, value in sorted(filterset.active_filters.items()):
        if name in NOT_SAVED:
            continue
        if isinstance(value, list | tuple):
            kept.setlist(name, sorted(str(v) for v in value))
        elif isinstance(value, str):
            kept[name] = " ".join(value.split())
        else:
            kept[name] = str(value)
    return kept.urlencode()


def describe_query(query: str) -> str:
    """A saved search in words: “python” · Remote · Senior · in Berlin. "All jobs" when empty."""
    filterset = PostingFilter(QueryDict(query), queryset=Posting.objects.none())
    if not filterset.is_valid() and not hasattr(filterset.form, "cleaned_data"):
        return "All jobs"
    data = filterset.active_filters
    parts: list[str] = []
    if data.get("q"):
        parts.append(f"“{data['q']}”")
    for name in ("workplace", "employment_type", "seniority", "practice_area", "company_type"):
        values = data.get(name) or []
        if values:
            labels = dict(filterset.filters[name].extra["choices"])
            parts.append(" or ".join(str(labels.get(v, v)) for v in values))
    if data.get("location"):
        parts.append(f"in {data['location']}")
    if data.get("country"):
        parts.append(f"in {dict(countries).get(data['country'], data['country'])}")
    if data.get("company"):
        parts.append(f"at {data['company']}")
    if data.get("salary_min"):
        parts.append(f"from {data['salary_min']:,} a year")
    return " · ".join(parts) or "All jobs"


def list_url(search: SavedSearch) -> str:
    """The list page showing this search's open jobs, newest first."""
    base = settings.SITE_URL + reverse("postings:list")
    return f"{base}?{search.query}" if search.query else base


# --- Links ---------------------------------------------------------------------------------------


def confirm_token(search: SavedSearch, frequency: str | None = None) -> str:
    return signing.TimestampSigner(salt=CONFIRM_SALT).sign_object(
        {"s": search.pk, "f": frequency or search.frequency}
    )


def manage_token(search: SavedSearch) -> str:
    """Never expires: an alert's unsubscribe link must keep working for as long as alerts come."""
    return signing.Signer(salt=MANAGE_SALT).sign(str(search.pk))


def search_for_manage_token(token: str) -> SavedSearch:
    try:
        pk = int(signing.Signer(salt=MANAGE_SALT).unsign(token[:200]))
    except (signing.BadSignature, ValueError) as exc:
        raise InvalidLink from exc
    search = SavedSearch.objects.filter(pk=pk).first()
    if search is None:
        raise InvalidLink
    return search


def manage_url(search: SavedSearch) -> str:
    return settings.SITE_URL + reverse("alerts:manage", args=[manage_token(search)])


def unsubscribe_url(search: SavedSearch) -> str:
    return settings.SITE_URL + reverse("alerts:unsubscribe", args=[manage_token(search)])


# --- Subscribing ---------------------------------------------------------------------------------


def saved_search_request(*, email: str, frequency: str, query: str) -> SavedSearch:
    """Keep (or find) the search for this address and send it a confirmation link.

    Nothing changes for an address that already confirmed the same search until the new link
    is confirmed too: a stranger cannot change someone else's alerts by typing their address.
    Nor can a stranger use up an address's ``ALERTS_MAX_PER_EMAIL``: only confirmed searches
    count, nothing is saved once its mailbox has had today's confirmation emails, and a search
    never confirmed is deleted after ``ALERTS_CONFIRM_DAYS`` (``saved_searches_delete_stale``).
    """
    email = email.strip().lower()
    search = SavedSearch.objects.filter(email=email, query=query).first()
    if search is None or not search.is_active:
        _refuse_past_max(email, search)
    if not email_allowed(
        kind="alert_confirmation", to=email, per_day=settings.ALERTS_CONFIRMATIONS_PER_DAY
    ):
        raise SubscribeRefused(
            "We have sent several confirmation emails to this address today. "
            "Please look for them in your inbox (and spam folder), or try again tomorrow."
        )
    if search is None:
        try:
            with transaction.atomic():
                search = SavedSearch.objects.create(email=email, query=query, frequency=frequency)
        except IntegrityError:  # the same request twice at once
            search = SavedSearch.objects.get(email=email, query=query)
    elif search.confirmed_at is None:
        # A new link for a search never confirmed: keep it as long as this link works.
        SavedSearch.objects.filter(pk=search.pk).update(created_at=timezone.now())
    from .tasks import send_alert_confirmation

    transaction.on_commit(lambda: send_alert_confirmation.delay(search.pk, frequency))
    return search


def _refuse_past_max(email: str, search: SavedSearch | None) -> None:
    """Turning on one more search for an address that has ALERTS_MAX_PER_EMAIL on is refused."""
    active = SavedSearch.objects.for_email(email).active()
    if search is not None:
        active = active.exclude(pk=search.pk)
    if active.count() >= settings.ALERTS_MAX_PER_EMAIL:
        raise SubscribeRefused(
            f"This address already has {settings.ALERTS_MAX_PER_EMAIL} saved searches. "
            "Stop one with the link at the end of any alert, then try again."
        )


def saved_searches_delete_stale(*, now: datetime | None = None) -> int:
    """Delete the searches whose confirmation link has expired unused; returns how many."""
    cutoff = (now or timezone.now()) - settings.ALERTS_CONFIRM_MAX_AGE
    deleted, _ = SavedSearch.objects.unconfirmed().filter(created_at__lt=cutoff).delete()
    if deleted:
        logger.info("deleted %s saved search(es) never confirmed", deleted)
    return deleted


def confirmation_email(search: SavedSearch, frequency: str) -> EmailMessage:
    context = {
        "search": search,
        "description": describe_query(search.query),
        "frequency": SavedSearch.Frequency(frequency).label.lower(),
        "confirm_url": settings.SITE_URL
        + reverse("alerts:confirm", args=[confirm_token(search, frequency)]),
        "days": settings.ALERTS_CONFIRM_MAX_AGE.days,
        "site_name": settings.SITE_NAME,
    }
    subject = " ".join(render_to_string("alerts/email/confirm_subject.txt", context).split())
    body = render_to_string("alerts/email/confirm.txt", context)
    return EmailMessage(subject=subject, body=body, to=[search.email])


def _confirm_payload(token: str) -> tuple[int, str]:
    try:
        payload = signing.TimestampSigner(salt=CONFIRM_SALT).unsign_object(
            token[:500], max_age=settings.ALERTS_CONFIRM_MAX_AGE
        )
        return int(payload["s"]), SavedSearch.Frequency(payload["f"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise InvalidLink from exc


def saved_search_confirm_check(*, token: str) -> SavedSearch:
    """The search a confirmation link names, if the link is genuine and fresh; changes nothing."""
    pk, _frequency = _confirm_payload(token)
    search = SavedSearch.objects.filter(pk=pk).first()
    if search is None:
        raise InvalidLink
    return search


def saved_search_confirm(*, token: str, now: datetime | None = None) -> SavedSearch:
    """Turn on the search a confirmation link names, at the frequency it was asked for."""
    pk, frequency = _confirm_payload(token)
    return _subscribe(pk=pk, frequency=frequency, now=now or timezone.now())


def saved_search_change(
    *, search: SavedSearch, frequency: str, now: datetime | None = None
) -> SavedSearch:
    """From the management page (its link proves the address): set how often, and subscribe
    again if it had stopped."""
    return _subscribe(pk=search.pk, frequency=frequency, now=now or timezone.now())


def _subscribe(*, pk: int, frequency: str, now: datetime) -> SavedSearch:
    """Active at this frequency. A new or returning subscriber gets jobs posted from now on;
    a changed frequency counts from the last alert."""
    period = SavedSearch.PERIODS[frequency]
    with transaction.atomic():
        search = SavedSearch.objects.select_for_update().filter(pk=pk).first()
        if search is None:
            raise InvalidLink
        if not search.is_active:
            _refuse_past_max(search.email, search)
            search.confirmed_at = search.confirmed_at or now
            search.unsubscribed_at = None
            search.covered_until = now
            search.next_alert_at = now + period
        elif frequency != search.frequency:
            search.next_alert_at = (search.covered_until or now) + period
        search.frequency = frequency
        search.save()
    return search


def saved_search_unsubscribe(*, search: SavedSearch, now: datetime | None = None) -> SavedSearch:
    if search.unsubscribed_at is None:
        search.unsubscribed_at = now or timezone.now()
        search.save(update_fields=["unsubscribed_at"])
    return search


# --- Sending alerts ------------------------------------------------------------------------------


@dataclass
class AlertContent:
    postings: list[Posting]
    more: bool  # more new listings matched than one alert carries


def alert_content(search: SavedSearch, now: datetime) -> AlertContent:
    """The open listings matching the search, posted since its last alert and never sent to it,
    newest first, at most ALERTS_MAX_LISTINGS.

    "Since" reaches back ALERTS_GRACE before the last alert, for a listing whose transaction
    committed just after that alert looked; ``AlertDelivery`` keeps it from coming twice.
    """
    filterset = PostingFilter(QueryDict(search.query), queryset=Posting.objects.for_cards())
    if filterset.errors:  # a saved filter that no longer exists: never widen someone's search
        logger.warning("saved search %s has invalid filters %s", search.pk, dict(filterset.errors))
        return AlertContent([], False)
    since = search.confirmed_at
    if search.covered_until:
        since = max(since, search.covered_until - settings.ALERTS_GRACE)
    queryset = (
        filterset.qs.filter(posted_at__gte=since, posted_at__lte=now, duplicate_of__isnull=True)
        .exclude(pk__in=AlertDelivery.objects.filter(saved_search=search).values("posting_id"))
        .order_by("-posted_at", "-pk")
    )
    limit = settings.ALERTS_MAX_LISTINGS
    rows = list(queryset[: limit + 1])
    return AlertContent(rows[:limit], len(rows) > limit)


def alert_email(
    search: SavedSearch, content: AlertContent, number: int, now: datetime
) -> EmailMessage:
    unsubscribe = unsubscribe_url(search)
    context = {
        "search": search,
        "description": describe_query(search.query),
        "postings": content.postings,
        "more": content.more,
        "site_url": settings.SITE_URL,
        "list_url": list_url(search),
        "manage_url": manage_url(search),
        "unsubscribe_url": unsubscribe,
        "site_name": settings.SITE_NAME,
        "now": now,
    }
    subject = " ".join(render_to_string("alerts/email/alert_subject.txt", context).split())
    body = render_to_string("alerts/email/alert.txt", context)
    domain = urlsplit(settings.SITE_URL).hostname or "localhost"
    return EmailMessage(
        subject=subject,
        body=body,
        to=[search.email],
        headers={
            # One-click unsubscribe (RFC 8058): mail clients POST to the link.
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            # The same alert sent again after a crash keeps its id (see the module's docstring).
            "Message-ID": f"<alert-{search.pk}-{number}@{domain}>",
            "Auto-Submitted": "auto-generated",
        },
    )


def _next_alert_at(search: SavedSearch, now: datetime) -> datetime:
    """Keep a daily alert at the same time of day; after an outage, one period from now."""
    scheduled = (search.next_alert_at or now) + search.period
    return scheduled if scheduled > now else now + search.period


def alert_send(*, search_id: int, connection: BaseEmailBackend, now: datetime | None = None) -> int:
    """Send one due search its alert, if it has new listings; returns emails sent (0 or 1).

    Raises what the mail server raises, with nothing recorded: the search stays due.
    """
    now = now or timezone.now()
    with transaction.atomic():
        search = (
            SavedSearch.objects.due(now)
            .select_for_update(skip_locked=True)
            .filter(pk=search_id)
            .first()
        )
        if search is None:  # sent already, held by another worker, or no longer due
            return 0
        content = alert_content(search, now)
        sent = 0
        if content.postings:
            number = search.alerts_sent + 1
            AlertDelivery.objects.bulk_create(
                AlertDelivery(saved_search=search, posting=p, sent_at=now, alert_number=number)
                for p in content.postings
            )
            sent = connection.send_messages([alert_email(search, content, number, now)]) or 0
            if not sent:
                raise RuntimeError(f"the mail backend did not send the alert of search {search.pk}")
            search.alerts_sent = number
            search.last_sent_at = now
        search.covered_until = now
        search.next_alert_at = _next_alert_at(search, now)
        search.queued_at = None
        search.save(
            update_fields=[
                "alerts_sent", "last_sent_at", "covered_until", "next_alert_at", "queued_at"
            ]
        )  # fmt: skip
    logger.info(
        "alert for search %s: %s listing(s), %s email", search_id, len(content.postings), sent
    )
    return sent


def alert_batch_send(*, search_ids: list[int], now: datetime | None = None) -> int:
    """Send each due search of the batch its alert over one mail connection; returns emails sent.

    A mail server error stops the batch and propagates (the task retries it; searches already
    sent are no longer due). Any other error skips that one search, which stays due.
    """
    sent = 0
    with get_connection() as connection:
        for search_id in search_ids:
            try:
                sent += alert_send(search_id=search_id, connection=connection, now=now)
            except OSError:  # smtplib's errors are OSErrors: the server is away, try later
                raise
            except Exception:
                logger.exception("alert for search %s failed; it stays due", search_id)
    return sent


def alerts_schedule(*, now: datetime | None = None) -> int:
    """Queue the due searches in batches of ALERTS_BATCH_SIZE; returns how many were queued.

    Queued searches are marked, so the next run does not queue them again while they wait; a
    batch that was lost gives its searches back after ALERTS_QUEUED_LEASE.
    """
    from .tasks import send_alert_batch

    now = now or timezone.now()
    lease = now - settings.ALERTS_QUEUED_LEASE
    queued = 0
    while queued < settings.ALERTS_MAX_PER_RUN:
        with transaction.atomic():
            ids = list(
                SavedSearch.objects.due(now)
                .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=lease))
                .order_by("next_alert_at", "pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[: settings.ALERTS_BATCH_SIZE]
            )
            if not ids:
                break
            SavedSearch.objects.filter(pk__in=ids).update(queued_at=now)
            transaction.on_commit(lambda ids=ids: send_alert_batch.delay(ids))
        queued += len(ids)
    return queued
