"""Shared test set-up: the database and Redis the suite runs on, and a clean slate per test.

The suite runs on the embedded default (SQLite, local-memory cache, no Redis) when nothing is set,
and on the production shape when ``DATABASE_URL`` and ``REDIS_URL`` are::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobboard \\
    REDIS_URL=redis://127.0.0.1:6379/14 SECRET_KEY=<50+ random characters> .venv/bin/pytest

Tests marked ``@pytest.mark.postgres`` are skipped on SQLite. CI sets
``JOBBOARD_REQUIRE_POSTGRES=1``: then a session without PostgreSQL and Redis stops before running
anything, so the PostgreSQL-only tests can never be skipped there by accident.
"""

from __future__ import annotations

import os

import factory.random
import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.cache import caches
from django.template.backends.jinja2 import Template as JinjaTemplate
from django.test.signals import template_rendered

from jobboard import redis_breaker
from postings import counters

pytest_plugins = ["tests.worker", "tests.source_server", "tests.nginx_stack"]

POSTGRES_SKIP_REASON = "needs PostgreSQL full-text search"
REDIS_SKIP_REASON = "needs Redis (set REDIS_URL) for the buffered counter flush"
FACTORY_SEED = "jobboard-tests"


def require_production_shape() -> bool:
    return os.environ.get("JOBBOARD_REQUIRE_POSTGRES", "") == "1"


def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"jobboard: database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
        f"redis {'on' if settings.REDIS_URL else 'off'}, "
        f"require postgres {'yes' if require_production_shape() else 'no'}"
    ]


def _render_and_tell_the_test_client(self, context=None, request=None):
    """Django's test client learns a page's template and context from ``template_rendered``,
    which Django sends for its own templates only: sent here for the Jinja2 ones too, so
    ``response.templates`` and ``response.context`` work for every page."""
    template_rendered.send(sender=self, template=self.template, context=dict(context or {}))
    return _jinja_render(self, context, request)


_jinja_render = JinjaTemplate.render
JinjaTemplate.render = _render_and_tell_the_test_client


def pytest_sessionstart(session: pytest.Session) -> None:
    if not require_production_shape():
        return
    missing = []
    if not on_postgres():
        given = "not postgres" if settings.DATABASE_URL else "unset"
        missing.append(f"PostgreSQL (DATABASE_URL is {given})")
    if not settings.REDIS_URL:
        missing.append("Redis (REDIS_URL is unset)")
    if missing:
        pytest.exit(
            "JOBBOARD_REQUIRE_POSTGRES=1 but this session has no "
            + " and no ".join(missing)
            + ": the PostgreSQL/Redis tests would be skipped. Set DATABASE_URL and REDIS_URL.",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("postgres")
    if marker is not None and not on_postgres():
        reason = marker.kwargs.get("reason", POSTGRES_SKIP_REASON)
        if require_production_shape():  # unreachable after sessionstart, kept as a backstop
            pytest.fail(f"{reason}, and JOBBOARD_REQUIRE_POSTGRES=1", pytrace=False)
        pytest.skip(reason)


def delete_counter_keys() -> None:
    client = counters.get_redis()
    if client is None:
        return
    keys = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:*", count=500))
    if keys:
        client.delete(*keys)


class FewRoundsPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Production's password algorithm (PBKDF2-SHA256, same hash format) with few rounds.

    Django's million rounds cost ~0.3 s of CPU for every user a test creates and every log-in,
    about a minute over the whole suite, and prove nothing that a thousand rounds do not. Every
    password a test sets, checks or changes still goes through the same code.
    """

    iterations = 1_000


def fast_password_hashers() -> list[str]:
    """The configured hashers with PBKDF2 swapped for the few-rounds one (taking its place)."""
    fast = f"{__name__}.{FewRoundsPBKDF2PasswordHasher.__qualname__}"
    production = "django.contrib.auth.hashers.PBKDF2PasswordHasher"
    return [fast if hasher == production else hasher for hasher in settings.PASSWORD_HASHERS]


def clear_caches() -> None:
    for alias in settings.CACHES:
        caches[alias].clear()


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Pages render {% static %} from static/ itself: a fresh clone has no collected manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Passwords hashed with few rounds (the live server's too: it runs in this process)."""
    settings.PASSWORD_HASHERS = fast_password_hashers()


@pytest.fixture(autouse=True)
def clean_slate():
    """Every test starts with an empty cache, no buffered counts, no Redis left paused after a
    timeout, and the same factory data."""
    redis_breaker.resume_all()
    counters.get_redis.cache_clear()
    clear_caches()
    delete_counter_keys()
    factory.random.reseed_random(FACTORY_SEED)
    yield
    clear_caches()
    delete_counter_keys()
    counters.get_redis.cache_clear()
    redis_breaker.resume_all()


@pytest.fixture
def redis_client():
    """The Redis client the counters use; skips (or fails, in CI) when there is no Redis."""
    client = counters.get_redis()
    if client is None:
        if require_production_shape():
            pytest.fail(f"{REDIS_SKIP_REASON}, and JOBBOARD_REQUIRE_POSTGRES=1", pytrace=False)
        pytest.skip(REDIS_SKIP_REASON)
    return client


@pytest.fixture
def without_redis(settings):
    """The embedded shape: counts go straight to the database with an atomic UPDATE."""
    counters.get_redis.cache_clear()
    settings.REDIS_URL = ""
    yield
    counters.get_redis.cache_clear()
