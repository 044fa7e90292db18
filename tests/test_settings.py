"""Settings read from the environment, checked in a fresh interpreter per case.

Each case runs ``django.setup()`` in a subprocess with a clean environment, so the results do not
depend on what the test runner itself has set (bin/test sets DATABASE_URL, REDIS_URL, ...).
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Everything the settings read that could change what these tests look at.
SETTINGS_ENV = {
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "CONN_MAX_AGE",
    "EMAIL_URL",
    "SECURE_COOKIES",
    "STATICFILES_STORAGE",
    "VAR_DIR",
    "CSP_REPORT_ONLY",
    "CSP_REPORT_URI",
}

SHOW_SETTINGS = """
import json
import django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "ENGINE": db["ENGINE"],
    "DB_NAME": str(db["NAME"]),
    "DB_HOST": db.get("HOST", ""),
    "CONN_MAX_AGE": db.get("CONN_MAX_AGE", 0),
    "CACHE": settings.CACHES["default"]["BACKEND"],
    "EAGER": settings.CELERY_TASK_ALWAYS_EAGER,
    "BROKER": settings.CELERY_BROKER_URL,
    "EMAIL_BACKEND": settings.EMAIL_BACKEND,
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
    "CSP": getattr(settings, "CONTENT_SECURITY_POLICY", None),
    "CSP_REPORT_ONLY": getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None),
}))
"""

STRONG_KEY = secrets.token_urlsafe(50)


def run_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if key not in SETTINGS_ENV}
    clean["DJANGO_SETTINGS_MODULE"] = "jobboard.settings"
    clean["VAR_DIR"] = str(tmp_path / "var")
    clean.update(env)
    return subprocess.run(  # noqa: S603 (our own interpreter, fixed code)
        [sys.executable, "-c", SHOW_SETTINGS],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def settings_with(tmp_path: Path, **env: str) -> dict:
    result = run_settings(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_refuses(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    assert_refuses(run_settings(tmp_path, DEBUG="false"), "SECRET_KEY is not set")


def test_a_real_database_means_production_so_no_secret_key_refuses(tmp_path):
    result = run_settings(tmp_path, DATABASE_URL="postgres://u:p@db.invalid:5432/jobboard")
    assert_refuses(result, "SECRET_KEY is not set")


@pytest.mark.parametrize(
    "weak_key",
    [
        "changeme",
        "x" * 60,
        "django-insecure-" + secrets.token_urlsafe(50),
    ],
    ids=["short", "repetitive", "django-insecure"],
)
def test_production_refuses_a_weak_secret_key(tmp_path, weak_key):
    assert_refuses(run_settings(tmp_path, DEBUG="false", SECRET_KEY=weak_key), "too weak")


def test_production_starts_with_a_strong_secret_key(tmp_path):
    settings = settings_with(tmp_path, DEBUG="false", SECRET_KEY=STRONG_KEY)
    assert settings["DEBUG"] is False


def test_nothing_set_is_the_embedded_default(tmp_path):
    settings = settings_with(tmp_path)
    assert settings["DEBUG"] is True
    assert settings["ENGINE"] == "django.db.backends.sqlite3"
    assert settings["DB_NAME"] == str(tmp_path / "var" / "jobboard.sqlite3")
    assert settings["CACHE"] == "django.core.cache.backends.locmem.LocMemCache"
    assert settings["EAGER"] is True
    assert settings["BROKER"] == "memory://"
    assert settings["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_embedded_default_in_production_mode_keeps_plain_http_cookies(tmp_path):
    """bin/serve runs the embedded default with DEBUG off over plain http on localhost."""
    settings = settings_with(tmp_path, DEBUG="false", SECRET_KEY=STRONG_KEY)
    assert settings["ENGINE"] == "django.db.backends.sqlite3"
    assert settings["SESSION_COOKIE_SECURE"] is False


def test_database_and_redis_urls_switch_to_postgres_and_redis(tmp_path):
    settings = settings_with(
        tmp_path,
        DATABASE_URL="postgres://u:p@db.invalid:5432/jobboard",
        REDIS_URL="redis://cache.invalid:6379/3",
        SECRET_KEY=STRONG_KEY,
    )
    assert settings["DEBUG"] is False
    assert settings["ENGINE"] == "django.db.backends.postgresql"
    assert settings["DB_HOST"] == "db.invalid"
    assert settings["CONN_MAX_AGE"] > 0
    assert settings["CACHE"] == "jobboard.cache.RedisCache"
    assert settings["EAGER"] is False
    assert settings["BROKER"] == "redis://cache.invalid:6379/3"


def test_a_source_allowed_network_that_is_not_a_network_stops_the_start(tmp_path):
    result = run_settings(tmp_path, SOURCE_ALLOWED_NETWORKS="10.20.0.0/16,intranet")
    assert_refuses(result, "SOURCE_ALLOWED_NETWORKS: 'intranet' does not appear to be")


def test_the_content_security_policy_is_enforced_by_default(tmp_path):
    settings = settings_with(tmp_path)
    assert settings["CSP_REPORT_ONLY"] is None
    directives = settings["CSP"]["DIRECTIVES"]
    assert directives["script-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["report-uri"] is None


def test_csp_report_only_switches_the_policy_to_reporting_where_asked(tmp_path):
    settings = settings_with(tmp_path, CSP_REPORT_ONLY="true", CSP_REPORT_URI="/csp-reports/")
    assert settings["CSP"] is None
    directives = settings["CSP_REPORT_ONLY"]["DIRECTIVES"]
    assert directives["script-src"] == ["'self'"]
    assert directives["report-uri"] == "/csp-reports/"
