"""The background-work status: its figures, the public JSON endpoint and the moderators' page.

No real worker runs here: ``app.control.ping`` is replaced, and so is the broker's Redis client
except in the one test that reads a queue's length from the real Redis.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta

import pytest
import redis
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from accounts.factories import EmployerFactory, VerifiedUserFactory
from jobboard import status
from jobboard.celery import app
from postings import freshness
from postings.factories import ClosedPostingFactory, PublishedPostingFactory

pytestmark = pytest.mark.django_db

WORKERS = ["celery@host1", "celery@host2"]


class FakeBroker:
    def __init__(self, length: int = 0, error: Exception | None = None) -> None:
        self.length, self.error = length, error

    def llen(self, name: str) -> int:
        if self.error:
            raise self.error
        return self.length


class Ping:
    """Stands in for ``app.control.ping``: answers with the given workers, or raises."""

    def __init__(self, names: list[str] | None = None, error: Exception | None = None) -> None:
        self.names, self.error, self.calls = names or [], error, 0

    def __call__(self, timeout: float) -> list[dict]:
        self.calls += 1
        assert timeout <= 1.0
        if self.error:
            raise self.error
        return [{name: {"ok": "pong"}} for name in self.names]


@pytest.fixture
def with_workers(settings, monkeypatch):
    """The production shape, all well: two workers answer, 3 tasks queued, beat ticked 40 s ago,
    and one open listing checked 20 minutes ago."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.RECHECK_INTERVAL = timedelta(minutes=60)
    settings.RECHECK_TICK = timedelta(seconds=60)
    ping = Ping(WORKERS)
    monkeypatch.setattr(app.control, "ping", ping)
    settings.CELERY_BROKER_URL = "redis://broker.invalid/0"
    monkeypatch.setattr(freshness, "broker_client", lambda url: FakeBroker(length=3))
    freshness.record_beat_tick(timezone.now() - timedelta(seconds=40))
    PublishedPostingFactory(last_checked_at=timezone.now() - timedelta(minutes=20))
    return ping


