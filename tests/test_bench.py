"""The benchmarks under bench/ run in the suite in their ``--smoke`` mode, so that none can rot.

A smoke run goes through its benchmark's code paths on a tiny data set and exits non-zero when
something is broken (an error, a page that does not answer 200, counters that do not add up); its
figures are not judged. Each runs in a subprocess against the suite's PostgreSQL and Redis: in
databases of its own named after the xdist worker (``<name>_bench_scale_gw0``: never a test
database, never another worker's), and in the worker's own Redis database, which the clean slate
empties before and after every test. What recheck.py's smoke run fails on is tested apart, on
runs made up here (a broken bookkeeping is hard to bring about in a real run).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import environ
import psycopg
import pytest
import redis
from django.conf import settings

from bench import recheck, scale
from tests.conftest import on_postgres, require_production_shape
from tests.parallel import redis_db

ROOT = Path(__file__).resolve().parents[1]
# A smoke run takes well under a minute on an idle machine; a hung one fails instead of hanging.
TIMEOUT = 300


@pytest.fixture(scope="module")
def where() -> Iterator[dict[str, str]]:
    """The benchmarks' options for where things are, and their databases, dropped at the end."""
    if not (on_postgres() and settings.REDIS_URL):
        reason = "the benchmarks need PostgreSQL and Redis (set DATABASE_URL and REDIS_URL)"
        if require_production_shape():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    db = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    user, password = quote(db["USER"] or "", safe=""), quote(db["PASSWORD"] or "", safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    redis = urlsplit(settings.REDIS_URL)
    found = {
        "postgres": f"postgres://{credentials}{db['HOST'] or '127.0.0.1'}{port}",
        "recheck": f"{db['NAME']}_bench_recheck_{worker}",
        "scale": f"{db['NAME']}_bench_scale_{worker}",
        "redis": urlunsplit(redis._replace(path="", query="")),
        "redis_db": str(redis_db(settings.REDIS_URL)),
    }
    yield found
    with psycopg.connect(f"{found['postgres']}/postgres", autocommit=True) as conn:
        for name in (found["recheck"], found["scale"]):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_smoke(script: str, *options: str) -> str:
    """Run ``bench/<script> --smoke``; its output, after checking that it exited 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "PYTEST_"))}
    command = [sys.executable, f"bench/{script}", "--smoke", *options]
    process = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # it stops its workers and servers on SIGTERM
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"{script} --smoke ran over {TIMEOUT} s:\n{output[-5000:]}")
    assert process.returncode == 0, f"{script} --smoke exited {process.returncode}:\n{output}"
    return output


def rows_after(output: str, heading: str) -> str:
    assert heading in output, output
    return output.split(heading, 1)[1]


@pytest.mark.bench
def test_recheck_smoke_runs_every_phase_and_prints_the_summary(where):
    output = run_smoke(
        "recheck.py",
        *("--postgres", where["postgres"], "--database", where["recheck"], "--drop"),
        *("--redis", where["redis"], "--redis-db", where["redis_db"]),
    )

    summary = rows_after(output, "Summary: one worker")
    for row in (
        r"checks/s, aggregated, concurrency 2 +[\d,]+/s",
        r"checks/s, own listings, concurrency 2 +[\d,]+/s",
        r"freshness lag, 1,000 open, 1-min interval +(NOT )?held: max",
        r"capacity, 10% aggregated +~[\d,]+/s",
        r"shortest interval held, 1,000 open +~",
        r"5-min interval held, 1,000 open +(yes|no), ",
        r"60-min interval held, 1,000 open +(yes|no), ",
    ):
        assert re.search(row, summary), f"no row {row!r} in:\n{summary}"
    assert "smoke run: every phase ran" in output


@pytest.mark.bench
def test_scale_smoke_loads_every_page_class_and_prints_the_table(where):
    output = run_smoke(
        "scale.py",
        *("--postgres", where["postgres"], "--database", where["scale"]),
        *("--redis", where["redis"], "--redis-db", where["redis_db"]),
    )

    crowd = rows_after(output, "Issue 19 at 1,000 postings, the crowd (200 random addresses")
    crowd, _hot = crowd.split("\nIssue 7 at", 1)
    for label in ("list page", "search page", "listing page"):
        # label, req/s, ×trivial, p50, p99, RSS; then every answer fresh. (Not each a new
        # address: the smoke's 1,000 postings hold some 750 open listings, fewer than a second
        # of fast pages asks for; the full run draws 20,000 a class.)
        row = rf"\n{label} +[\d,.]+\*? +[\d.]+ .*  (?P<n>[\d,]+) of (?P=n) \([\d,]+ first of"
        assert re.search(row, crowd), f"no row for {label!r} with all answers fresh in:\n{crowd}"
    assert "Redis held 0 kept pages after each run" in crowd
    crowd_targets = rows_after(crowd, "Targets (issue 19, the crowd): not judged in a smoke run")
    for target in ("≥ 0.12 of the trivial view", "≥ 0.08 of", "≥ 0.30 of", "p99 ≤ 150 ms"):
        assert target in crowd_targets, crowd_targets
    assert "PASS" not in crowd_targets and "FAIL" not in crowd_targets

    table = rows_after(output, "Issue 7 at 1,000 postings")
    for label in (
        "trivial view",
        "list page, hot (repeated addresses)",
        "search page, hot (repeated addresses)",
        "listing page, counter on, hot (repeated addresses)",
        "listing page, counter off, hot (repeated addresses)",
        "listing page, cold",
        "RSS/Atom feed",
        "sitemap (4 connections)",
        "trivial view (again)",
    ):
        row = rf"\n{re.escape(label)}[^\n]* +[\d,.]+\*? +[\d.]+ "  # label, req/s, ×trivial
        assert re.search(row, table), f"no row for {label!r} in:\n{table}"
    targets = rows_after(table, "Targets (issue 7): not judged in a smoke run")
    assert "3b the view counter loses nothing" in targets
    assert "PASS" not in targets and "FAIL" not in targets
    assert "smoke run: every step ran" in output


@pytest.mark.bench
def test_profile_pages_smoke_profiles_every_page_class(where):
    output = run_smoke(
        "profile_pages.py",
        *("--postgres", where["postgres"], "--database", where["scale"]),
        *("--redis", where["redis"], "--redis-db", where["redis_db"]),
    )

    classes = ("crowd_list", "crowd_search", "crowd_detail")
    classes += ("trivial", "list", "search", "detail", "nocount", "cold", "feed", "sitemap")
    for name in classes:
        section = rows_after(output, f"\n{name}: ")
        assert re.match(r"\d+ URL\(s\), 2 requests\n  plain: [\d.]+ ms a request", section), (
            section[:500]
        )
        own = section.split("\n\n", 1)[0]
        assert "where the profiled time went" in own
        assert "the 5 functions with the most cumulative time, inside the view" in own
        assert "the 5 functions with the most own time" in own
    # A crowd class asks for a new address in every request: 5 to warm up, 2 for each pass.
    assert "\ncrowd_list: 11 URL(s), 2 requests" in output
    summary = rows_after(output, "Summary (plain: without the profiler; shares: ")
    for name in classes:
        assert re.search(rf"\n  {name} +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+( +\d+%){{4}}\n", summary)
    # Rendered fresh: no page was kept (and so none served kept) while the pages were profiled.
    assert "Pages kept in Redis after the profile: 0 (none with kept pages off)" in output
    # What it left in Redis is the benchmarks': bench/scale.py may flush it on its next run.
    assert redis.Redis.from_url(settings.REDIS_URL).exists(scale.REDIS_OWNER_KEY)
    assert "smoke run: every page class profiled" in output


# --- what a smoke run fails on (the bookkeeping, not the figures) ----------------------------


def recheck_run(**changes: object) -> recheck.Run:
    """An aggregated phase-A run of 100 listings whose counters all add up."""
    run = recheck.Run(
        label="aggregated (fetch a source page)",
        concurrency=2,
        listings=100,
        done=100,
        seconds=2.0,
        middle_rate=50.0,
        verdicts=Counter(unchanged=89, updated=10, closed=1),
        deferred=0,
        cpu=recheck.CpuUse(2.0, {}, 1.0),
        batches=[0.5, 0.5],
        new_sessions=2,
        served=Counter({"requests": 101, "200": 75, "304": 25, "410": 1}),
        progress=[(2.0, 100)],
        first_tick=(0.1, 100),
    )
    for name, value in changes.items():
        setattr(run, name, value)
    return run


def test_recheck_smoke_passes_a_run_whose_counters_add_up(tmp_path):
    assert recheck.smoke_problems([recheck_run()], None, tmp_path) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"done": 90, "verdicts": Counter(unchanged=80, updated=9, closed=1)},
            "90 of 100 listings checked",
        ),
        ({"verdicts": Counter(unchanged=89, updated=10)}, "99 verdicts for 100 checks"),
        (
            {"served": Counter({"requests": 101, "200": 75, "304": 25, "404": 1})},
            "answered 101 requests, 100 of them 200, 304 or 410",
        ),
        (
            {"served": Counter({"requests": 51, "200": 50, "304": 0, "410": 1})},
            "50 source pages fetched for 100",
        ),
    ],
)
def test_recheck_smoke_fails_a_run_whose_counters_do_not_add_up(tmp_path, changes, problem):
    (found,) = recheck.smoke_problems([recheck_run(**changes)], None, tmp_path)

    assert problem in found


def test_recheck_smoke_fails_on_an_error_in_a_workers_log(tmp_path):
    (tmp_path / "worker-A.log").write_text(
        "[2026-01-01 10:00:00,000: ERROR/ForkPoolWorker-1] Task postings.tasks.recheck_batch"
        "[1] raised unexpected: IntegrityError()\n"
    )

    (found,) = recheck.smoke_problems([recheck_run()], None, tmp_path)

    assert found.startswith("worker-A.log: 1 errors, the first: ") and "IntegrityError" in found
