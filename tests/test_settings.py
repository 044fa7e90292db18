"""Settings read from the environment, checked in a fresh interpreter per case.

Each case runs ``django.setup()`` in a subprocess with a clean environment, so the results do not
depend on what the test runner itself has set (bin/test sets DATABASE_URL, REDIS_URL, ...).
"""

import ast
import json
import os
import re
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
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "BEHIND_TLS_PROXY",
    "SITE_URL",
    "STATICFILES_STORAGE",
    "STATIC_ROOT",
    "VAR_DIR",
    "CSP_REPORT_ONLY",
    "CSP_REPORT_URI",
    # Set by tests/e2e for Playwright; `check --deploy` rightly refuses it.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
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
    "CSRF_COOKIE_SECURE": settings.CSRF_COOKIE_SECURE,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
}))
"""

STRONG_KEY = secrets.token_urlsafe(50)


def run_settings(
    tmp_path: Path, *, code: str = SHOW_SETTINGS, args: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess:
    """Run ``code`` (or ``manage.py args``) seeing only ``env`` of the settings' variables."""
    clean = {key: value for key, value in os.environ.items() if key not in SETTINGS_ENV}
    clean["DJANGO_SETTINGS_MODULE"] = "jobboard.settings"
    clean["VAR_DIR"] = str(tmp_path / "var")
    clean.update(env)
    command = ["manage.py", *args] if args else ["-c", code]
    return subprocess.run(  # noqa: S603 (our own interpreter, fixed code)
        [sys.executable, *command],
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


CONNECT = """
import django
from django.db import connection
django.setup()
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
    print(connection.vendor, cursor.fetchone()[0])
"""


def test_an_sqlite_database_url_connects(tmp_path):
    """django-environ documents sqlite:///path; PostgreSQL's options must not reach SQLite."""
    result = run_settings(
        tmp_path,
        code=CONNECT,
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
        SECRET_KEY=STRONG_KEY,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["sqlite", "1"]


def test_postgres_connections_still_turn_jit_off(tmp_path):
    code = SHOW_SETTINGS.replace('"DEBUG": settings.DEBUG,', '"OPTIONS": db["OPTIONS"],')
    result = run_settings(
        tmp_path, code=code, DATABASE_URL="postgres://u@db.invalid/x", SECRET_KEY=STRONG_KEY
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["OPTIONS"]["options"] == "-c jit=off"


PRODUCTION = {"DATABASE_URL": "postgres://u:p@db.invalid:5432/jobboard", "SECRET_KEY": STRONG_KEY}


def test_a_first_run_over_plain_http_on_a_real_hostname_keeps_cookies_usable(tmp_path):
    """Secure cookies never come back over http://, and every form would fail its CSRF check."""
    settings = settings_with(tmp_path, **PRODUCTION, SITE_URL="http://jobs.example.com:8000")
    assert settings["SESSION_COOKIE_SECURE"] is False
    assert settings["CSRF_COOKIE_SECURE"] is False
    # SITE_URL alone is enough to reach the site by its name.
    assert "jobs.example.com" in settings["ALLOWED_HOSTS"]
    assert "localhost" in settings["ALLOWED_HOSTS"]


def test_an_https_site_has_secure_cookies(tmp_path):
    settings = settings_with(tmp_path, **PRODUCTION, SITE_URL="https://jobs.example.com")
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["CSRF_COOKIE_SECURE"] is True


def test_site_url_host_is_added_to_the_allowed_hosts_given(tmp_path):
    settings = settings_with(
        tmp_path, **PRODUCTION, SITE_URL="https://[2001:db8::1]/", ALLOWED_HOSTS="a.example"
    )
    assert settings["ALLOWED_HOSTS"] == ["a.example", "[2001:db8::1]"]


# The TLS settings the README documents for a site served over https.
DOCUMENTED_TLS = {
    "SITE_URL": "https://jobs.example.com",
    "BEHIND_TLS_PROXY": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def test_check_deploy_is_clean_with_the_documented_tls_settings(tmp_path):
    result = run_settings(tmp_path, args=("check", "--deploy"), **PRODUCTION, **DOCUMENTED_TLS)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr
    assert "WARNINGS" not in result.stderr


START_WEB = """
import jobboard.wsgi
"""


def test_the_web_process_says_at_start_what_is_not_configured(tmp_path):
    result = run_settings(
        tmp_path,
        code=START_WEB,
        **PRODUCTION,
        SITE_URL="http://jobs.example.com:8000",
        EMAIL_URL="consolemail://",
    )
    assert result.returncode == 0, result.stderr
    assert "web: not configured yet: EMAIL_URL is not set" in result.stderr
    assert "nobody receives them" in result.stderr
    assert "served over plain HTTP (http://jobs.example.com:8000)" in result.stderr


def test_a_configured_site_starts_quietly(tmp_path):
    result = run_settings(
        tmp_path,
        code=START_WEB,
        **PRODUCTION,
        **DOCUMENTED_TLS,
        EMAIL_URL="smtp+tls://u:p@smtp.example.com:587",
    )
    assert result.returncode == 0, result.stderr
    assert "not configured yet" not in result.stderr


def test_the_embedded_default_starts_quietly(tmp_path):
    result = run_settings(tmp_path, code=START_WEB, DEBUG="false", SECRET_KEY=STRONG_KEY)
    assert result.returncode == 0, result.stderr
    assert "not configured yet" not in result.stderr


# --- The README's Configuration table names every variable the settings and compose read -----

ENV_CASTS = {"str", "int", "bool", "float", "list", "dict", "json", "url", "db_url", "db"}
ENV_CASTS |= {"email_url", "cache_url", "path"}


def variables_read_by_settings() -> set[str]:
    """Names passed to env(...), env.<cast>(...), os.environ.get/getenv(...) and os.environ[...]."""
    tree = ast.parse((ROOT / "jobboard" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            called = ast.unparse(func)
            reads = called in {"env", "os.environ.get", "os.getenv"} or (
                isinstance(func, ast.Attribute) and func.attr in ENV_CASTS
            )
            first = node.args[0]
            if reads and isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            names.add(ast.literal_eval(node.slice))
    return {name for name in names if re.fullmatch(r"[A-Z][A-Z0-9_]*", name)}


def variables_read_by_compose() -> set[str]:
    """${NAME...} in docker-compose.yml: what an operator puts in .env ($$NAME is the shell's)."""
    text = (ROOT / "docker-compose.yml").read_text()
    return set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))


def variables_in_readme_table() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return names


def test_readers_are_found():
    """The parsers above see what they should, or the table test below proves nothing."""
    assert {"DATABASE_URL", "VAR_DIR", "CV_MAX_BYTES", "EMAIL_URL"} <= variables_read_by_settings()
    assert {"SECRET_KEY", "WEB_PORT", "LOAD_DEMO_DATA"} <= variables_read_by_compose()
    assert {"DATABASE_URL", "SECRET_KEY"} <= variables_in_readme_table()


def test_readme_configuration_table_lists_exactly_the_variables_read():
    read = variables_read_by_settings() | variables_read_by_compose()
    documented = variables_in_readme_table()
    assert sorted(read - documented) == [], "read but missing from README's Configuration table"
    assert sorted(documented - read) == [], "in README's Configuration table but read nowhere"
