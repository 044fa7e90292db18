"""How django-axes names the account a failed log-in was for (settings.AXES_USERNAME_CALLABLE)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def normalize_email(value: object) -> str:
    """The form in which emails are stored: trimmed and lower-cased."""
    return str(value or "").strip().lower()[:254]


def username(request: HttpRequest, credentials: dict | None) -> str:
    """The email a log-in attempt was for, lower-cased, so that changing its case does not give
    an attacker a fresh set of attempts against the same account."""
    field = settings.AXES_USERNAME_FORM_FIELD
    if credentials:
        return normalize_email(credentials.get(field))
    data = getattr(request, "data", None) or request.POST
    return normalize_email(data.get(field))
