"""Celery tasks. Each takes ids, fetches afresh, and is safe to run twice or on two workers."""

from __future__ import annotations

from celery import shared_task

from . import counters


@shared_task
def flush_view_counts() -> int:
    """Add buffered view and apply-click counts to the postings (safe to run concurrently)."""
    added = counters.flush("views") + counters.flush("applies")
    counters.forget_old_flushes()
    return added


@shared_task
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


@shared_task
def send_deadline_reminders() -> int:
    """Email each open listing's company three days before its deadline, once."""
    from .reminders import deadline_reminders_send

    return deadline_reminders_send()
