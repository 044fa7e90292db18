"""Cookie and log-in settings as production starts them, in a fresh interpreter per case."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOW = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "session": settings.SESSION_COOKIE_SECURE,
    "csrf": settings.CSRF_COOKIE_SECURE,
    "httponly": settings.SESSION_COOKIE_HTTPONLY,
    "axes_username": settings.AXES_USERNAME_CALLABLE,
    "axes_template": settings.AXES_LOCKOUT_TEMPLATE,
}))
"""
KEEP_OUT = {
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEBUG",
    "SECURE_COOKIES",
    "SITE_URL",
    "VAR_DIR",
}


def settings_with(tmp_path: Path, **env: str) -> dict:
    clean = {key: value for key, value in os.environ.items() if key not in KEEP_OUT}
    clean.update(DJANGO_SETTINGS_MODULE="jobboard.settings", VAR_DIR=str(tmp_path), **env)
    result = subprocess.run(  # noqa: S603 (our own interpreter, fixed code)
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


PRODUCTION = {
    "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "SITE_URL": "https://jobs.example.com",
}


def test_production_session_and_csrf_cookies_are_secure_and_httponly(tmp_path):
    shown = settings_with(tmp_path, **PRODUCTION)
    assert shown["session"] is True
    assert shown["csrf"] is True
    assert shown["httponly"] is True


def test_the_embedded_default_uses_plain_cookies_for_http_on_localhost(tmp_path):
    shown = settings_with(tmp_path)
    assert shown["session"] is False
    assert shown["csrf"] is False


@pytest.mark.parametrize("env", [{"SECURE_COOKIES": "false"}, {"DEBUG": "true"}])
def test_production_may_turn_secure_cookies_off_only_explicitly(tmp_path, env):
    shown = settings_with(tmp_path, **PRODUCTION, **env)
    assert shown["session"] is False and shown["csrf"] is False


def test_axes_matches_emails_case_insensitively_and_uses_our_lockout_page(tmp_path):
    shown = settings_with(tmp_path)
    assert shown["axes_username"] == "accounts.lockout.username"
    assert shown["axes_template"] == "accounts/locked_out.html"
