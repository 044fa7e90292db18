"""Alert tasks: thin, take ids, and safe to run twice or on two workers (see services)."""

from __future__ import annotations

from celery import shared_task
from django.core.mail import get_connection

from postings.tasks import MAIL_RETRY

from . import services
from .models import SavedSearch


@shared_task
def send_alerts() -> int:
    """Beat: queue every saved search whose alert is due, in batches."""
    return services.alerts_schedule()


@shared_task
def delete_stale_searches() -> int:
    """Beat: delete the searches whose confirmation link expired unused."""
    return services.saved_searches_delete_stale()


@shared_task(soft_time_limit=240, time_limit=300, **MAIL_RETRY)
def send_alert_batch(search_ids: list[int]) -> int:
    return services.alert_batch_send(search_ids=[int(pk) for pk in search_ids])


@shared_task(**MAIL_RETRY)
def send_alert_confirmation(search_id: int, frequency: str) -> int:
    search = SavedSearch.objects.filter(pk=search_id).first()
    if search is None or frequency not in SavedSearch.PERIODS:
        return 0
    with get_connection() as connection:
        return connection.send_messages([services.confirmation_email(search, frequency)]) or 0
