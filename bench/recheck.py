"""Benchmark (not a test) of the background re-check workers: how fast one worker checks, and
whether it keeps every open listing checked within the interval.

Run it from the repository root; PostgreSQL (127.0.0.1:5432, user postgres, trust auth) and Redis
(127.0.0.1:6379) must be running::

    .venv/bin/python bench/recheck.py            # the figures, about 8 minutes
    .venv/bin/python bench/recheck.py --help     # the options; the defaults give the figures
    .venv/bin/python bench/recheck.py --quick    # a smaller run, about 2 minutes
    .venv/bin/python bench/recheck.py --smoke    # does it still run? well under a minute

``--smoke`` runs every phase on a few hundred listings and watches phase B for 9 seconds: the
figures of so small a run mean nothing, but it exits non-zero when something is broken (a run
that did not check every listing, verdicts or source-server answers that do not add up, an error
in the worker's log, no check at all in phase B). The test suite runs it (tests/test_bench.py).

One worker is one ``celery -A jobboard worker`` process, prefork pool, ``--concurrency=2``
(Celery's default on this 2-core machine), with the project's settings unless said otherwise.

Phase A, checks per second: 10,000 listings, all due, are queued by ``schedule_rechecks``
(called here once a second, as beat would) and the clock runs until every one has had a check
attempted (``check_attempted_at``). Three runs: listings aggregated from a source page (fetched
from the local source server, read and judged: 64 % the same page, 25 % answered 304 Not
Modified thanks to their ETag, 10 % changed since the last check, 1 % gone), our own employers'
listings (no source: a deadline check, 50 decided in one transaction), and the aggregated ones
again at another concurrency (``--alt-concurrency``, on 4,000 listings to save time).

Phase B, the freshness lag at 100,000 open listings (10 % aggregated): time is compressed to a
4-minute ``RECHECK_INTERVAL_MINUTES`` (whole minutes) and a 5-second tick, with the listings'
last checks spread evenly over the past interval (the steady state). This script sends the
``schedule_rechecks`` task to the worker every tick as beat does, so the worker runs the scheduler
too, and samples ``freshness_lag()`` every 5 seconds for 1.25 intervals: held when it never
exceeds the interval plus two ticks plus the 20 seconds (``SOURCE_TOTAL_TIMEOUT``) a listing waits
when its host is busy. The capacity follows from the CPU cost per check (or is the rate itself
when the worker fell behind), and from it the shortest interval one worker holds and its
headroom at 5 and 60 minutes.

During each run the script reads from /proc the CPU time of the worker (main and pool
processes), PostgreSQL, Redis, the source server, itself and the whole machine, and prints it per
check: that, the new PostgreSQL sessions per check and the deferred fetches say what limits a
figure. Other processes on the machine (someone's test run) take CPU from the worker; the CPU
tables show how much ("other"), and a warning is printed when it was a lot.

The source server is a ``ThreadingHTTPServer`` in a subprocess (``recheck.py --serve``) bound to
0.0.0.0 on a free port and answering loopback clients only. Listings are spread over 249 host
names, 127.0.0.2 to 127.0.0.250 (all of them the loopback), so the per-host limits work per host
as on the web; ``SOURCE_HOST_PER_MINUTE`` is raised for the bench (``--host-per-minute``), since at
the project's 30 a minute per host 249 hosts cap fetching at 124 a second whatever the worker
does. ``--latency-ms`` makes the pages answer slowly, like sites far away.

It touches only its own things: a PostgreSQL database (``jobboard_bench_recheck``, dropped and
created afresh at the start and left for a look afterwards unless ``--drop``), a Redis database
number (``--redis-db``, flushed: it refuses one holding keys it did not write), a Celery queue
and a generated SECRET_KEY. Worker logs go to ``var/bench-recheck/``. The worker and the source
server are stopped at the end, on Ctrl-C, on SIGTERM and on errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1

# --- What the source pages and the listings say -------------------------------------------------

PLACES = (
    ("Berlin", "Berlin", "DE"), ("Munich", "Bavaria", "DE"), ("Amsterdam", "North Holland", "NL"),
    ("London", "England", "GB"), ("Dublin", "Leinster", "IE"), ("Warsaw", "Masovia", "PL"),
    ("Madrid", "Community of Madrid", "ES"), ("Austin", "Texas", "US"),
)  # fmt: skip
ROLES = (  # title, practice area, seniority
    ("Backend Engineer", "engineering", "mid"), ("Senior Data Analyst", "data", "senior"),
    ("Product Designer", "design", "mid"), ("Junior Accountant", "finance", "junior"),
    ("Lead Site Reliability Engineer", "engineering", "lead"),
    ("Customer Support Specialist", "customer_support", "mid"),
    ("Corporate Associate", "corporate_law", "mid"), ("Recruiter", "people", "mid"),
)  # fmt: skip
COMPANIES = (
    "Acme Logistics", "Northwind Analytics", "Globex Health", "Initech Software",
    "Umbrella Legal", "Stark Retail",
)  # fmt: skip
SOURCE_DESCRIPTION = (
    "<p>{company} is hiring a <strong>{title}</strong> for its {city} office.</p>"
    "<ul><li>Own a part of the product end to end</li><li>Work in a small, senior team</li>"
    "<li>Ship every week</li></ul><p>Apply with a CV and a short note.</p>"
)
OWN_DESCRIPTION = (
    "{company} is hiring: **{title}**{where}.\n\n## Responsibilities\n\n"
    "- Own a part of the product end to end\n- Work in a small, senior team\n\n"
    "## What we offer\n\nA fair salary, 30 days off and a budget for learning.\n"
)

# Source page kinds, by listing number modulo 100 (the share of each, in per cent).
KINDS = (("same", 64), ("etag", 25), ("changing", 10), ("gone", 1))
ETAG = '"v1"'


def kind_of(i: int) -> str:
    rest = i % 100
    for kind, share in KINDS:
        if rest < share:
            return kind
        rest -= share
    raise AssertionError("the shares add up to 100")


def source_job(i: int, base_day: date, variant: int = 0) -> dict[str, Any]:
    """The JobPosting of source page ``i``; ``variant`` 1 is the same job with another salary."""
    title = ROLES[i % len(ROLES)][0]
    city, region, country = PLACES[(i // len(ROLES)) % len(PLACES)]
    company = COMPANIES[i % len(COMPANIES)]
    low = 40_000 + (i % 20) * 2_000
    return {
        "@context": "https://schema.org",
        "@type": "JobPosting",
        "title": title,
        "description": SOURCE_DESCRIPTION.format(company=company, title=title, city=city),
        "datePosted": (base_day - timedelta(days=45)).isoformat(),
        "validThrough": f"{deadline_of(i, base_day).isoformat()}",
        "employmentType": "FULL_TIME",
        "hiringOrganization": {"@type": "Organization", "name": company},
        "jobLocation": {
            "@type": "Place",
            "address": {
                "@type": "PostalAddress",
                "addressLocality": city,
                "addressRegion": region,
                "addressCountry": country,
            },
        },
        "baseSalary": {
            "@type": "MonetaryAmount",
            "currency": "EUR",
            "value": {
                "@type": "QuantitativeValue",
                "minValue": low,
                "maxValue": low + 20_000 + 1_000 * variant,
                "unitText": "YEAR",
            },
        },
    }


def deadline_of(i: int, base_day: date) -> datetime:
    day = base_day + timedelta(days=i % 60)
    return datetime(day.year, day.month, day.day, 23, 59, tzinfo=UTC)


# --- The source server (runs in a subprocess: ``recheck.py --serve``; no Django) ---------------


def page_html(job: dict[str, Any]) -> bytes:
    """A job page: the JobPosting as JSON-LD, plus an ad and a timestamp new on every request."""
    script = json.dumps(job).replace("</", "<\\/")
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{job['title']}</title>\n"
        f'<script type="application/ld+json">{script}</script>\n</head><body>\n'
        f"<nav><a href=/>Jobs</a></nav><main><h1>{job['title']}</h1>{job['description']}</main>\n"
        f'<aside class="ad">Sponsored offer #{random.randrange(10**9)}</aside>\n'
        f"<footer>Rendered at {datetime.now(UTC).isoformat()}</footer>\n</body></html>\n"
    ).encode()


class _Pages(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, base_day: date, latency: float) -> None:
        super().__init__(("0.0.0.0", 0), _PageHandler)
        self.base_day = base_day
        self.latency = latency
        self.lock = threading.Lock()
        self.served: Counter[str] = Counter()
        self.in_flight = 0
        self.changes: dict[str, int] = {}

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return str(client_address[0]).startswith("127.")  # bound to 0.0.0.0: loopback only


class _PageHandler(BaseHTTPRequestHandler):
    """``/jobs/<kind>/<load>-<n>``: same, etag (304 on a match), changing (each answer differs
    from the one before, the first from what was loaded), gone (410)."""

    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _Pages

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        started = time.perf_counter()
        pages = self.server
        with pages.lock:
            pages.in_flight += 1
            pages.served["max_in_flight"] = max(pages.served["max_in_flight"], pages.in_flight)
        try:
            if pages.latency:  # a site far away: the answer takes 0.5 to 1.5 times the latency
                time.sleep(pages.latency * random.uniform(0.5, 1.5))
            status, headers, body = self._answer()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with pages.lock:
                pages.in_flight -= 1
                pages.served[str(status)] += 1
                pages.served["requests"] += 1
                pages.served["busy_us"] += int((time.perf_counter() - started) * 1e6)

    def _answer(self) -> tuple[int, dict[str, str], bytes]:
        html = {"Content-Type": "text/html; charset=utf-8"}
        if self.path == "/_stats":
            with self.server.lock:
                body = json.dumps(self.server.served).encode()
            return 200, {"Content-Type": "application/json"}, body
        match = re.fullmatch(r"/jobs/(same|etag|changing|gone)/\d+-(\d+)", self.path)
        if match is None:
            return 404, html, b"<h1>Not Found</h1>"
        kind, i = match[1], int(match[2])
        if kind == "gone":
            return 410, html, b"<h1>Gone</h1><p>This job is no longer available.</p>"
        if kind == "etag":
            if self.headers.get("If-None-Match") == ETAG:
                return 304, {"ETag": ETAG}, b""
            return 200, {**html, "ETag": ETAG}, page_html(source_job(i, self.server.base_day))
        variant = 0
        if kind == "changing":
            with self.server.lock:  # each answer the other variant, the first one variant 1
                changes = self.server.changes
                variant = changes[self.path] = 1 - changes.get(self.path, 0)
        return 200, html, page_html(source_job(i, self.server.base_day, variant))


def serve(base_day: date, latency: float) -> None:
    """Serve source pages until SIGTERM; the first line on stdout is ``PORT <n>``."""
    pages = _Pages(base_day, latency)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"PORT {pages.server_address[1]}", flush=True)
    pages.serve_forever(poll_interval=0.2)


# --- Processes and their CPU time (/proc) -------------------------------------------------------


def _proc_table() -> dict[int, tuple[str, int, float, float]]:
    """pid -> (name, parent pid, own CPU seconds, reaped children's CPU seconds)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):
            continue
        own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        children = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
        table[int(stat.parent.name)] = (name, int(fields[1]), own, children)
    return table


def _tree_cpu(table: dict[int, tuple[str, int, float, float]], root: int) -> float:
    """CPU seconds of a process and all its descendants, the exited ones included."""
    if root not in table:
        return 0.0
    total, stack = 0.0, [root]
    kids: dict[int, list[int]] = {}
    for pid, (_name, parent, _own, _reaped) in table.items():
        kids.setdefault(parent, []).append(pid)
    while stack:
        pid = stack.pop()
        _name, _parent, own, reaped = table[pid]
        total += own + reaped
        stack.extend(kids.get(pid, ()))
    return total


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / CLOCK_TICKS, sum(fields) / CLOCK_TICKS


@dataclass
class CpuSample:
    at: float
    machine_busy: float
    machine_total: float
    parts: dict[str, float]


class CpuMeter:
    """CPU seconds of the processes that do the work, read from /proc."""

    def __init__(self) -> None:
        self.roots: dict[str, Callable[[], list[int]]] = {}

    def watch(self, part: str, pids: Callable[[], list[int]]) -> None:
        self.roots[part] = pids

    def sample(self) -> CpuSample:
        table = _proc_table()
        busy, total = _machine_cpu()
        parts = {}
        for part, pids in self.roots.items():
            if part == "bench":  # this process alone: its reaped children are the workers
                parts[part] = table.get(os.getpid(), ("", 0, 0.0, 0.0))[2]
            else:
                parts[part] = sum(_tree_cpu(table, pid) for pid in pids())
        return CpuSample(time.monotonic(), busy, total, parts)


def processes_named(name: str, parent_not: str | None = None) -> list[int]:
    """Pids of processes called ``name`` (whose parent is not called ``parent_not``)."""
    table = _proc_table()
    return [
        pid
        for pid, (comm, parent, _own, _reaped) in table.items()
        if comm == name and (parent_not is None or table.get(parent, ("",))[0] != parent_not)
    ]


@dataclass
class CpuUse:
    """CPU used between two samples: cores busy (CPU seconds per wall second), per part."""

    seconds: float
    cores: dict[str, float]
    machine: float

    @classmethod
    def between(cls, a: CpuSample, b: CpuSample) -> CpuUse:
        wall = max(b.at - a.at, 1e-9)
        cores = {part: (b.parts[part] - a.parts.get(part, 0.0)) / wall for part in b.parts}
        machine = (b.machine_busy - a.machine_busy) / wall
        cores["other"] = max(machine - sum(cores.values()), 0.0)
        return cls(wall, cores, machine)


class Child:
    """A subprocess in a process group of its own, stopped (the whole group) by ``stop``."""

    live: list[Child] = []

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log: Path | None
    ) -> None:
        self.name, self.command, self.env, self.log = name, command, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, stdout: int | None = None) -> Child:
        output = self.log.open("ab") if self.log else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else output,
                stderr=output if stdout is not None else subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if self.log:
                output.close()
        Child.live.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a worker's warm shutdown: it finishes its batches), then after ``timeout``
        SIGKILL to its whole process group."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # pool processes left behind, if any
            os.killpg(self.process.pid, signal.SIGKILL)
        if self in Child.live:
            Child.live.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for child in list(cls.live):
            child.stop()