@pytest.fixture
def embedded(settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    monkeypatch.setattr(app.control, "ping", Ping(error=AssertionError("no ping when embedded")))
    settings.CELERY_BROKER_URL = "redis://broker.invalid/0"
    monkeypatch.setattr(
        freshness, "broker_client", lambda url: FakeBroker(error=AssertionError("no broker"))
    )


# The figures


def test_all_running_is_ok(with_workers):
    figures = status.workers_status()
    assert figures["status"] == "ok"
    assert figures["beat"]["state"] == "ok" and 40 <= figures["beat"]["age_seconds"] <= 42
    assert figures["workers"] == {"state": "ok", "count": 2, "names": WORKERS}
    assert figures["queue"]["state"] == "ok" and figures["queue"]["length"] == 3
    assert figures["freshness"]["state"] == "ok"
    assert 20 * 60 <= figures["freshness"]["lag_seconds"] <= 20 * 60 + 2
    assert figures["overdue"] == {"state": "ok", "count": 0}


def test_embedded_says_so_and_asks_no_broker(embedded):
    figures = status.workers_status()
    assert figures["status"] == "embedded"
    assert figures["workers"]["state"] == figures["queue"]["state"] == "not used"
    assert figures["beat"]["state"] == "not used"


def test_a_beat_older_than_three_ticks_is_stale(with_workers):
    now = timezone.now()
    freshness.record_beat_tick(now - timedelta(seconds=179))
    assert status.workers_status(now)["beat"]["state"] == "ok"
    freshness.record_beat_tick(now - timedelta(seconds=181))
    figures = status.workers_status(now)
    assert figures["beat"]["state"] == "stale" and figures["beat"]["age_seconds"] == 181
    assert figures["status"] == "degraded"


def test_a_beat_that_never_ran_is_degraded(with_workers):
    from django.core.cache import cache

    cache.delete(freshness.BEAT_TICK_KEY)
    figures = status.workers_status()
    assert figures["beat"] == {
        "state": "never",
        "last_tick": None,
        "age_seconds": None,
        "stale_after_seconds": 180,
    }
    assert figures["status"] == "degraded"


def test_an_unreadable_cache_makes_beat_unreachable_not_an_error(with_workers, monkeypatch):
    def broken():
        raise redis.ConnectionError("cache down")

    monkeypatch.setattr(freshness, "last_beat_tick", broken)
    figures = status.workers_status()
    assert figures["beat"]["state"] == "unreachable"
    assert figures["status"] == "degraded"


def test_no_worker_answering_is_degraded(with_workers, monkeypatch):
    monkeypatch.setattr(app.control, "ping", Ping([]))
    figures = status.workers_status()
    assert figures["workers"] == {"state": "none", "count": 0, "names": []}
    assert figures["status"] == "degraded"


def test_a_failing_ping_is_unreachable_and_logged(with_workers, monkeypatch, caplog):
    monkeypatch.setattr(app.control, "ping", Ping(error=OSError("connection refused")))
    with caplog.at_level(logging.ERROR, logger="jobboard.status"):
        figures = status.workers_status()
    assert figures["workers"]["state"] == "unreachable"
    assert figures["status"] == "degraded"
    assert "pinging the workers failed" in caplog.text


def test_an_unreachable_broker_is_reported_and_the_workers_are_not_pinged(
    with_workers, monkeypatch, caplog
):
    monkeypatch.setattr(
        freshness, "broker_client", lambda url: FakeBroker(error=redis.ConnectionError("refused"))
    )
    with caplog.at_level(logging.ERROR, logger="jobboard.status"):
        figures = status.workers_status()
    assert figures["queue"]["state"] == "unreachable" and figures["queue"]["length"] is None
    assert figures["workers"]["state"] == "unreachable"
    assert with_workers.calls == 0
    assert figures["status"] == "degraded"
    assert "cannot read the length of queue" in caplog.text


def test_ping_answers_are_cached_for_a_while(with_workers):
    from django.core.cache import cache

    status.workers_status()
    status.workers_status()
    assert with_workers.calls == 1
    cache.delete(status.PING_CACHE_KEY)
    status.workers_status()
    assert with_workers.calls == 2


def test_an_unreachable_database_is_reported_not_raised(with_workers, monkeypatch):
    from django.db import OperationalError

    def broken(now=None):
        raise OperationalError("database down")

    monkeypatch.setattr(freshness, "freshness_lag", broken)
    monkeypatch.setattr(status, "overdue_count", broken)
    monkeypatch.setattr(freshness, "failing_sources", broken)
    figures = status.workers_status()
    assert figures["freshness"]["state"] == figures["overdue"]["state"] == "unreachable"
    assert figures["failing"] == {"state": "unreachable", "count": None, "flagged": None}
    assert figures["status"] == "degraded"


def test_lag_within_the_interval_and_its_margin_is_ok(with_workers):
    # The margin is two ticks and five minutes: 60 + 2 + 5 = 67 minutes allowed.
    now = timezone.now()
    PublishedPostingFactory(last_checked_at=now - timedelta(minutes=66))
    figures = status.workers_status(now)
    assert figures["freshness"]["state"] == "ok"
    assert figures["freshness"]["allowed_seconds"] == 67 * 60
    assert figures["overdue"] == {"state": "some", "count": 1}  # past the interval, within margin
    assert figures["status"] == "ok"


def test_lag_past_the_margin_is_behind(with_workers):
    now = timezone.now()
    PublishedPostingFactory(last_checked_at=now - timedelta(minutes=68))
    PublishedPostingFactory(last_checked_at=now - timedelta(hours=3))
    figures = status.workers_status(now)
    assert figures["freshness"]["state"] == "behind"
    assert figures["freshness"]["lag_seconds"] == 3 * 3600
    assert figures["overdue"]["count"] == 2
    assert figures["status"] == "degraded"


def test_a_listing_whose_source_keeps_failing_is_reported_apart_not_as_behind(
    client, settings, with_workers
):
    # Last checked three hours ago; since then its source failed at every try, the last one ten
    # minutes ago, and a moderator was asked. The workers are on time.
    now = timezone.now()
    PublishedPostingFactory(
        last_checked_at=now - timedelta(hours=3),
        check_attempted_at=now - timedelta(minutes=10),
        check_failures=settings.RECHECK_MAX_FAILURES + 2,
    )
    PublishedPostingFactory(
        last_checked_at=now - timedelta(minutes=50),
        check_attempted_at=now - timedelta(minutes=5),
        check_failures=1,
    )
    figures = status.workers_status(now)
    assert figures["freshness"]["state"] == "ok"
    assert figures["freshness"]["lag_seconds"] == 20 * 60  # the fixture's listing
    assert figures["overdue"] == {"state": "ok", "count": 0}
    assert figures["failing"] == {"state": "failing", "count": 2, "flagged": 1}
    assert figures["status"] == "ok"
    response = client.get(reverse("healthz_workers"))
    assert response.status_code == 200
    assert response.json()["failing"] == {"state": "failing", "count": 2, "flagged": 1}


def test_a_failing_source_the_workers_stopped_trying_still_counts_as_behind(with_workers):
    now = timezone.now()
    PublishedPostingFactory(
        last_checked_at=now - timedelta(hours=5),
        check_attempted_at=now - timedelta(hours=3),
        check_failures=2,
    )
    figures = status.workers_status(now)
    assert figures["freshness"]["state"] == "behind"
    assert figures["freshness"]["lag_seconds"] == 3 * 3600
    assert figures["status"] == "degraded"


def test_never_checked_listings_are_overdue_once_posted_longer_than_the_interval(with_workers):
    now = timezone.now()
    PublishedPostingFactory(last_checked_at=None, posted_at=now - timedelta(days=2))
    PublishedPostingFactory(last_checked_at=None, posted_at=now - timedelta(minutes=5))
    ClosedPostingFactory(last_checked_at=now - timedelta(days=5))  # not open: never counted
    assert status.workers_status(now)["overdue"]["count"] == 1


def test_no_open_listings_is_not_a_fault(with_workers):
    from postings.models import Posting

    Posting.objects.all().delete()
    figures = status.workers_status()
    assert figures["freshness"]["state"] == "no open listings"
    assert figures["overdue"]["count"] == 0
    assert figures["status"] == "ok"


def test_queue_length_comes_from_the_brokers_redis(settings, redis_client):
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    settings.CELERY_TASK_DEFAULT_QUEUE = f"status-test-{uuid.uuid4().hex}"
    try:
        redis_client.rpush(settings.CELERY_TASK_DEFAULT_QUEUE, "a", "b", "c")
        assert status._queue() == {
            "state": "ok",
            "name": settings.CELERY_TASK_DEFAULT_QUEUE,
            "length": 3,
        }
    finally:
        redis_client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)


