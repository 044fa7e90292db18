"""Re-checks end to end: real Celery worker processes and beat, real Redis and PostgreSQL, and a
local server playing the source sites (pages that change, vanish, redirect, fail and hang)."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from postings import counters, freshness, tasks
from postings.factories import PastDeadlinePostingFactory, PublishedPostingFactory
from postings.imports import import_url
from postings.models import Posting
from tests.source_server import job_posting
from tests.worker import ROOT, build_worker_env, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.postgres]

# Quick timeouts, a generous per-host limit (every test page is on 127.0.0.1), two failures
# before a moderator hears of it.
WORKER_ENV = {
    "SOURCE_CONNECT_TIMEOUT": "1",
    "SOURCE_READ_TIMEOUT": "1",
    "SOURCE_TOTAL_TIMEOUT": "2",
    "SOURCE_HOST_PER_MINUTE": "10000",
    "SOURCE_HOST_CONCURRENCY": "8",
    "RECHECK_MAX_FAILURES": "2",
}


def worker_env(source_server) -> dict[str, str]:
    """WORKER_ENV, and the source server allowed as the ``source_server`` fixture allows it here:
    a worker reads its settings from its environment, and fetches refuse loopback otherwise."""
    return {
        **WORKER_ENV,
        "SOURCE_ALLOWED_NETWORKS": f"{source_server.host}/32",
        "SOURCE_ALLOWED_PORTS": str(source_server.port),
    }


@pytest.fixture(autouse=True)
def generous_host_limits(settings):
    settings.SOURCE_HOST_PER_MINUTE = 10000
    settings.SOURCE_HOST_CONCURRENCY = 8


def imported(source_server, path: str, **job) -> Posting:
    """A listing imported from a page on the source server, last checked two hours ago."""
    source_server.json_ld_page(path, job_posting(**job))
    posting = import_url(source_server.url(path)).posting
    make_due(posting)
    return fresh(posting)


def make_due(*postings: Posting) -> None:
    long_ago = timezone.now() - timedelta(hours=2)
    Posting.objects.filter(pk__in=[p.pk for p in postings]).update(
        last_checked_at=long_ago, check_attempted_at=long_ago
    )


def fresh(posting: Posting) -> Posting:
    return Posting.objects.get(pk=posting.pk)


def attempted_since(moment, *postings: Posting) -> bool:
    return all((fresh(p).check_attempted_at or moment) > moment for p in postings)


def verdict_lines(worker_logs: str, posting: Posting) -> list[str]:
    return [line for line in worker_logs.splitlines() if f"re-check posting={posting.pk} " in line]


def test_every_verdict_end_to_end_through_the_worker(start_worker, source_server):
    same = imported(source_server, "/same", title="Baker")
    changed = imported(source_server, "/changed", title="Cook")
    gone = imported(source_server, "/gone", title="Driver")
    removed = imported(source_server, "/removed", title="Electrician")
    moved = imported(source_server, "/moved", title="Florist")
    broken = imported(source_server, "/broken", title="Gardener")
    slow = imported(source_server, "/slow", title="Hairdresser")
    own = PublishedPostingFactory(last_checked_at=timezone.now() - timedelta(hours=2))
    late = PastDeadlinePostingFactory()
    source_server.json_ld_page("/changed", job_posting(title="Head Cook"))
    source_server.status("/gone", 404)
    source_server.status("/removed", 410)
    source_server.page("/careers", "<main><h1>Careers</h1><p>See all our jobs.</p></main>")
    source_server.redirect("/moved", "/careers")
    source_server.status("/broken", 500)
    source_server.hang("/slow", 10)
    worker = start_worker(**worker_env(source_server))
    started = timezone.now()

    assert freshness.schedule_rechecks() == 8  # the late one expired at once
    late.refresh_from_db()
    assert late.status == Posting.Status.EXPIRED
    everyone = (same, changed, gone, removed, moved, broken, slow, own)
    wait_for(lambda: attempted_since(started, *everyone), message="every listing checked")

    assert fresh(same).check_note == "Unchanged: the job at the source is the same"
    assert fresh(same).updated_at == same.updated_at
    assert fresh(same).last_checked_at > started
    head_cook = fresh(changed)
    assert head_cook.title == "Head Cook" and head_cook.updated_at > started
    for listing, code in ((gone, 404), (removed, 410)):
        assert fresh(listing).status == Posting.Status.CLOSED
        assert fresh(listing).closed_reason == "The source no longer lists this job."
        assert f"answered {code}" in fresh(listing).check_note
    assert fresh(moved).status == Posting.Status.CLOSED
    for listing in (broken, slow):
        assert fresh(listing).status == Posting.Status.PUBLISHED
        assert fresh(listing).check_failures == 1
        assert fresh(listing).last_checked_at == listing.last_checked_at  # no verdict
    assert fresh(own).check_note == "Open: open, and its deadline is ahead"
    assert "verdict=updated: changed title" in worker.log_text()


def test_a_worker_killed_mid_check_runs_it_again_and_it_is_checked_once(
    start_worker, source_server
):
    posting = imported(source_server, "/jobs/1", title="Baker")
    source_server.json_ld_page("/jobs/1", job_posting(title="Master Baker"))
    source_server.delay("/jobs/1", 3)
    source_server.clear_requests()
    worker = start_worker(**worker_env(source_server))
    queued_at = timezone.now()

    tasks.recheck_batch.delay([posting.pk], queued_at.isoformat())
    wait_for(lambda: source_server.in_flight("/jobs/1") == 1, message="the fetch under way")
    worker.kill_child("postings.tasks.recheck_batch")
    assert fresh(posting).check_attempted_at < queued_at  # the killed check left nothing

    source_server.delay("/jobs/1", 0)
    checked = wait_for(lambda: fresh(posting).last_checked_at > queued_at and fresh(posting))
    assert checked.title == "Master Baker"
    assert checked.updated_at == checked.last_checked_at
    assert checked.check_failures == 0
    assert len(source_server.requests("/jobs/1")) == 2  # the killed fetch, and the one rerun
    assert len(verdict_lines(worker.log_text(), posting)) == 1
    # Delivered once more (say, by a visibility timeout): nothing is checked twice.
    tasks.recheck_batch.delay([posting.pk], queued_at.isoformat())
    worker.wait_for_log("succeeded", count=2)
    assert len(source_server.requests("/jobs/1")) == 2
    assert fresh(posting).last_checked_at == checked.last_checked_at


def test_a_whole_worker_killed_mid_check_has_its_task_handed_out_again(start_worker, source_server):
    posting = imported(source_server, "/jobs/1", title="Baker")
    source_server.status("/jobs/1", 404)
    source_server.delay("/jobs/1", 5)
    worker = start_worker(
        CELERY_VISIBILITY_TIMEOUT="2",
        CELERY_RESTORE_INTERVAL="1",
        CELERY_RESTORE_THROTTLE="1",
        **worker_env(source_server),
    )
    queued_at = timezone.now()

    tasks.recheck_batch.delay([posting.pk], queued_at.isoformat())
    wait_for(lambda: source_server.in_flight("/jobs/1") == 1, message="the fetch under way")
    worker.kill()  # main process and pool: nobody acknowledged the message
    source_server.delay("/jobs/1", 0)
    worker.restart()

    closed = wait_for(
        lambda: fresh(posting).status == Posting.Status.CLOSED and fresh(posting), timeout=30
    )
    assert closed.closed_reason == "The source no longer lists this job."
    assert len(verdict_lines(worker.log_text(), posting)) == 1


def test_two_workers_on_the_same_batch_never_check_a_listing_twice_at_once(
    start_worker, source_server
):
    postings = [imported(source_server, f"/jobs/{n}", title=f"Role {n}") for n in range(8)]
    for n in range(8):
        source_server.delay(f"/jobs/{n}", 0.5)
    source_server.clear_requests()
    env = {**worker_env(source_server), "RECHECK_FETCH_THREADS": "3"}
    first, second = start_worker(concurrency=1, **env), start_worker(concurrency=1, **env)
    queued_at = timezone.now().isoformat()
    ids = [p.pk for p in postings]

    tasks.recheck_batch.delay(ids, queued_at)
    tasks.recheck_batch.delay(list(reversed(ids)), queued_at)  # the same batch, twice at once
    started = timezone.now() - timedelta(seconds=5)
    wait_for(lambda: all(fresh(p).last_checked_at > started for p in postings), timeout=30)
    first.wait_for_log("succeeded")
    second.wait_for_log("succeeded")

    logs = first.log_text() + second.log_text()
    for n, posting in enumerate(postings):
        assert len(source_server.requests(f"/jobs/{n}")) == 1
        assert source_server.max_in_flight(f"/jobs/{n}") == 1
        assert len(verdict_lines(logs, posting)) == 1
    assert "recheck_batch" in first.log_text() and "recheck_batch" in second.log_text()


def test_a_closed_report_re_checks_the_listing_within_seconds(start_worker, source_server, client):
    posting = imported(source_server, "/jobs/1", title="Baker")
    Posting.objects.filter(pk=posting.pk).update(last_checked_at=timezone.now())  # not due
    source_server.status("/jobs/1", 410)
    start_worker(**worker_env(source_server))

    response = client.post(f"/jobs/{posting.pk}/report/", {"reason": "closed"})
    assert response.status_code in (200, 302)

    wait_for(lambda: fresh(posting).status == Posting.Status.CLOSED, message="closed by a re-check")
    page = client.get(posting.get_absolute_url()).content.decode()
    assert "The source no longer lists this job." in page


def test_ten_thousand_views_from_many_threads_flush_exactly_while_the_worker_flushes(
    start_worker, redis_client
):
    posting = PublishedPostingFactory()
    start_worker(**WORKER_ENV)
    stop = threading.Event()

    def keep_flushing() -> None:
        while not stop.wait(0.05):
            tasks.flush_view_counts.delay()

    def visit(thread: int) -> None:
        for n in range(1000):
            i = thread * 1000 + n
            counters.count_once(_Request(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"), posting.pk)

    flusher = threading.Thread(target=keep_flushing)
    flusher.start()
    visitors = [threading.Thread(target=visit, args=(t,)) for t in range(10)]
    for thread in visitors:
        thread.start()
    for thread in visitors:
        thread.join(timeout=120)
    stop.set()
    flusher.join()

    def flushed_all() -> bool:
        # As beat would: a flush that found another one running left the rest for the next.
        tasks.flush_view_counts.delay()
        return fresh(posting).view_count >= 10_000

    wait_for(flushed_all, timeout=60, interval=0.5, message="10,000 views in the database")
    for _ in range(3):
        tasks.flush_view_counts.delay()
    wait_for(
        lambda: not counters.pending_counts([posting.pk]).get(posting.pk),
        message="nothing left in the buffer",
    )
    assert fresh(posting).view_count == 10_000  # none lost, none twice


class _Request:
    """Just enough of a GET request for the view counter: a browser at an address."""

    method = "GET"

    def __init__(self, address: str) -> None:
        self.META = {
            "REMOTE_ADDR": address,
            "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
        }
        self.headers = {"User-Agent": self.META["HTTP_USER_AGENT"]}


def test_on_the_production_shape_beat_and_a_worker_keep_listings_true(
    start_worker, celery_queue, source_server, tmp_path
):
    changed = imported(source_server, "/changed", title="Cook")
    gone = imported(source_server, "/gone", title="Driver")
    late = PastDeadlinePostingFactory()
    own = PublishedPostingFactory(last_checked_at=timezone.now() - timedelta(hours=2))
    source_server.json_ld_page("/changed", job_posting(title="Head Cook"))
    source_server.status("/gone", 404)
    start_worker(**worker_env(source_server))
    started = timezone.now()
    beat = subprocess.Popen(  # noqa: S603 (our own command line)
        [sys.executable, "-m", "celery", "-A", "jobboard", "beat", "--loglevel=INFO",
         f"--schedule={tmp_path / 'beat-schedule'}"],
        cwd=ROOT,
        env=build_worker_env(celery_queue, RECHECK_TICK_SECONDS="1", **worker_env(source_server)),
        stdout=(tmp_path / "beat.log").open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(
            lambda: (
                attempted_since(started, changed, gone, own)
                and fresh(late).status == Posting.Status.EXPIRED
            ),
            timeout=30,
            message="beat queued the checks and the worker made them",
        )
    finally:
        beat.terminate()
        beat.wait(timeout=10)
    assert fresh(changed).title == "Head Cook" and fresh(changed).updated_at > started
    assert fresh(gone).status == Posting.Status.CLOSED
    assert freshness.last_beat_tick() > started
    assert freshness.freshness_lag() < timedelta(minutes=1)
