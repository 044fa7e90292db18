"""What a production deployment has not configured yet, said plainly in the log at start.

A first run (``docker compose up`` on a new host) works before mail and TLS are set up; these
lines say what that costs, so that nobody waits for a verification email that went to the log.
The embedded default (``bin/serve``, no ``DATABASE_URL``) is a developer's machine and stays quiet.
"""

from __future__ import annotations

import logging

from django.conf import settings

logger = logging.getLogger("jobboard.startup")

CONSOLE_EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_SITE_URL = "http://127.0.0.1:8000"


def unconfigured() -> list[str]:
    """One sentence per thing this deployment has not configured yet; empty when all is set."""
    if not settings.DATABASE_URL or settings.DEBUG:
        return []
    notes = []
    if settings.EMAIL_BACKEND == CONSOLE_EMAIL_BACKEND:
        notes.append(
            "EMAIL_URL is not set: emails are written to this log and nobody receives them "
            "(sign-up verification, alerts, reminders). Set EMAIL_URL, e.g. "
            "smtp+tls://user:password@smtp.example.com:587."
        )
    if settings.SITE_URL == DEFAULT_SITE_URL:
        notes.append(
            f"SITE_URL is not set: links in emails point at {DEFAULT_SITE_URL}. "
            "Set SITE_URL to the site's public address, e.g. https://jobs.example.com."
        )
    elif not settings.SITE_IS_HTTPS:
        notes.append(
            f"The site is served over plain HTTP ({settings.SITE_URL}): passwords and CVs cross "
            "the network unencrypted and cookies are not marked Secure. Set up TLS (README, "
            '"TLS"), then set SITE_URL=https://..., SECURE_SSL_REDIRECT and SECURE_HSTS_SECONDS.'
        )
    elif not settings.SESSION_COOKIE_SECURE:
        notes.append("SECURE_COOKIES is off on an https:// site: cookies may leak over HTTP.")
    return notes


def log_unconfigured(process: str) -> None:
    """Log each unconfigured thing once as a warning, naming the process (web, worker, beat)."""
    for note in unconfigured():
        logger.warning("%s: not configured yet: %s", process, note)