def test_a_real_unreachable_broker_answers_quickly(settings):
    import time

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    started = time.monotonic()
    assert status._queue()["state"] == "unreachable"
    assert time.monotonic() - started < 3


# The public JSON endpoint


def test_endpoint_is_200_when_ok_and_names_no_worker(client, with_workers):
    response = client.get(reverse("healthz_workers"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["workers"] == {"state": "ok", "count": 2}
    assert "celery@" not in response.content.decode()
    assert "no-cache" in response["Cache-Control"]


def test_endpoint_is_503_when_degraded(client, with_workers, monkeypatch):
    monkeypatch.setattr(app.control, "ping", Ping(error=OSError("down")))
    response = client.get(reverse("healthz_workers"))
    assert response.status_code == 503
    assert response.json()["workers"]["state"] == "unreachable"


def test_endpoint_is_200_when_embedded(client, embedded):
    response = client.get(reverse("healthz_workers"))
    assert response.status_code == 200
    assert response.json()["status"] == "embedded"


def test_endpoint_only_answers_get(client, embedded):
    assert client.post(reverse("healthz_workers")).status_code == 405


def test_healthz_keeps_its_keys(client, with_workers):
    assert reverse("healthz") != reverse("healthz_workers")
    assert set(client.get(reverse("healthz")).json()) == {"status", "checks"}


# The moderators' page


@pytest.fixture
def moderator():
    user = VerifiedUserFactory(email="moderator@example.com")
    user.groups.add(Group.objects.get(name="Moderators"))
    return user


STATUS_URL = "/moderation/status/"


def test_the_status_page_lives_under_moderation():
    assert reverse("moderation:status") == STATUS_URL


def test_anonymous_visitors_are_sent_to_log_in(client, embedded):
    response = client.get(STATUS_URL)
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


@pytest.mark.parametrize("who", ["candidate", "employer"])
def test_candidates_and_employers_are_refused(client, embedded, who):
    client.force_login(VerifiedUserFactory() if who == "candidate" else EmployerFactory().user)
    assert client.get(STATUS_URL).status_code == 403


def words(page: str) -> str:
    """The page's text as a reader sees it: no tags, single spaces."""
    return " ".join(re.sub(r"<[^>]+>", "", page).replace("\xa0", " ").split())


def test_moderators_see_the_figures_in_words(client, moderator, with_workers):
    client.force_login(moderator)
    page = client.get(STATUS_URL).content.decode()
    text = words(page)
    assert "All running" in text
    assert re.search(r"Beat last ran 4[0-2] seconds ago", text)
    assert "2 workers answering: celery@host1, celery@host2" in text
    assert "3 tasks waiting" in text
    assert "Least recently checked open listing: checked 20 minutes ago" in text
    assert "0 open listings whose source could not be read at the last try" in text
    assert "(target: every 60 minutes)" in text
    assert "0 open listings not checked in the last 60 minutes" in text
    assert "status-row--bad" not in page
    times = re.findall(r'<time datetime="([^"]*)"', page)  # HTML allows no microseconds
    assert len(times) >= 3
    assert all(re.fullmatch(r"[-\d]{10}T\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", t) for t in times), times


def test_moderators_see_what_is_wrong_highlighted(client, moderator, with_workers, monkeypatch):
    monkeypatch.setattr(app.control, "ping", Ping([]))
    freshness.record_beat_tick(timezone.now() - timedelta(minutes=10))
    client.force_login(moderator)
    page = client.get(STATUS_URL).content.decode()
    assert "Needs attention" in page
    assert "No worker answered within 1 second." in words(page)
    assert "Beat last ran 10 minutes ago, but it should run every 60 seconds" in words(page)
    assert page.count("status-row--bad") == 2


def test_moderators_see_failing_sources_apart_as_worth_a_look(
    client, moderator, with_workers, settings
):
    PublishedPostingFactory(
        last_checked_at=timezone.now() - timedelta(hours=3),
        check_attempted_at=timezone.now() - timedelta(minutes=10),
        check_failures=settings.RECHECK_MAX_FAILURES,
    )
    client.force_login(moderator)
    page = client.get(STATUS_URL).content.decode()
    assert "All running" in page
    assert (
        "Some failing 1 open listing whose source could not be read at the last try, 1 of them "
        "put to moderators. The workers keep trying them; they do not count as behind."
    ) in words(page)
    assert "status-row--warn" in page and "status-row--bad" not in page


def test_moderators_are_told_plainly_about_the_embedded_setup(client, moderator, embedded):
    client.force_login(moderator)
    page = client.get(STATUS_URL).content.decode()
    assert "Embedded: no workers" in page
    assert "each task runs inside the web process" in page
    assert "Needs attention" not in page and "status-row--bad" not in page


def test_the_queue_page_links_to_the_status_page(client, moderator, embedded):
    client.force_login(moderator)
    assert f'href="{STATUS_URL}"' in client.get(reverse("moderation:queue")).content.decode()