class SourceServer(Child):
    """The source server's process (``recheck.py --serve``); ``stats`` are its counters."""

    def __init__(self, base_day: date, latency_ms: float, env: dict[str, str]) -> None:
        command = [
            *(sys.executable, str(Path(__file__).resolve())),
            *("--serve", base_day.isoformat(), "--latency-ms", str(latency_ms)),
        ]
        super().__init__("source server", command, env, None)
        self.port = 0

    def start(self, stdout: int | None = None) -> SourceServer:
        super().start(stdout=subprocess.PIPE)
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the source server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def stats(self) -> Counter[str]:
        with urlopen(f"http://127.0.0.1:{self.port}/_stats", timeout=5) as answer:
            return Counter(json.loads(answer.read()))


class Worker(Child):
    """One ``celery -A jobboard worker`` process with a prefork pool."""

    def __init__(self, *, queue: str, concurrency: int, env: dict[str, str], log: Path) -> None:
        command = [
            *(sys.executable, "-m", "celery", "-A", "jobboard", "worker", "--loglevel=INFO"),
            *("--pool=prefork", f"--concurrency={concurrency}", "-Q", queue),
            *("-n", f"bench-recheck-{os.getpid()}@%h"),
            *("--without-heartbeat", "--without-mingle", "--without-gossip"),
        ]
        super().__init__(f"worker (concurrency {concurrency})", command, env, log)
        self.concurrency = concurrency
        self._read = 0
        self.verdicts: Counter[str] = Counter()
        self.task_seconds: dict[str, list[float]] = {}

    def start(self, stdout: int | None = None) -> Worker:
        super().start()
        deadline = time.monotonic() + 60
        while " ready." not in self.log_text():
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)
        return self

    def log_text(self) -> str:
        assert self.log is not None
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def read_log(self) -> None:
        """Count what the log says since the last call: verdicts, batch and scheduler runs."""
        assert self.log is not None
        with self.log.open("rb") as log:
            log.seek(self._read)
            chunk = log.read()
        chunk = chunk[: chunk.rfind(b"\n") + 1]  # whole lines only
        self._read += len(chunk)
        text = chunk.decode(errors="replace")
        self.verdicts.update(re.findall(r" re-check posting=\d+ verdict=(\w+)", text))
        for task, seconds in re.findall(TASK_DONE, text):
            self.task_seconds.setdefault(task, []).append(float(seconds))

    @property
    def checks(self) -> int:
        """Checks that reached a verdict or failed (deferred ones were not attempted)."""
        return self.verdicts.total() - self.verdicts["deferred"]


