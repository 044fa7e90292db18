from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone

from accounts import services

register = template.Library()


@register.filter
def duration(delta: timedelta | None) -> str:
    """A cool-off time in words, rounded up to the minute: "15 minutes", "1 hour 30 minutes"."""
    if not delta:
        return ""
    minutes = max(1, -(-int(delta.total_seconds()) // 60))
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


@register.filter
def from_now(delta: timedelta | None) -> datetime | None:
    return timezone.now() + delta if delta else None


@register.filter
def logo_url(company) -> str:
    """The address of a company's logo, versioned so a new logo is never served from a cache;
    empty when it has none: ``{% with logo=company|logo_url %}``."""
    return services.logo_url(company)
