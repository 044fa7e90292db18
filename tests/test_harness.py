"""The end-to-end harness itself: the source-page server (tests/source_server.py) and real Celery
worker processes (tests/worker.py), proven on the existing view-count flush task."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from celery.result import AsyncResult
from django.db import connection, transaction
from django.test import RequestFactory

from jobboard.celery import app
from postings import counters
from postings.factories import PublishedPostingFactory
from postings.models import Posting, ViewCountFlush
from postings.tasks import flush_view_counts
from tests.source_server import SourceServer, job_posting
from tests.worker import pid_alive, wait_for

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
FLUSH = "postings.tasks.flush_view_counts"


# --- the source-page server ------------------------------------------------------------------


def json_ld(page: str) -> dict:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    assert match, page
    return json.loads(match.group(1))


def test_pages_statuses_and_redirects_are_served_as_set(source_server):
    source_server.page("/plain", "<p>hello</p>", headers={"X-Extra": "1"})
    source_server.status("/gone", 410)
    source_server.status("/busy", 503, headers={"Retry-After": "120"})
    source_server.redirect("/moved", "/plain")

    with httpx.Client(timeout=5) as client:
        plain = client.get(source_server.url("/plain?utm=x"))
        assert (plain.status_code, plain.text, plain.headers["x-extra"]) == (
            200,
            "<p>hello</p>",
            "1",
        )
        assert client.get(source_server.url("/gone")).status_code == 410
        busy = client.get(source_server.url("/busy"))
        assert (busy.status_code, busy.headers["retry-after"]) == (503, "120")
        moved = client.get(source_server.url("/moved"))
        assert (moved.status_code, moved.headers["location"]) == (301, source_server.url("/plain"))
        assert client.get(source_server.url("/moved"), follow_redirects=True).text == "<p>hello</p>"
        assert client.get(source_server.url("/nowhere")).status_code == 404
        assert client.get(source_server.url("/plain", host="localhost")).status_code == 200

    hits = source_server.requests("/plain")
    assert len(hits) == 3
    when, method, headers = hits[0]
    assert method == "GET" and headers["user-agent"].startswith("python-httpx")
    assert abs(when - time.time()) < 10
    assert len(source_server.requests()) == 8


def test_a_json_ld_page_holds_the_job_and_changes_its_bytes_on_every_request(source_server):
    job = job_posting(title="Baker <night shift>", validThrough="2030-01-31")
    source_server.json_ld_page("/jobs/1", job, extra_html="<p>Apply by mail.</p>")

    first = httpx.get(source_server.url("/jobs/1"))
    second = httpx.get(source_server.url("/jobs/1"))
    assert first.status_code == 200
    assert first.content != second.content
    assert json_ld(first.text) == json_ld(second.text) == job
    assert json_ld(first.text)["@type"] == "JobPosting"
    assert "<title>Baker &lt;night shift&gt;</title>" in first.text
    assert "Apply by mail." in first.text


def test_conditional_requests_get_a_304_when_the_etag_or_date_matches(source_server):
    changed = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    source_server.json_ld_page("/etag", job_posting(), etag='"v1"')
    source_server.page("/dated", "<p>old news</p>", last_modified=changed)

    def get(path: str, **headers: str) -> httpx.Response:
        return httpx.get(source_server.url(path), headers=headers)

    assert get("/etag").headers["etag"] == '"v1"'
    not_modified = get("/etag", **{"If-None-Match": '"v0", W/"v1"'})
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert not_modified.headers["etag"] == '"v1"'
    assert get("/etag", **{"If-None-Match": '"v2"'}).status_code == 200

    since = format_datetime(changed, usegmt=True)
    earlier = format_datetime(changed - timedelta(days=1), usegmt=True)
    assert get("/dated").headers["last-modified"] == since
    assert get("/dated", **{"If-Modified-Since": since}).status_code == 304
    assert get("/dated", **{"If-Modified-Since": earlier}).status_code == 200
    # If-None-Match wins over If-Modified-Since.
    assert get("/dated", **{"If-None-Match": '"x"', "If-Modified-Since": since}).status_code == 200

    conditional = source_server.requests("/etag")[1].headers
    assert conditional["If-None-Match"] == '"v0", W/"v1"'


def test_max_in_flight_counts_requests_answered_at_the_same_time(source_server):
    source_server.page("/slow", "<p>slow</p>")
    source_server.delay("/slow", 0.5)
    source_server.page("/one-by-one", "<p>quick</p>")
    statuses: list[int] = []

    def fetch() -> None:
        statuses.append(httpx.get(source_server.url("/slow"), timeout=5).status_code)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        httpx.get(source_server.url("/one-by-one"))
    for thread in threads:
        thread.join()

    assert statuses == [200] * 6
    assert source_server.max_in_flight("/slow") == 6
    assert source_server.max_in_flight("/one-by-one") == 1
    assert source_server.max_in_flight() >= 6
    assert source_server.in_flight() == 0


def test_hang_trickle_and_delay_make_a_client_wait(source_server):
    source_server.hang("/hang", 5)
    source_server.page("/trickle", "<p>" + "x" * 100 + "</p>")
    source_server.trickle("/trickle", seconds=1.0, interval=0.1)
    source_server.page("/delayed", "<p>late</p>")
    source_server.delay("/delayed", 0.3)

    with pytest.raises(httpx.ReadTimeout):
        httpx.get(source_server.url("/hang"), timeout=httpx.Timeout(5, read=0.3))

    started = time.monotonic()
    trickled = httpx.get(source_server.url("/trickle"), timeout=httpx.Timeout(5, read=0.5))
    assert trickled.text.startswith("<p>xxx")  # every read was quick, the whole answer was not
    assert time.monotonic() - started >= 0.8

    started = time.monotonic()
    assert httpx.get(source_server.url("/delayed")).text == "<p>late</p>"
    assert time.monotonic() - started >= 0.3


def test_closing_the_server_does_not_wait_for_hanging_requests():
    server = SourceServer().start()
    server.hang("/hang", 60)
    errors: list[Exception] = []

    def fetch() -> None:
        try:
            httpx.get(server.url("/hang"), timeout=30)
        except httpx.HTTPError as error:
            errors.append(error)

    threads = [threading.Thread(target=fetch, daemon=True) for _ in range(20)]
    for thread in threads:
        thread.start()
    wait_for(lambda: server.in_flight("/hang") == 20, timeout=5)

    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 2
    for thread in threads:
        thread.join(timeout=5)
    assert len(errors) == 20  # dropped, not answered


# --- real Celery workers ----------------------------------------------------------------------


def buffer_views(posting: Posting, n: int) -> None:
    """n visitors view the listing: counts wait in Redis for the flush task."""
    for i in range(n):
        request = RequestFactory().get(
            "/", REMOTE_ADDR=f"203.0.113.{i + 1}", HTTP_USER_AGENT=BROWSER
        )
        assert counters.count_once(request, posting.pk)


def stored_views(posting: Posting) -> int:
    return Posting.objects.values_list("view_count", flat=True).get(pk=posting.pk)


def test_two_workers_answer_and_a_task_sent_here_runs_in_one_of_them(start_worker, celery_queue):
    first, second = start_worker(concurrency=1, wait=False), start_worker(concurrency=1, wait=False)
    first.wait_ready()
    second.wait_ready()
    assert first.nodename != second.nodename
    assert first.ping() and second.ping()
    assert len(first.children()) == len(second.children()) == 1
    assert app.conf.task_always_eager is False
    assert app.conf.task_default_queue == celery_queue == first.queue

    posting = PublishedPostingFactory(view_count=0)
    buffer_views(posting, 3)
    sent = flush_view_counts.delay()

    wait_for(lambda: stored_views(posting) == 3, message="the buffered views flushed")

    def ran_in() -> list:  # the worker logs its success a moment after the flush commits
        return [w for w in (first, second) if f"{FLUSH}[{sent.id}] succeeded" in w.log_text()]

    assert len(wait_for(ran_in, message="a worker logged the flush's success")) == 1


def test_a_task_sent_while_the_worker_is_down_runs_after_a_restart(start_worker):
    worker = start_worker(concurrency=1)
    pool = worker.children()
    worker.kill()
    assert not worker.is_alive()
    assert pool and not any(pid_alive(pid) for pid in pool)

    posting = PublishedPostingFactory(view_count=0)
    buffer_views(posting, 2)
    flush_view_counts.delay()
    time.sleep(0.5)
    assert stored_views(posting) == 0  # nobody consumes the queue

    worker.restart()
    wait_for(lambda: stored_views(posting) == 2, message="the flush after the restart")
    assert worker.log_text().count(" ready.") == 2


def _waiting_for_lock(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted", [table]
        )
        return cursor.fetchone()[0]


@contextmanager
def flush_stuck_in_the_worker() -> Iterator[AsyncResult]:
    """Send a flush and hold it inside the worker (on a table lock) until the block ends."""
    table = ViewCountFlush._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        sent = flush_view_counts.delay()
        wait_for(lambda: _waiting_for_lock(table) == 1, message="the flush to block")
        # The run about to be killed keeps its Redis flush lock until it expires: free it for
        # the re-run.
        counters.get_redis().delete(counters._key("flush-lock", "views"))
        yield sent


def test_a_pool_process_killed_mid_task_has_its_task_run_again(start_worker):
    posting = PublishedPostingFactory(view_count=0)
    buffer_views(posting, 4)
    worker = start_worker(concurrency=1)

    with flush_stuck_in_the_worker() as sent:
        killed = worker.kill_child(FLUSH)
        # The main process notices its lost child (within ~5 s) and requeues the message.
        worker.wait_for_log(f"{FLUSH}[{sent.id}] received", count=2)
        assert worker.children() and killed not in worker.children()

    wait_for(lambda: stored_views(posting) == 4, message="the re-run to flush the views")
    worker.wait_for_log(f"{FLUSH}[{sent.id}] succeeded")
    assert "WorkerLostError" in worker.log_text()
    assert ViewCountFlush.objects.count() == 1


def test_a_worker_killed_mid_task_leaves_its_task_to_the_next_worker(start_worker):
    posting = PublishedPostingFactory(view_count=0)
    buffer_views(posting, 2)
    worker = start_worker(concurrency=1, CELERY_VISIBILITY_TIMEOUT="2")

    with flush_stuck_in_the_worker() as sent:
        worker.kill()
    worker.wait_visibility_timeout()
    worker.restart()

    wait_for(lambda: stored_views(posting) == 2, message="the restored message to run")
    assert worker.log_text().count(f"{FLUSH}[{sent.id}] received") == 2
    assert ViewCountFlush.objects.count() == 1