TASK_DONE = r"Task postings\.tasks\.(\w+)\[[^\]]+\] succeeded in ([\d.]+)s"


# --- Set-up: environment, database, Redis -------------------------------------------------------


def bench_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment of this process, the migration and the worker: the bench's own everything."""
    return {
        "DJANGO_SETTINGS_MODULE": "jobboard.settings",
        "DATABASE_URL": f"{args.postgres.rstrip('/')}/{args.database}",
        "REDIS_URL": f"{args.redis.rstrip('/')}/{args.redis_db}",
        "CELERY_QUEUE": args.queue,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "0",
        "EMAIL_URL": "dummymail://",
        "CACHE_KEY_PREFIX": "bench-recheck",
        "REDIS_KEY_PREFIX": "bench-recheck",
        "SOURCE_HOST_PER_MINUTE": str(args.host_per_minute),
        "SOURCE_HOST_CONCURRENCY": str(args.host_concurrency),
        "RECHECK_FETCH_THREADS": str(args.fetch_threads),
        "PYTHONUNBUFFERED": "1",
    }


def recreate_database(args: argparse.Namespace) -> None:
    import psycopg

    with psycopg.connect(f"{args.postgres.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')


def drop_database(args: argparse.Namespace) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{args.postgres.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


OWNER_KEY = "bench-recheck:owner"


def claim_redis(url: str) -> None:
    """Flush the bench's Redis database: only if it is empty or the bench's own from before."""
    import redis

    client = redis.Redis.from_url(url)
    if client.dbsize() and not client.exists(OWNER_KEY):
        raise SystemExit(
            f"{url} holds keys this benchmark did not write; pick a free one with --redis-db"
        )
    client.flushdb()
    client.set(OWNER_KEY, "bench/recheck.py")
    client.close()


def setup_django(env: dict[str, str]) -> None:
    import logging

    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import jobboard.celery  # noqa: F401 - the app tasks are sent with

    # The scheduler logs every tick and the per-listing verdicts; the bench prints its own lines.
    logging.getLogger("postings").setLevel(logging.ERROR)


# --- Loading listings ---------------------------------------------------------------------------

COLUMNS = (
    "company_id", "title", "slug", "description", "description_html", "summary", "city",
    "region", "country", "workplace", "employment_type", "seniority", "practice_area",
    "salary_min", "salary_max", "salary_currency", "salary_period", "status", "posted_at",
    "last_checked_at", "check_attempted_at", "deadline", "closed_reason", "source_url",
    "apply_url", "applies_on_board", "view_count", "applicant_count", "apply_click_count",
    "check_failures", "check_note", "source_etag", "source_last_modified", "source_hash",
    "created_at", "modified_at", "title_key", "description_key", "apply_key",
)  # fmt: skip


@dataclass
class Board:
    """What listings refer to: companies, the source server, the day deadlines count from."""

    companies: dict[str, int]
    port: int
    hosts: int
    base_day: date
    generation: int = 0  # a load's source URLs are new: changing pages start from variant 0
    _rendered: dict[tuple[str, ...], tuple[str, str, str, str]] = field(default_factory=dict)

    def source_url(self, i: int) -> str:
        host = f"127.0.0.{2 + i % self.hosts}:{self.port}"
        return f"http://{host}/jobs/{kind_of(i)}/{self.generation}-{i}"

    def aggregated_row(self, i: int, last_checked: datetime, now: datetime) -> tuple[Any, ...]:
        """A listing imported from source page ``i``, as a past check left it (hash, ETag)."""
        from postings import sources
        from postings.text import summarize

        job = source_job(i, self.base_day)
        facts = sources.job_facts(job)
        assert facts is not None
        kind = kind_of(i)
        title, area, level = ROLES[i % len(ROLES)]
        place = PLACES[(i // len(ROLES)) % len(PLACES)]
        url = self.source_url(i)
        posted = now - timedelta(days=10 + i % 30)
        return (
            self.companies[job["hiringOrganization"]["name"]], title, _slug(title),
            facts.description_html, facts.description_html, summarize(facts.description_html),
            *place, "onsite", "full_time", level, area, facts.salary_min, facts.salary_max,
            "EUR", "year", "published", posted, last_checked, last_checked, facts.deadline,
            "", url, url, False, 0, 0, 0, 0, "Unchanged: the job at the source is the same",
            ETAG if kind == "etag" else "", "", "ld:" + facts.hash(), posted, posted,
            *duplicate_keys(title, facts.description_html, url),
        )  # fmt: skip

    def own_row(self, i: int, last_checked: datetime, now: datetime) -> tuple[Any, ...]:
        """A listing our own employer posted: no source, a deadline 1-60 days ahead."""
        from postings import duplicates

        title, area, level = ROLES[i % len(ROLES)]
        company = COMPANIES[i % len(COMPANIES)]
        remote = i % 3 == 0
        city, region, country = ("", "", "DE") if remote else PLACES[(i // 8) % len(PLACES)]
        description, html, summary, description_key = self._render(company, title, city)
        low = 40_000 + (i % 20) * 2_000 if i % 10 < 7 else None
        posted = now - timedelta(days=1 + i % 30)
        return (
            self.companies[company], title, _slug(title), description, html, summary,
            city, region, country, "remote" if remote else "onsite", "full_time", level, area,
            low, None if low is None else low + 20_000, "EUR" if low else "",
            "year" if low else "", "published", posted, last_checked, last_checked,
            deadline_of(i, self.base_day), "", "", "", True, 0, 0, 0, 0,
            "Open: open, and its deadline is ahead", "", "", "", posted, posted,
            duplicates.title_key(title), description_key, "",
        )  # fmt: skip

    def _render(self, company: str, title: str, city: str) -> tuple[str, str, str, str]:
        """Description, its HTML, summary and duplicate key: a few dozen distinct ones."""
        from postings import duplicates
        from postings.text import render_description, summarize

        key = (company, title, city)
        if key not in self._rendered:
            where = f" in our {city} office" if city else ", remotely"
            text = OWN_DESCRIPTION.format(company=company, title=title, where=where)
            html = render_description(text)
            self._rendered[key] = (text, html, summarize(html), duplicates.description_key(html))
        return self._rendered[key]


def duplicate_keys(title: str, description_html: str, apply_url: str) -> tuple[str, str, str]:
    """The columns ``Posting.save`` derives (``postings/duplicates.py``); COPY bypasses it."""
    from postings import duplicates

    return (
        duplicates.title_key(title),
        duplicates.description_key(description_html),
        duplicates.apply_key(apply_url),
    )


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def create_companies() -> dict[str, int]:
    from postings.models import Company

    Company.objects.bulk_create(
        Company(name=name, slug=_slug(name), website=f"https://{_slug(name)}.example")
        for name in COMPANIES
    )
    return dict(Company.objects.values_list("name", "pk"))


def clear_listings() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE postings_posting RESTART IDENTITY CASCADE")


def copy_rows(rows: Iterable[tuple[Any, ...]]) -> int:
    """COPY the rows into postings_posting, then VACUUM ANALYZE it; returns how many."""
    from django.db import connection

    connection.ensure_connection()
    with connection.cursor() as cursor:
        # A column a later migration made NOT NULL without a database default: say which,
        # rather than fail in the middle of the COPY.
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'postings_posting'::regclass"
            " AND attnum > 0 AND NOT attisdropped AND attnotnull AND NOT atthasdef"
            " AND attidentity = '' AND attgenerated = '' AND NOT attname = ANY(%s)",
            [list(COLUMNS)],
        )
        missing = [name for (name,) in cursor.fetchall()]
    if missing:
        raise RuntimeError(
            f"postings_posting has NOT NULL columns bench/recheck.py does not fill: "
            f"{', '.join(missing)}; add them to its COLUMNS and rows"
        )
    count = 0
    statement = f"COPY postings_posting ({', '.join(COLUMNS)}) FROM STDIN"
    with connection.connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE postings_posting")
    return count


@dataclass
class Load:
    rows: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.rows:,} rows in {self.seconds:.1f} s ({self.rows / self.seconds:,.0f}/s)"


def load(board: Board, rows: Callable[[], Iterable[tuple[Any, ...]]]) -> Load:
    clear_listings()
    board.generation += 1
    started = time.monotonic()
    count = copy_rows(rows())
    return Load(count, time.monotonic() - started)


# --- Measuring ----------------------------------------------------------------------------------


def sql_one(query: str, params: tuple[Any, ...] = ()) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()[0]


def attempted_since(moment: datetime) -> int:
    return sql_one(
        "SELECT count(*) FROM postings_posting WHERE check_attempted_at >= %s", (moment,)
    )


def sessions() -> int:
    """PostgreSQL sessions opened on the bench database so far (one per new connection)."""
    return sql_one("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")


def verdicts_since(moment: datetime) -> Counter[str]:
    """Each listing's verdict, read back from its row (``check_note`` starts with it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN status = 'closed' THEN 'closed' "
            "ELSE lower(substring(check_note from '^[A-Za-z]+')) END, count(*) "
            "FROM postings_posting WHERE check_attempted_at >= %s GROUP BY 1",
            (moment,),
        )
        return Counter(dict(cursor.fetchall()))


@dataclass
class Run:
    """One measured run: listings, wall time, verdicts and what each part of the machine did."""

    label: str
    concurrency: int
    listings: int
    done: int
    seconds: float
    middle_rate: float
    verdicts: Counter[str]
    deferred: int
    cpu: CpuUse
    batches: list[float]
    new_sessions: int
    served: Counter[str]
    progress: list[tuple[float, int]]
    first_tick: tuple[float, int]  # how long the first schedule_rechecks took, how many it queued

    @property
    def rate(self) -> float:
        return self.done / self.seconds


def measure_checks(
    label: str, worker: Worker, listings: int, meter: CpuMeter, server: SourceServer, timeout: float
) -> Run:
    """Queue the due listings every second until each had a check attempted; time it."""
    from postings import freshness

    served0, sessions0 = server.stats(), sessions()
    started_at = datetime.now(UTC)
    cpu0 = meter.sample()
    started = time.monotonic()
    progress: list[tuple[float, int]] = []
    next_tick, done, ticks = 0.0, 0, []
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= next_tick:
            queued = freshness.schedule_rechecks()
            ticks.append((time.monotonic() - started - elapsed, queued))
            next_tick += 1.0
        done = attempted_since(started_at)
        elapsed = time.monotonic() - started
        progress.append((elapsed, done))
        if done >= listings or elapsed > timeout:
            break
        time.sleep(0.1)
    cpu = CpuUse.between(cpu0, meter.sample())
    served = server.stats()
    served.subtract(served0)
    worker.read_log()
    return Run(
        label=label,
        concurrency=worker.concurrency,
        listings=listings,
        done=done,
        seconds=elapsed,
        middle_rate=_middle_rate(progress, listings),
        verdicts=verdicts_since(started_at),
        deferred=worker.verdicts["deferred"],
        cpu=cpu,
        batches=worker.task_seconds.get("recheck_batch", []),
        new_sessions=sessions() - sessions0,
        served=served,
        progress=progress,
        first_tick=ticks[0],
    )


def _middle_rate(progress: list[tuple[float, int]], total: int) -> float:
    """Checks per second between 10 % and 90 % done: without start-up and the last batches."""

    def when(share: float) -> float | None:
        return next((t for t, n in progress if n >= share * total), None)

    low, high = when(0.1), when(0.9)
    if low is None or high is None or high <= low:
        return 0.0
    return 0.8 * total / (high - low)


@dataclass
class LagSample:
    at: float  # seconds since the start
    lag: float  # freshness_lag(), seconds
    checks: int  # checks done since the start (the worker's log: one line per verdict)
    queued: int  # tasks waiting on the queue
    cpu: CpuSample


@dataclass
class LagRun:
    interval: timedelta
    tick: timedelta
    listings: int
    aggregated: int
    seconds: float
    samples: list[LagSample]
    verdicts: Counter[str]
    cpu: CpuUse
    batches: list[float]
    scheduler: list[float]
    load: Load
    host_wait: float  # SOURCE_TOTAL_TIMEOUT: how long a listing waits when its host is busy

    @property
    def checks(self) -> int:
        return self.samples[-1].checks

    @property
    def typical_lag(self) -> float:
        return statistics.median(sample.lag for sample in self.samples)

    @property
    def behind(self) -> float:
        """The share of samples with tasks waiting: 1.0 is a worker that never caught up."""
        return sum(1 for sample in self.samples[1:] if sample.queued) / max(
            len(self.samples) - 1, 1
        )

    @property
    def max_lag(self) -> float:
        return max(sample.lag for sample in self.samples)

    @property
    def allowed(self) -> float:
        """The lag that still counts as held: the interval, two ticks (due two ticks early, then
        queued on the next one, then run) and the wait of a listing whose host was busy."""
        return (self.interval + 2 * self.tick).total_seconds() + self.host_wait

    @property
    def held(self) -> bool:
        return self.max_lag <= self.allowed

    @property
    def needed_rate(self) -> float:
        return self.listings / self.interval.total_seconds()

    @property
    def achieved_rate(self) -> float:
        return self.checks / self.seconds


def measure_lag(
    worker: Worker, meter: CpuMeter, *, interval: timedelta, tick: timedelta, seconds: float,
    listings: int, aggregated: int, loaded: Load, every: float = 5.0,
) -> LagRun:  # fmt: skip
    """Do beat's part (the scheduler task every tick) for ``seconds``; sample the lag meanwhile."""
    from django.conf import settings

    from postings import freshness, tasks

    worker.read_log()
    checks0, verdicts0 = worker.checks, Counter(worker.verdicts)
    cpu0 = meter.sample()
    started = time.monotonic()
    samples: list[LagSample] = []
    next_tick = next_sample = 0.0
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= next_tick:
            tasks.schedule_rechecks.delay()
            next_tick += tick.total_seconds()
        if elapsed >= next_sample or elapsed >= seconds:
            lag = freshness.freshness_lag()
            worker.read_log()
            samples.append(
                LagSample(
                    at=elapsed,
                    lag=lag.total_seconds() if lag is not None else 0.0,
                    checks=worker.checks - checks0,
                    queued=freshness.queue_length() or 0,
                    cpu=meter.sample(),
                )
            )
            next_sample += every
        if elapsed >= seconds:
            break
        time.sleep(max(0.0, min(next_tick, next_sample, seconds) - elapsed))
    verdicts = Counter(worker.verdicts)
    verdicts.subtract(verdicts0)
    return LagRun(
        interval=interval,
        tick=tick,
        listings=listings,
        aggregated=aggregated,
        seconds=samples[-1].at,
        samples=samples,
        verdicts=+verdicts,
        cpu=CpuUse.between(cpu0, samples[-1].cpu),
        batches=worker.task_seconds.get("recheck_batch", []),
        scheduler=worker.task_seconds.get("schedule_rechecks", []),
        load=loaded,
        host_wait=settings.SOURCE_TOTAL_TIMEOUT,
    )


# --- Printing -----------------------------------------------------------------------------------

PARTS = (
    ("worker", "worker (main + pool)"),
    ("postgres", "PostgreSQL"),
    ("redis", "Redis"),
    ("server", "source server"),
    ("bench", "this script"),
    ("other", "other (other processes, kernel)"),
)


def say(text: str = "") -> None:
    print(text, flush=True)


def duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def print_cpu(cpu: CpuUse, checks: int) -> None:
    say(f"    CPU over {cpu.seconds:.0f} s ({CORES} cores; 1.00 = one core busy):")
    for part, name in PARTS:
        cores = cpu.cores.get(part, 0.0)
        per_check = cores * cpu.seconds / max(checks, 1) * 1000
        say(f"      {name:<34} {cores:5.2f} cores   {per_check:6.2f} ms per check")
    say(f"      {'machine, all of it':<34} {cpu.machine:5.2f} of {CORES}")


def print_run(run: Run) -> None:
    verdicts = ", ".join(f"{k} {v:,}" for k, v in run.verdicts.most_common())
    complete = "" if run.done >= run.listings else f"  (INCOMPLETE: {run.done:,} checked)"
    say(
        f"  {run.label}, worker concurrency {run.concurrency}: {run.listings:,} listings in "
        f"{run.seconds:.1f} s = {run.rate:,.0f} checks/s "
        f"(between 10 % and 90 % done: {run.middle_rate:,.0f}/s){complete}"
    )
    say(f"    verdicts: {verdicts}; deferred at a host limit: {run.deferred:,}")
    seconds, queued = run.first_tick
    say(f"    scheduler (in this script): the first tick queued {queued:,} in {seconds:.2f} s")
    if run.batches:
        say(
            f"    batches: {len(run.batches)} of up to 50, {statistics.mean(run.batches):.2f} s "
            f"each on average (slowest {max(run.batches):.2f} s)"
        )
    say(
        f"    new PostgreSQL sessions: {run.new_sessions:,} "
        f"({run.new_sessions / max(run.done, 1):.2f} per check)"
    )
    requests = run.served.get("requests", 0)
    if requests:
        busy = run.served.get("busy_us", 0) / requests / 1000
        codes = ", ".join(f"{c} {run.served[c]:,}" for c in ("200", "304", "410") if run.served[c])
        say(
            f"    source server: {requests:,} requests ({codes}), {busy:.2f} ms each to answer, "
            f"at most {run.served.get('max_in_flight', 0)} at once"
        )
    print_cpu(run.cpu, run.done)


def print_lag(run: LagRun) -> None:
    interval = run.interval.total_seconds()
    say(
        f"  {run.listings:,} open listings ({run.aggregated:,} aggregated, "
        f"{run.listings - run.aggregated:,} own), last checks spread over the past interval; "
        f"loaded {run.load}"
    )
    say("      time     lag  lag/interval    checks  checks/s  queued tasks  machine CPU")
    shown = run.samples[0]
    for sample in run.samples:
        if sample.at - shown.at < 14.5 and sample is not run.samples[-1] and sample.at > 0:
            continue
        wall = sample.at - shown.at
        rate = (sample.checks - shown.checks) / wall if wall else 0.0
        busy = CpuUse.between(shown.cpu, sample.cpu).machine / CORES if wall else 0.0
        say(
            f"    {duration(sample.at):>6}  {duration(sample.lag):>6}  "
            f"{sample.lag / interval:12.2f}  {sample.checks:8,}  {rate:8,.0f}  "
            f"{sample.queued:12,}  {busy:10.0%}"
        )
        shown = sample
    verdicts = ", ".join(f"{k} {v:,}" for k, v in run.verdicts.most_common())
    say(f"    verdicts (the worker's log): {verdicts}")
    say(
        f"    needed {run.needed_rate:,.0f} checks/s (open listings / interval); done "
        f"{run.achieved_rate:,.0f}/s on average over {duration(run.seconds)}"
    )
    say(
        f"    tasks were waiting in {run.behind:.0%} of the samples; "
        f"deferred (host busy): {run.verdicts['deferred']:,}"
    )
    say(
        f"    lag: at most {duration(run.max_lag)}, median {duration(run.typical_lag)}, at the "
        f"end {duration(run.samples[-1].lag)}; allowed: interval {duration(interval)} + 2 ticks "
        f"+ {run.host_wait:.0f} s a busy host's listing waits = {duration(run.allowed)}: "
        f"{'HELD' if run.held else 'NOT HELD'}"
    )
    if run.scheduler:
        say(
            f"    scheduler task: {len(run.scheduler)} runs, "
            f"{statistics.mean(run.scheduler):.2f} s on average "
            f"(slowest {max(run.scheduler):.2f} s)"
        )
    if run.batches:
        say(
            f"    batches: {len(run.batches):,}, {statistics.mean(run.batches):.2f} s on average "
            f"(slowest {max(run.batches):.2f} s)"
        )
    print_cpu(run.cpu, run.checks)


def limits(
    cpu: CpuUse, checks: int, *, sessions: float = 0.0, deferred: int = 0, held: bool = False
) -> str:
    """What limits a run, in a few words: where the CPU went, per check."""
    busy = cpu.machine / CORES
    names = {"worker": "worker", "postgres": "PostgreSQL", "server": "server", "redis": "Redis"}
    ms = {part: cpu.cores.get(part, 0.0) * cpu.seconds / max(checks, 1) * 1000 for part in names}
    heavy = sorted(names, key=ms.__getitem__, reverse=True)[:2]
    cost = " + ".join(f"{names[part]} {ms[part]:.2f}" for part in heavy) + " ms CPU per check"
    if held:
        notes = [f"keeps up, {busy:.0%} of {CORES} cores busy: {cost}"]
    elif busy >= 0.85:
        notes = [f"CPU ({busy:.0%} of {CORES} cores busy): {cost}"]
    else:
        notes = [f"not CPU-bound ({busy:.0%} of {CORES} cores busy): {cost}"]
    if sessions >= 0.5:
        notes.append(f"{sessions:.2f} new PostgreSQL connections per check")
    if deferred:
        notes.append(f"{deferred:,} deferred by the per-host limits")
    if cpu.cores.get("other", 0.0) >= 0.3:
        notes.append(f"other processes took {cpu.cores['other']:.2f} cores")
    return "; ".join(notes)


OURS = ("worker", "postgres", "redis", "server", "bench")


def cpu_per_check(cpu: CpuUse, checks: int) -> float:
    """CPU seconds the bench's processes (not the others) spent per check."""
    return sum(cpu.cores.get(part, 0.0) for part in OURS) * cpu.seconds / max(checks, 1)


def board_capacity(runs: list[Run], lag: LagRun | None, share: float) -> tuple[float, str]:
    """Checks per second one worker manages on a board with ``share`` aggregated, and why.

    Measured when phase B could not keep up (tasks mostly waiting); otherwise CPU-bound:
    every core busy at phase B's CPU cost per check (or phase A's, mixed, without phase B).
    """
    if lag is not None and lag.behind >= 0.5:
        return lag.achieved_rate, (
            f"measured in phase B: tasks were waiting in {lag.behind:.0%} of the samples"
        )
    if lag is not None:
        per_check, where = cpu_per_check(lag.cpu, lag.checks), "phase B"
    else:
        aggregated, own = runs[0], runs[1]
        per_check = share * cpu_per_check(aggregated.cpu, aggregated.done) + (
            1 - share
        ) * cpu_per_check(own.cpu, own.done)
        where = "phase A, mixed"
    return CORES / per_check, (
        f"CPU-bound: {CORES} cores / {per_check * 1000:.2f} ms CPU per check ({where}), "
        "if nothing else runs"
    )


# --- The benchmark ------------------------------------------------------------------------------


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The docstring as it is written, and each option's default."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/recheck.py", description=__doc__, formatter_class=_Help
    )
    add = parser.add_argument
    add("--serve", metavar="BASE_DAY", help=argparse.SUPPRESS)  # the source server's process
    add("--postgres", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server")
    add("--database", default="jobboard_bench_recheck", help="the bench's database (re-created)")
    add("--drop", action="store_true", help="drop the bench's database at the end")
    add("--redis", default="redis://127.0.0.1:6379", help="Redis server")
    add("--redis-db", type=int, default=10, help="the bench's Redis database number (flushed)")
    add("--queue", default="bench-recheck", help="the bench's Celery queue")
    add("--listings", type=int, default=10_000, help="phase A: listings per run")
    add("--concurrency", type=int, default=2, help="worker pool processes (Celery: 1 per core)")
    add("--alt-concurrency", type=int, default=4, help="phase A (aggregated) again; 0: skip")
    add("--alt-listings", type=int, default=4_000, help="listings at --alt-concurrency")
    add("--fetch-threads", type=int, default=8, help="RECHECK_FETCH_THREADS (project: 8)")
    add("--hosts", type=int, default=249, help="source host names: 127.0.0.2 and up")
    add("--host-per-minute", type=int, default=100_000, help="SOURCE_HOST_PER_MINUTE (project: 30)")
    add("--host-concurrency", type=int, default=2, help="SOURCE_HOST_CONCURRENCY (project: 2)")
    add("--latency-ms", type=float, default=0.0, help="source pages answer after ~this long")
    add("--open-listings", type=int, default=100_000, help="phase B: open listings")
    add("--aggregated-share", type=float, default=0.10, help="phase B: share with a source page")
    add("--interval-minutes", type=int, default=4, help="phase B: RECHECK_INTERVAL_MINUTES")
    add("--tick-seconds", type=int, default=5, help="phase B: RECHECK_TICK_SECONDS")
    add("--intervals", type=float, default=1.25, help="phase B: intervals to watch the lag")
    add("--skip-b", action="store_true", help="phase A only")
    add("--quick", action="store_true", help="2,000 and 20,000 listings, 1-min interval")
    add("--smoke", action="store_true", help="does it run? 200 and 1,000 listings, 9 s of B")
    args = parser.parse_args(argv)
    args.timeout = 300.0  # phase A: seconds a run may take to check its listings
    if args.quick:
        args.listings, args.open_listings, args.interval_minutes = 2_000, 20_000, 1
        args.alt_concurrency = 0
    if args.smoke:
        args.listings, args.open_listings, args.interval_minutes = 200, 1_000, 1
        args.alt_concurrency, args.intervals, args.timeout = 0, 0.15, 60.0
    if not 1 <= args.hosts <= 249:
        parser.error("--hosts: between 1 and 249")
    if not 0 < args.aggregated_share <= 1:
        parser.error("--aggregated-share: more than 0, at most 1")
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(date.fromisoformat(args.serve), args.latency_ms / 1000)
        return 0
    for signum in (signal.SIGINT, signal.SIGTERM):  # even where a shell ignores SIGINT
        signal.signal(signum, _interrupt)
    try:
        return run_benchmark(args)
    except KeyboardInterrupt:
        say(f"\ninterrupted: stopping {', '.join(c.name for c in Child.live) or 'nothing'}")
        return 130
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C: still clean up
            signal.signal(signum, signal.SIG_IGN)
        Child.stop_all()


def run_benchmark(args: argparse.Namespace) -> int:
    started = time.monotonic()
    bench = Bench(args)
    bench.set_up()
    runs = bench.phase_a()
    lag = None if args.skip_b else bench.phase_b()
    bench.summary(runs, lag)
    problems = smoke_problems(runs, lag, bench.logs) if args.smoke else []
    if args.drop:
        drop_database(args)
        say(f"database {args.database} dropped")
    else:
        say(f"database {args.database} left for a look (--drop drops it)")
    say(f"done in {duration(time.monotonic() - started)}")
    if args.smoke:
        say()
        for problem in problems:
            say(f"SMOKE FAILED: {problem}")
        if not problems:
            say("smoke run: every phase ran (figures of a run this small are not judged)")
    return 1 if problems else 0


def smoke_problems(runs: list[Run], lag: LagRun | None, logs: Path) -> list[str]:
    """What a smoke run shows to be broken: the figures are not judged, their bookkeeping is."""
    problems = []
    for run in runs:
        if run.done < run.listings:
            problems.append(f"{run.label}: {run.done:,} of {run.listings:,} listings checked")
        if run.verdicts.total() != run.done:
            problems.append(
                f"{run.label}: {run.verdicts.total():,} verdicts for {run.done:,} checks"
            )
        answers = sum(run.served[code] for code in ("200", "304", "410"))
        if answers != run.served["requests"]:
            problems.append(
                f"{run.label}: the source server answered {run.served['requests']:,} requests,"
                f" {answers:,} of them 200, 304 or 410"
            )
        # One fetch per check (none deferred), plus this script's own look at /_stats.
        fetches = run.served["requests"] - 1
        if run.label.startswith("aggregated") and fetches < run.done - run.deferred:
            problems.append(f"{run.label}: {fetches:,} source pages fetched for {run.done:,}")
    if lag is not None and lag.checks == 0:
        problems.append("phase B: the worker checked nothing")
    for log in sorted(logs.glob("*.log")):
        errors = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if "Traceback" in line or "ERROR/" in line or "CRITICAL/" in line
        ]
        if errors:
            problems.append(f"{log.name}: {len(errors)} errors, the first: {errors[0][:300]}")
    return problems


class Bench:
    """The set-up shared by the phases: database, Redis, source server, CPU meter, one worker."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.env = {**os.environ, **bench_env(args)}
        self.logs = ROOT / "var" / "bench-recheck" / datetime.now().strftime("%Y%m%d-%H%M%S")
        self.base_day = datetime.now(UTC).date() + timedelta(days=30)
        self.worker: Worker | None = None
        self.meter = CpuMeter()

    def set_up(self) -> None:
        args, started = self.args, time.monotonic()
        self.logs.mkdir(parents=True, exist_ok=True)
        say(f"bench/recheck.py: one re-check worker, {CORES} cores; logs in {self.logs}")
        recreate_database(args)
        migrate = [sys.executable, "manage.py", "migrate", "-v0"]
        subprocess.run(migrate, cwd=ROOT, env=self.env, check=True)
        claim_redis(self.env["REDIS_URL"])
        setup_django({k: self.env[k] for k in bench_env(args)})
        self.server = SourceServer(self.base_day, args.latency_ms, self.env).start()
        # Its hosts are loopback addresses, which fetches refuse unless allowed (as an operator
        # allows an intranet): the workers get this network and the server's port.
        self.env["SOURCE_ALLOWED_NETWORKS"] = "127.0.0.0/8"
        self.env["SOURCE_ALLOWED_PORTS"] = str(self.server.port)
        self.board = Board(create_companies(), self.server.port, args.hosts, self.base_day)
        self.meter.watch("worker", lambda: [self.worker.pid] if self.worker else [])
        self.meter.watch("postgres", lambda: processes_named("postgres", parent_not="postgres"))
        self.meter.watch("redis", lambda: processes_named("redis-server"))
        self.meter.watch("server", lambda: [self.server.pid])
        self.meter.watch("bench", lambda: [os.getpid()])
        say(
            f"set-up in {time.monotonic() - started:.1f} s: database {args.database} (migrated), "
            f"Redis db {args.redis_db}, queue {args.queue!r}, source server on port "
            f"{self.server.port} of 127.0.0.2-{args.hosts + 1}"
            + (f", answering after ~{args.latency_ms:.0f} ms" if args.latency_ms else "")
        )
        say(
            f"settings: RECHECK_BATCH_SIZE 50, RECHECK_FETCH_THREADS {args.fetch_threads}, "
            f"SOURCE_HOST_CONCURRENCY {args.host_concurrency}, SOURCE_HOST_PER_MINUTE "
            f"{args.host_per_minute:,} (the project's 30 would cap {args.hosts} hosts at "
            f"{args.hosts * 30 / 60:.0f} fetches/s)"
        )

    def start_worker(self, concurrency: int, name: str, **env: str) -> Worker:
        log = self.logs / f"worker-{name}.log"
        worker = Worker(
            queue=self.args.queue, concurrency=concurrency, env={**self.env, **env}, log=log
        )
        self.worker = worker.start()
        return worker

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        claim_redis(self.env["REDIS_URL"])  # an empty queue, no host slots or rate limits left

    # --- Phase A ------------------------------------------------------------------------------

    def phase_a(self) -> list[Run]:
        args = self.args
        say()
        say(f"Phase A: checks per second, {args.listings:,} listings all due, one worker")
        runs = [self.checks_per_second(args.concurrency, args.listings, aggregated=True)]
        runs.append(self.checks_per_second(args.concurrency, args.listings, aggregated=False))
        if args.alt_concurrency:
            runs.append(
                self.checks_per_second(args.alt_concurrency, args.alt_listings, aggregated=True)
            )
        return runs

    def checks_per_second(self, concurrency: int, n: int, *, aggregated: bool) -> Run:
        board, now, rng = self.board, datetime.now(UTC), random.Random(n)
        make = board.aggregated_row if aggregated else board.own_row

        def rows() -> Iterator[tuple[Any, ...]]:  # last checked 1 to 2 hours ago: all due
            for i in range(n):
                yield make(i, now - timedelta(minutes=60 + rng.uniform(0, 60)), now)

        loaded = load(board, rows)
        label = "aggregated (fetch a source page)" if aggregated else "own listings (no source)"
        say(f"  {label}: loaded {loaded}")
        worker = self.start_worker(concurrency, f"A-{label.split()[0]}-c{concurrency}")
        run = measure_checks(label, worker, n, self.meter, self.server, self.args.timeout)
        self.stop_worker()
        print_run(run)
        return run

    # --- Phase B ------------------------------------------------------------------------------

    def phase_b(self) -> LagRun:
        args, board = self.args, self.board
        interval = timedelta(minutes=args.interval_minutes)
        tick = timedelta(seconds=args.tick_seconds)
        total = args.open_listings
        with_source = round(total * args.aggregated_share)
        say()
        say(
            f"Phase B: the freshness lag at {total:,} open listings, one worker (concurrency "
            f"{args.concurrency}), RECHECK_INTERVAL_MINUTES={args.interval_minutes}, "
            f"RECHECK_TICK_SECONDS={args.tick_seconds}"
        )
        worker = self.start_worker(
            args.concurrency,
            "B-lag",
            RECHECK_INTERVAL_MINUTES=str(args.interval_minutes),
            RECHECK_TICK_SECONDS=str(args.tick_seconds),
        )
        rng = random.Random(7)
        anchor = datetime.now(UTC)

        def steady() -> datetime:  # last checks spread evenly over the past interval
            return anchor - timedelta(seconds=rng.uniform(0, interval.total_seconds()))

        def rows() -> Iterator[tuple[Any, ...]]:
            pages = 0  # the aggregated listings, spread evenly among our own
            for i in range(total):
                if (i + 1) * with_source // total > i * with_source // total:
                    yield board.aggregated_row(pages, steady(), anchor)
                    pages += 1
                else:
                    yield board.own_row(i, steady(), anchor)

        loaded = load(board, rows)
        # Loading took a while: move every last check on by as much, so the spread ends now.
        shift = datetime.now(UTC) - anchor
        sql_one(
            "WITH moved AS (UPDATE postings_posting SET last_checked_at = last_checked_at + %s, "
            "check_attempted_at = check_attempted_at + %s RETURNING 1) SELECT count(*) FROM moved",
            (shift, shift),
        )
        run = measure_lag(
            worker, self.meter, interval=interval, tick=tick,
            seconds=args.intervals * interval.total_seconds(), listings=total,
            aggregated=sql_one("SELECT count(*) FROM postings_posting WHERE source_url <> ''"),
            loaded=loaded,
        )  # fmt: skip
        self.stop_worker()
        print_lag(run)
        return run

    # --- Summary ------------------------------------------------------------------------------

    def summary(self, runs: list[Run], lag: LagRun | None) -> None:
        args = self.args
        aggregated, own = runs[0], runs[1]
        table = [("figure", "value", "limited by")]
        for run in (aggregated, *runs[2:], own):
            kind = "aggregated" if run is not own else "own listings"
            why = limits(
                run.cpu,
                run.done,
                sessions=run.new_sessions / max(run.done, 1),
                deferred=run.deferred,
            )
            tick_seconds = run.first_tick[0]
            if tick_seconds > 0.2 * run.seconds:
                why += f"; queueing them took {tick_seconds:.1f} s of the {run.seconds:.1f} s"
            table.append(
                (
                    f"checks/s, {kind}, concurrency {run.concurrency}",
                    f"{run.rate:,.0f}/s",
                    why,
                )
            )
        share, total = args.aggregated_share, args.open_listings
        if lag is not None:
            table.append(
                (
                    f"freshness lag, {lag.listings:,} open, {args.interval_minutes}-min interval",
                    f"{'held' if lag.held else 'NOT held'}: max {duration(lag.max_lag)}",
                    f"median lag {duration(lag.typical_lag)}; needs {lag.needed_rate:,.0f} "
                    f"checks/s, did {lag.achieved_rate:,.0f}/s; "
                    + limits(lag.cpu, lag.checks, held=lag.held),
                )
            )
        capacity, basis = board_capacity(runs, lag, share)
        table.append((f"capacity, {share:.0%} aggregated", f"~{capacity:,.0f}/s", basis))
        shortest = total / capacity
        table.append(
            (
                f"shortest interval held, {total:,} open",
                f"~{duration(shortest)}",
                f"open / capacity: RECHECK_INTERVAL_MINUTES={math.ceil(shortest / 60)} "
                f"(whole minutes)",
            )
        )
        for minutes in (5, 60):
            need = total / (minutes * 60)
            table.append(
                (
                    f"{minutes}-min interval held, {total:,} open",
                    f"{'yes' if capacity > need else 'no'}, {capacity / need:,.1f}x",
                    f"needs {need:,.1f} checks/s; headroom = capacity / need",
                )
            )
        say()
        say(f"Summary: one worker (Celery prefork), {CORES} cores, PostgreSQL and Redis local")
        widths = [max(len(row[i]) for row in table) for i in range(2)]
        for what, value, why in table:
            say(f"  {what:<{widths[0]}}  {value:>{widths[1]}}  {why}")
        others = max(r.cpu.cores.get("other", 0.0) for r in [*runs, *([lag] if lag else [])])
        if others >= 0.3:
            say(
                f"  WARNING: other processes took up to {others:.2f} cores during a run: "
                "the figures are lower than on an idle machine."
            )


if __name__ == "__main__":
    sys.exit(main())
