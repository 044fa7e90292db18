"""Benchmark (not a test) of issues 19 and 7: every public page class under load next to a trivial
view, first as a real crowd asks for them (random addresses, each asked for once, kept pages off:
issue 19's headline), then as a rotation of a few addresses (kept pages on: issue 7's "hot"
classes); the SQL of each page class, a web worker's memory, and the view counter's cost and
accuracy, in one run; then each issue's targets, PASS or FAIL.

Run it from the repository root; PostgreSQL (127.0.0.1:5432, user postgres, trust auth), Redis
(127.0.0.1:6379) and wrk (Debian package ``wrk``) must be there::

    .venv/bin/python bench/scale.py              # the figures (the first run builds the data)
    .venv/bin/python bench/scale.py --help       # the options; the defaults give the figures
    .venv/bin/python bench/scale.py --rebuild    # build the data set again even if it is there
    .venv/bin/python bench/scale.py --postings 50000 --database jobboard_bench_small \
        --redis-db 10 --duration 5               # a quick run on a small data set
    .venv/bin/python bench/scale.py --smoke      # does it still run? about a minute
    .venv/bin/python bench/profile_pages.py      # then: where each page class's time goes

``--smoke`` goes through every step below on 1,000 postings built afresh in
``jobboard_bench_smoke`` (from text pools a tenth of the size), with one-second wrk runs, 200
addresses for each crowd class, each statement explained once and static files collected
without WhiteNoise's compression (5 CPU seconds that change no page). Its figures mean nothing
and the targets are not judged; it exits non-zero when something is broken: a page that does
not answer 200, a page class with no answer, wrk counting error statuses, the view counter
losing a view, gunicorn restarted, a crowd class whose answers the server did not give to its
addresses (its wrk script did not load), or a page kept while kept pages were off. The test
suite runs it (tests/test_bench.py).

1. The data set (``bench/scale_data.py``): 1,000,000 postings and 20,000 companies, seeded, in
   database ``jobboard_bench``, its schema made by the project's migrations. It is built once
   and reused while its size, seed and generator are the same and it is under a week old (its
   dates are relative to its build); migrations added since are applied to it by
   ``manage.py migrate``, timed, as production would apply them. Its build time is the issue's
   "load" figure; the build prints what each step took and the CPU it and other processes used.
2. The production server: ``gunicorn jobboard.wsgi``, 2 sync workers (default timeout 30 s),
   the project's settings read from the environment as in production: DEBUG off, a random
   SECRET_KEY, PostgreSQL, Redis database ``--redis-db`` (flushed; refused when it holds keys
   this benchmark did not write), persistent connections (the default ``CONN_MAX_AGE``), static
   files collected into a scratch directory and served by WhiteNoise, an access log as the
   Dockerfile writes one. ``DJANGO_SETTINGS_MODULE=bench.settings_bench`` only adds two
   comparison views (``bench/urls_bench.py``): ``/bench/trivial/`` (``HttpResponse("ok")``
   through the same middleware) and the listing's page with the view counter off. The server
   trusts one proxy (``TRUSTED_PROXY_COUNT=1``, as behind a load balancer), so a visitor's
   address is the one wrk puts in ``X-Forwarded-For``.
3. Each page class under ``wrk -t2 -c32`` on loopback for ``--duration`` seconds. First up to
   12 of its URLs are fetched once, two at a time (each must answer 200; their times are printed
   as the cold times), then ``--warmup`` seconds of load (skipped for pages slower than half a
   second: the fetches warmed them), then the kept pages' remaining lives scattered as in steady
   state (``spread_kept_pages``: else the warm-up's pages would all be rendered again at once, or
   not at all during the run), then the measured run; then the server answers what was
   still queued (restarted if that takes over a minute). Before each class a 3-second run of the
   trivial view is its yardstick: a class's "×trivial" is against the runs just before and
   after it, as the shared machine's load changes. The listing's page with and without the
   counter run in alternating slices (``--slices``). The classes: the trivial view (first and
   last, to see the machine's drift), the list
   page (a rotation of 17 first pages with single filters, combinations and other sorts, and
   page 500 of 3 lists by the keyset cursor its "Next" link carries), the search page (8
   searches: very common words, rare words, a word in no posting, a phrase with an exclusion,
   a word with a filter), the listing's page of the 200 newest open listings (the list's first
   ten pages, where candidates click) with the view counter counting every request (each
   request a new visitor: an address of its own in X-Forwarded-For, the server trusting one
   proxy, and one of 64 browsers' User-Agents, none a crawler), the same pages with the counter
   off, the listing's page cold (10,000 open listings drawn from all, each asked for about
   once: rendered afresh; no target of its own), the RSS and Atom feeds, and the sitemap (4
   connections: crawlers fetch a few at a time). A class whose pages are slower than the run
   allows (fewer than 50 answers) is rated by the server's answers from the run's start until its
   queue emptied (gunicorn's access log); its latencies print as "> the run". Meanwhile this
   process refreshes the counts snapshot, as the Celery worker does in production, between
   measured runs (``SnapshotBeat``).
3b. The crowd (issue 19), on a second gunicorn started like the first but with kept pages off
   (``PAGE_CACHE_SECONDS=0``), after the first one's counter check: the list page, the search
   page and the listing's page, each over ``CROWD_ADDRESSES`` (20,000; ``--smoke`` 200) distinct
   addresses drawn at random (seeded) from the whole space: 1 to 3 filters among all the list
   has (workplace, employment type, seniority, practice area, company type, country, place:
   city, region or both, posted age, salary floor), a sort, and sometimes page 2 by the keyset
   cursor of a random posting; searches of the data set's own words (its areas' words, its
   titles' words, its named skills: one or two words, a phrase from a title, a word with an
   exclusion), sometimes with a filter; open listings whose ids are drawn over the whole id
   range (each request a new visitor, as the hot listing class). wrk reads the addresses from a
   file and walks them in order, so none is asked for twice; each class runs between two runs
   of the trivial view, as above. How many answers were rendered fresh is read from the
   server: its access log gives the answers to the class's addresses (fewer than wrk counted:
   the script did not load, and the smoke run fails) and how many were the first request of
   their address; Redis must hold no kept page after each run (else the smoke run fails). For
   the hot classes, the kept pages whose render began during the run are their fresh renders.
4. The SQL of each page class: the statements a request runs, captured in-process by Django's
   test client against the same database with an empty cache of its own and no kept pages (so
   the capped counts, the choice counts and similar jobs' queries run, as on a first visit),
   the counts snapshot there as beat keeps it; and, apart, the statement that counts the
   snapshot (beat's, every 45 s). Each by ``EXPLAIN (ANALYZE, BUFFERS, TIMING OFF)``: once,
   then round after round, the quickest first, up to ``--sql-runs`` runs while
   ``--sql-seconds`` last. A statement's time is planning plus execution; the p95 of its runs
   is reported, for the slowest statement of each class and each kind of statement (capped
   count, page rows, choice counts, ranked search rows, ...).
5. Each worker's resident memory (VmRSS) after each phase, topped up with trivial requests to
   20,000 requests served when the phases served fewer.
6. The view counter: the listing's pages answered 200 (gunicorn's access log) against the growth
   of those listings' view_count after a flush of the buffered counts (``counters.flush``).

The machine is shared: compare ratios within one run. How many cores other processes took is
printed per page class; the figures of a run on a busy machine are lower than the machine can
do. Scratch files (wrk scripts, gunicorn's logs, collected static files) go to a temporary
directory, kept with ``--keep``. The server is stopped at the end, on Ctrl-C, on SIGTERM and on
errors.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import scale_data  # noqa: E402  (needs the repository on the path)

GUNICORN = [sys.executable, "-m", "gunicorn"]  # the gunicorn of the interpreter running this
REDIS_OWNER_KEY = "bench-scale:owner"

# Issue 19's targets: the crowd's classes, kept pages off, against the trivial view.
CROWD_TARGETS = {"crowd_list": 0.12, "crowd_search": 0.08, "crowd_detail": 0.30}
# Issue 7's targets (they apply to the hot classes).
LIST_SQL_MS = 5.0
SEARCH_SQL_MS = 50.0
RATIO_TARGETS = {"list": 0.35, "search": 0.20, "detail": 0.50}
P99_MS = 150.0
COUNTER_COST = 0.15
RSS_MB = 150.0
MIN_REQUESTS_FOR_RSS = 20_000
LOAD_SECONDS = 180.0
# A page class whose URLs take longer than this (median of their first fetch) gets no wrk
# warm-up: fetching each URL once warmed it, and the server would take long to catch up.
SLOW_MS = 500.0
# --smoke: a data set this small, built afresh in a database of its own.
SMOKE_POSTINGS = 1_000
SMOKE_COMPANIES = 40
SMOKE_DATABASE = "jobboard_bench_smoke"
# Fewer answers than this in a run: the page class's rate is taken from the server's log.
FEW_ANSWERS = 50
# A short run of the trivial view before each page class: its yardstick on a shared machine.
PROBE_SECONDS = 3.0
# How long the server may take to answer what was still queued when wrk stopped; past it the
# server is restarted (a page whose requests time out could keep it busy for many minutes).
DRAIN_SECONDS = 60.0

# Browsers, 64 of them, none a crawler. Under load each request is a visitor of its own: an
# address of its own (X-Forwarded-For, the server trusting one proxy as behind a load
# balancer), with one of these browsers, as many people share a few browser versions.
_BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36",
)
USER_AGENTS = [template.format(v=110 + n) for n in range(16) for template in _BROWSERS]
CHECKER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 check"


def log(message: str = "") -> None:
    print(message, flush=True)


# --- Settings of the run ------------------------------------------------------------------------


@dataclass
class Run:
    """Where things are and what the server runs with."""

    args: argparse.Namespace
    workdir: Path
    dsn: str
    admin_dsn: str
    redis_url: str
    env: dict[str, str]
    started: float = field(default_factory=time.monotonic)
    problems: list[str] = field(default_factory=list)  # what a smoke run fails on

    @classmethod
    def from_args(cls, args: argparse.Namespace, workdir: Path) -> Run:
        base = args.postgres.rstrip("/")
        dsn = f"{base}/{args.database}"
        redis_url = f"{args.redis.rstrip('/')}/{args.redis_db}"
        # The caller's own settings (DEBUG, FACET_CACHE_SECONDS, ...) are not passed on: the
        # server runs on the project's defaults plus these.
        kept = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
        env = {
            **{name: os.environ[name] for name in kept if name in os.environ},
            "DJANGO_SETTINGS_MODULE": "bench.settings_bench",
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": dsn,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "STATIC_ROOT": str(workdir / "static"),
            "VAR_DIR": str(workdir / "var"),
            # As behind a load balancer: the visitor's address is the last X-Forwarded-For hop.
            "TRUSTED_PROXY_COUNT": "1",
            "LOG_LEVEL": "WARNING",
        }
        if args.smoke:  # hashed names as in production, without compressing every file
            env["STATICFILES_STORAGE"] = (
                "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
            )
        return cls(args, workdir, dsn, f"{base}/postgres", redis_url, env)


# --- The data set -------------------------------------------------------------------------------


@dataclass
class Dataset:
    facts: dict[str, Any]
    load: dict[str, Any]
    built_now: bool


def ensure_dataset(run: Run) -> Dataset:
    """Reuse the data set when it is there and current, else build it."""
    args = run.args
    migrations = scale_data.migrations_digest()
    spec = scale_data.DatasetSpec(
        args.postings, args.companies, args.seed, int(time.time()), small_pools=args.small_pools
    )
    reason, facts, load = scale_data.existing(run.dsn, spec, migrations)
    if reason is None and not args.rebuild:
        log(
            f"Data set: reusing {args.database} ({args.postings:,} postings, built "
            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(facts['built_at']))} in "
            f"{load['seconds']:.0f} s; --rebuild builds it again)"
        )
        if facts["migrations"] != migrations:
            # New migrations: applied to the million rows, as production would apply them.
            started = time.monotonic()
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                cwd=ROOT,
                env=run.env,
                check=True,
            )
            scale_data.record_migrations(run.dsn, migrations)
            log(
                f"  the project's migrations changed: manage.py migrate took "
                f"{time.monotonic() - started:.1f} s on it"
            )
        # Earlier runs' counter flushes updated the newest listings: VACUUM them as autovacuum
        # (off on this server) would have since, so their pages are all-visible again.
        started = time.monotonic()
        visible = scale_data.vacuum(run.dsn)
        log(
            f"  VACUUM: {time.monotonic() - started:.1f} s, {visible:.1%} of the postings' pages"
            " all-visible"
        )
        return Dataset(facts, load, built_now=False)
    log(f"Data set: building it, since {'--rebuild' if reason is None else reason}.")
    builder = scale_data.Builder(
        spec, run.dsn, run.admin_dsn, args.database, run.env, args.toast_compression
    )
    report = builder.build(migrations)
    return Dataset(report.facts, report.load(), built_now=True)


def describe_dataset(dataset: Dataset) -> None:
    facts = dataset.facts
    statuses = ", ".join(f"{status} {n:,}" for status, n in facts["statuses"].items())
    matches = ", ".join(f"{words} ≈{n:,}" for words, n in facts["matches"].items())
    low, high = facts["description_chars"][1:]
    log(
        f"  ≈{facts['open']:,} open; {statuses} (a 2 % sample)\n"
        f"  descriptions {low}-{high} characters (mean {facts['description_chars'][0]}), "
        f"salaries on {facts['with_salary_percent']:.0f} %\n"
        f"  postings matching: {matches}\n"
        f"  sizes: {', '.join(f'{k} {v}' for k, v in facts['sizes'].items())}"
    )


# --- Django in this process (URLs, SQL capture, counter check) ----------------------------------


def setup_django(run: Run) -> None:
    for name in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"):
        os.environ[name] = run.env[name]
    for name in ("ALLOWED_HOSTS", "STATIC_ROOT", "VAR_DIR", "TRUSTED_PROXY_COUNT"):
        os.environ[name] = run.env[name]
    import django

    django.setup()


def check_redis(run: Run) -> None:
    """Flush the benchmark's Redis database, refusing one that holds keys it did not write."""
    import redis

    client = redis.Redis.from_url(run.redis_url)
    if client.dbsize() and not client.exists(REDIS_OWNER_KEY):
        raise SystemExit(
            f"Redis database {run.args.redis_db} holds keys this benchmark did not write; "
            "choose another with --redis-db (it is flushed at every run)."
        )
    client.flushdb()
    client.set(REDIS_OWNER_KEY, "bench/scale.py")


# --- The URLs of each page class ----------------------------------------------------------------

LIST_FILTERS = (
    "",
    "workplace=remote",
    "employment_type=contract",
    "seniority=senior",
    "practice_area=engineering",
    "practice_area=litigation",
    "country=DE",
    "location=Texas",
    "company_type=startup",
    "posted=7",
    "salary_min=120000",
    "include_closed=1",
    "workplace=remote&seniority=senior&practice_area=engineering",
    "country=US&employment_type=full_time&salary_min=150000",
    "location=London&practice_area=data&posted=30",
    "sort=deadline",
    "sort=views",
)
# Page 500 (rows 9,981 to 10,000) by the cursor its "Next" link carries.
DEEP_FILTERS = ("", "workplace=remote", "practice_area=engineering&seniority=senior")
SEARCHES = (  # the first two also have their facet counts' SQL measured: a big and a small one
    "q=developer",
    "q=haskell",
    "q=engineer",
    "q=kubernetes",
    "q=cobol",
    "q=zzyzx",
    'q="data engineer" -senior',
    "q=developer&workplace=remote",
)
FEEDS = (
    "/jobs/feed/rss/",
    "/jobs/feed/rss/?q=python",
    "/jobs/feed/rss/?workplace=remote&practice_area=engineering",
    "/jobs/feed/atom/?country=DE",
)
# The listing's page: the listings on the list's first ten pages (newest first), where
# candidates click, and apart a cold run over 10,000 listings drawn from all of them.
HOT_LISTINGS = 200
# Issue 7's classes: a rotation of a few addresses each, served mostly from kept pages.
HOT = "hot (repeated addresses)"
WIDE = 50  # the issue 7 table's label column
COLD_LISTINGS = 10_000


def query_url(query: str) -> str:
    """/jobs/?... with the query's values percent-encoded."""
    return "/jobs/" + ("?" + urllib.parse.urlencode(urllib.parse.parse_qsl(query)) if query else "")


def deep_page(query: str, page: int = 500) -> str:
    """Page 500 of a list (or its last page, on a smaller data set), with the keyset cursor that
    the page before's "Next" link carries."""
    from django.http import QueryDict

    from postings.browse import encode_cursor
    from postings.filters import PostingFilter
    from postings.models import Posting

    per_page = settings_per_page()
    filterset = PostingFilter(QueryDict(query), queryset=Posting.objects.all())
    ordered = filterset.qs.order_by("-posted_at", "-pk").values_list("posted_at", "pk")
    page = min(page, max(2, ordered[: (page - 1) * per_page].count() // per_page))
    posted_at, pk = ordered[(page - 1) * per_page - 1]
    extra = urllib.parse.urlencode({"page": page, "after": encode_cursor(posted_at, pk)})
    return query_url(query) + ("&" if query else "?") + extra


def settings_per_page() -> int:
    from django.conf import settings

    return settings.POSTINGS_PER_PAGE


def detail_paths(seed: int, count: int, avoid: Sequence[str] = ()) -> list[str]:
    """Pages of ``count`` open listings, drawn at random (seeded) from all ids, but those of
    ``avoid``: the hot pages are not cold, and a visitor who checked one of them already
    would not be counted again (on a small data set the draw often meets them)."""
    from postings.models import Posting

    total = Posting.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    rng = random.Random(f"{seed}:detail")
    wanted = rng.sample(range(1, total + 1), min(total, count * 2))
    found = dict(Posting.objects.open().filter(pk__in=wanted).values_list("pk", "slug"))
    paths = (f"/jobs/{pk}-{found[pk]}/" for pk in wanted if pk in found)
    avoided = set(avoid)
    return [path for path in paths if path not in avoided][:count]


def newest_paths(count: int) -> list[str]:
    """Pages of the ``count`` newest open listings: the list's first pages."""
    from postings.models import Posting

    newest = Posting.objects.open().order_by("-posted_at", "-pk").values_list("pk", "slug")
    return [f"/jobs/{pk}-{slug}/" for pk, slug in newest[:count]]


def sitemap_paths() -> list[str]:
    from postings.models import Posting
    from postings.sitemaps import PostingSitemap

    pages = max(1, math.ceil(Posting.objects.open().count() / PostingSitemap.limit))
    return ["/sitemap.xml", *(f"/sitemap-postings.xml?p={p}" for p in range(1, pages + 1))]


# --- The crowd (issue 19): random distinct addresses, rendered fresh ----------------------------

# Addresses per crowd class: far more than a run asks for, so that each request is the first one
# of its address (and no cache of whole pages could serve them).
CROWD_ADDRESSES = 20_000
SMOKE_CROWD_ADDRESSES = 200
SALARY_FLOORS = range(20_000, 250_001, 5_000)
LIST_SORTS = ("newest", "deadline", "views")


def _choice_values(field_name: str) -> list[str]:
    from postings.models import Company, Posting

    fields = {
        "workplace": Posting.Workplace,
        "employment_type": Posting.EmploymentType,
        "seniority": Posting.Seniority,
        "practice_area": Posting.PracticeArea,
        "company_type": Company.CompanyType,
    }
    return list(fields[field_name].values)


class CrowdFilters:
    """Draws random filter combinations over every filter the list supports, with values from
    the data set's own places (and, now and then, a country no listing is in)."""

    MULTI = ("workplace", "employment_type", "seniority", "practice_area", "company_type")
    ALL = (*MULTI, "country", "location", "posted", "salary_min")

    def __init__(self) -> None:
        from django_countries import countries

        from postings.factories import PLACES

        self.choices = {name: _choice_values(name) for name in self.MULTI}
        self.countries = sorted({country for _c, _r, country in PLACES})
        self.all_countries = [code for code, _name in countries]
        cities = sorted({city for city, _r, _c in PLACES if city})
        regions = sorted({region for _c, region, _co in PLACES if region})
        both = sorted({f"{city}, {region}" for city, region, _c in PLACES if city and region})
        self.places = [*cities, *regions, *both]

    def draw(self, rng: random.Random, how_many: int) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = []
        for name in rng.sample(self.ALL, how_many):
            if name in self.MULTI:  # a tick box or two of the same filter
                values = self.choices[name]
                params += [(name, v) for v in rng.sample(values, rng.choice((1, 1, 1, 2)))]
            elif name == "country":
                pool = self.countries if rng.random() < 0.85 else self.all_countries
                params.append((name, rng.choice(pool)))
            elif name == "location":
                params.append((name, rng.choice(self.places)))
            elif name == "posted":
                params.append((name, rng.choice(("1", "7", "30"))))
            else:
                params.append((name, str(rng.choice(SALARY_FLOORS))))
        return params


def _distinct(count: int, make: Callable[[], str], limit: int = 50) -> list[str]:
    """``count`` distinct addresses from ``make`` (fewer if the space runs dry)."""
    found: dict[str, None] = {}
    tries = 0
    while len(found) < count and tries < count * limit:
        found.setdefault(make())
        tries += 1
    return list(found)


def _cursors(rng: random.Random, count: int) -> list[tuple[Any, Any, int]]:
    """(posted_at, view_count, id) of random postings: where a "Next" link's cursor points."""
    from postings.models import Posting

    total = Posting.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    wanted = rng.sample(range(1, total + 1), min(total, count))
    return list(Posting.objects.filter(pk__in=wanted).values_list("posted_at", "view_count", "pk"))


def crowd_list_paths(seed: int, count: int) -> list[str]:
    """List pages of random filter combinations: 1 to 3 filters of every kind the list has, a
    sort, and a page 2 now and then, by the keyset cursor of a random posting (as a "Next"
    link carries: the rows after it)."""
    from postings.browse import encode_cursor

    rng = random.Random(f"{seed}:crowd-list")
    filters = CrowdFilters()
    cursors = _cursors(rng, max(50, count // 10))

    def make() -> str:
        params = filters.draw(rng, rng.choice((1, 2, 3)))
        sort = rng.choice(LIST_SORTS)
        if sort != "newest":
            params.append(("sort", sort))
        if sort != "deadline" and cursors and rng.random() < 0.2:
            posted_at, views, pk = rng.choice(cursors)
            value = posted_at if sort == "newest" else views
            params += [("page", "2"), ("after", encode_cursor(value, pk))]
        return "/jobs/?" + urllib.parse.urlencode(params)

    return _distinct(count, make)


def search_words() -> tuple[list[str], list[str]]:
    """The data set's job words (its areas' words, its titles' words, its named skills) and
    two-word phrases from its titles."""
    from postings.factories import ROLES

    words = {w for area in scale_data.AREA_WORDS.values() for w in area}
    words |= set(scale_data.RARE_NAMED) | set(scale_data.EXTRA_GENERAL)
    phrases = set()
    for roles in ROLES.values():
        for role in roles:
            parts = [p for p in re.findall(r"[a-z]+", role.lower()) if len(p) > 2]
            words |= set(parts)
            phrases |= {f"{a} {b}" for a, b in itertools.pairwise(parts)}
    return sorted(words), sorted(phrases)


def crowd_search_paths(seed: int, count: int) -> list[str]:
    """Searches of the data set's own words: one or two words, sometimes a phrase or an
    exclusion, sometimes with a filter or sorted by date."""
    rng = random.Random(f"{seed}:crowd-search")
    words, phrases = search_words()
    filters = CrowdFilters()

    def make() -> str:
        shape = rng.random()
        if shape < 0.5:
            q = rng.choice(words)
        elif shape < 0.75:
            q = " ".join(rng.sample(words, 2))
        elif shape < 0.9:
            q = f'"{rng.choice(phrases)}"'
        else:
            q = f"{rng.choice(words)} -{rng.choice(words)}"
        params = [("q", q)]
        if rng.random() < 0.3:
            params += filters.draw(rng, 1)
        if rng.random() < 0.1:
            params.append(("sort", "newest"))
        return "/jobs/?" + urllib.parse.urlencode(params)

    return _distinct(count, make)


def crowd_detail_paths(seed: int, count: int, avoid: Sequence[str] = ()) -> list[str]:
    """Pages of ``count`` open listings, ids drawn at random over the whole id range; those of
    ``avoid`` (the hot and cold classes' listings) only when there are too few others, as on a
    small data set."""
    from postings.models import Posting

    total = Posting.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    rng = random.Random(f"{seed}:crowd-detail")
    avoided = set(avoid)
    ids = list(range(1, total + 1))
    rng.shuffle(ids)
    found: list[str] = []
    spare: list[str] = []
    for start in range(0, len(ids), count):
        chunk = ids[start : start + count]
        slugs = dict(Posting.objects.open().filter(pk__in=chunk).values_list("pk", "slug"))
        for path in (f"/jobs/{pk}-{slugs[pk]}/" for pk in chunk if pk in slugs):
            (spare if path in avoided else found).append(path)
        if len(found) >= count:
            break
    return (found + spare)[:count]


@dataclass
class PageClass:
    key: str
    label: str
    paths: list[str]
    counting: bool = False  # one (listing, browser) pair per request, so each one counts
    connections: int = 0  # at most this many wrk connections (0: --connections)
    sql_paths: list[str] = field(default_factory=list)  # the URLs whose SQL is measured
    # A crowd class (issue 19): each request an address not asked for before, read by wrk from a
    # file from ``cursor`` on, on a server with kept pages off.
    crowd: bool = False
    cursor: int = 0  # the next address not yet requested


def page_classes(run: Run) -> list[PageClass]:
    log("URLs: finding page 500's cursors, open listings and sitemap pages ...")
    lists = [query_url(q) for q in LIST_FILTERS] + [deep_page(q) for q in DEEP_FILTERS]
    searches = [query_url(q) for q in SEARCHES]
    details = newest_paths(HOT_LISTINGS)
    cold = detail_paths(run.args.seed, COLD_LISTINGS, avoid=details)
    sitemaps = sitemap_paths()
    count = SMOKE_CROWD_ADDRESSES if run.args.smoke else CROWD_ADDRESSES
    log(f"URLs: {count:,} random addresses for each crowd class ...")
    seed = run.args.seed
    return [
        PageClass("trivial", "trivial view", ["/bench/trivial/"]),
        PageClass("crowd_list", "list page", crowd_list_paths(seed, count), crowd=True),
        PageClass("crowd_search", "search page", crowd_search_paths(seed, count), crowd=True),
        PageClass(
            "crowd_detail",
            "listing page",
            crowd_detail_paths(seed, count, avoid=[*details, *cold]),
            counting=True,
            crowd=True,
        ),
        PageClass("list", f"list page, {HOT}", lists, sql_paths=lists),
        PageClass("search", f"search page, {HOT}", searches, sql_paths=searches),
        PageClass("detail", f"listing page, counter on, {HOT}", details, counting=True),
        PageClass(
            "nocount",
            f"listing page, counter off, {HOT}",
            [f"/bench/nocount{path}" for path in details],
        ),
        # No target of its own: what a listing costs when no one has asked for it lately.
        PageClass("cold", "listing page, cold (10,000)", cold, counting=True, sql_paths=cold[:5]),
        PageClass("feed", "RSS/Atom feed", list(FEEDS), sql_paths=list(FEEDS)),
        # A crawler fetches a few sitemap pages at a time, not 32.
        PageClass(
            "sitemap", "sitemap (4 connections)", sitemaps, sql_paths=sitemaps[:2], connections=4
        ),
    ]


# --- The server ---------------------------------------------------------------------------------


class Server:
    """gunicorn with the project's WSGI application, in a process group of its own."""

    def __init__(self, run: Run, name: str = "", settings: dict[str, str] | None = None) -> None:
        self.run = run
        self.env = {**run.env, **(settings or {})}
        self.port = free_port()
        suffix = f"-{name}" if name else ""
        self.access_log = run.workdir / f"access{suffix}.log"
        self.error_log = run.workdir / f"gunicorn{suffix}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.peak_rss = 0.0  # of workers before a restart

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            *GUNICORN,
            "jobboard.wsgi",
            "--workers",
            str(self.run.args.workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--access-logfile",
            str(self.access_log),
            "--error-logfile",
            str(self.error_log),
        ]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.error_log}")
            with contextlib.suppress(OSError):
                if fetch(self.base + "/bench/trivial/")[0] == 200 and len(self.workers()) >= 1:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer within 60 s; see {self.error_log}")

    def wait_idle(self, limit: float = DRAIN_SECONDS) -> None:
        """Wait until the requests queued by a load run are answered (a trivial view is fast);
        past ``limit`` seconds, restart gunicorn instead: the rest of the queue is dropped."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                status, seconds, _size = fetch(self.base + "/bench/trivial/", timeout=limit)
                if status == 200 and seconds < 0.5:
                    return
            time.sleep(0.5)
        log(f"  ! the server was still busy {limit:.0f} s after the run: gunicorn restarted")
        self.peak_rss = max([self.peak_rss, *(r for r, _h in self.memory().values())])
        self.restarts += 1
        self.stop()
        self.cancel_orphans()
        self.start()

    def cancel_orphans(self) -> None:
        """End the database sessions the stopped workers left (a facet count can go on for
        seconds after its worker is gone); only the benchmark's own database is touched."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    def answered(self, page: PageClass) -> int:
        """Successful answers (2xx, 3xx) written so far to the page class's URLs (gunicorn's
        access log: '... "GET /path?query HTTP/1.1" 200 1234 ...')."""
        paths = {path.split("?", 1)[0] for path in page.paths}
        pattern = re.compile(r'"GET ([^ ?"]+)[^ "]* HTTP/1\.[01]" ([23])\d\d ')
        count = 0
        with contextlib.suppress(FileNotFoundError), self.access_log.open() as lines:
            for line in lines:
                match = pattern.search(line)
                count += bool(match and match[1] in paths)
        return count

    def requested(self) -> list[tuple[str, int]]:
        """(request target with its query, status) of every request in the access log so far."""
        pattern = re.compile(r'"GET ([^ "]+) HTTP/1\.[01]" (\d{3}) ')
        found = []
        with contextlib.suppress(FileNotFoundError), self.access_log.open() as lines:
            for line in lines:
                match = pattern.search(line)
                if match:
                    found.append((match[1], int(match[2])))
        return found

    def workers(self) -> list[int]:
        """The worker processes' pids (children of gunicorn's master)."""
        if self.process is None:
            return []
        master = self.process.pid
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == master:
                    pids.append(int(stat.parent.name))
        return sorted(pids)

    def memory(self) -> dict[int, tuple[float, float]]:
        """pid -> (VmRSS, VmHWM) in MB, per worker."""
        found = {}
        for pid in self.workers():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                rss = int(re.search(r"VmRSS:\s+(\d+)", status)[1]) / 1024  # type: ignore[index]
                hwm = int(re.search(r"VmHWM:\s+(\d+)", status)[1]) / 1024  # type: ignore[index]
                found[pid] = (rss, hwm)
        return found

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str, agent: str = CHECKER_AGENT, timeout: float = 60) -> tuple[int, float, int]:
    """(status, seconds, bytes) of one GET, redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    started = time.perf_counter()
    try:
        with opener.open(
            urllib.request.Request(url, headers={"User-Agent": agent}), timeout=timeout
        ) as r:
            body = r.read()
            return r.status, time.perf_counter() - started, len(body)
    except urllib.error.HTTPError as exc:
        return exc.code, time.perf_counter() - started, 0
    except (OSError, http.client.HTTPException):  # e.g. a worker killed by its timeout
        return 0, time.perf_counter() - started, 0


# --- Load with wrk ------------------------------------------------------------------------------

LUA = """
-- Generated by bench/scale.py: rotate through the paths; with counting on, every request is
-- a visitor of its own: one (listing, address) pair per request.
local paths = {%(paths)s}
local agents = {%(agents)s}
local counting = %(counting)s
local threads = %(threads)d
local next_tid = 0
local offset = 0
local counter = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

function init(args)
  offset = tonumber(args[1] or "0")
end

function request()
  local m = counter * threads + tid
  counter = counter + 1
  local path = paths[(m %% #paths) + 1]
  if not counting then
    return wrk.format("GET", path, {["User-Agent"] = agents[1]})
  end
  -- Each round of the paths a new visitor, each run (offset) new ones again: an address of
  -- their own, 10.<run>.<round>, and one of the browsers.
  local round = math.floor(m / #paths)
  local address = string.format(
    "10.%%d.%%d.%%d", offset %% 256, math.floor(round / 256) %% 256, round %% 256)
  return wrk.format("GET", path, {
    ["User-Agent"] = agents[(round %% #agents) + 1], ["X-Forwarded-For"] = address})
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""


# A crowd class: the addresses are read from a file, one a line, and walked in order, thread by
# thread, so that no address is asked for twice; with counting on, each request is a visitor of
# its own (an address of its own in X-Forwarded-For). wrk's Lua is LuaJIT (Lua 5.1).
CROWD_LUA = """
-- Generated by bench/scale.py: each request the next address of the file.
local file = %(file)s
local agents = {%(agents)s}
local counting = %(counting)s
local threads = %(threads)d
local next_tid = 0
local paths = {}
local offset = 0
local started = {}
counter = 0  -- global: done() reads each thread's

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  started[#started + 1] = thread
end

-- How far into the file any thread went: the next run starts past it (threads that made
-- fewer requests leave a few addresses behind them unasked).
function issued()
  local far = 0
  for _, thread in ipairs(started) do
    local made = thread:get("counter")
    if made > 0 then
      far = math.max(far, (made - 1) * threads + thread:get("tid") + 1)
    end
  end
  return far
end

function init(args)
  offset = tonumber(args[1] or "0")
  for line in io.lines(file) do
    if #line > 0 then
      paths[#paths + 1] = line
    end
  end
  if #paths == 0 then
    error("no addresses in " .. file)
  end
end

function request()
  local m = counter * threads + tid
  counter = counter + 1
  local path = paths[(m %% #paths) + 1]
  if not counting then
    return wrk.format("GET", path, {["User-Agent"] = agents[1]})
  end
  local address = string.format(
    "10.%%d.%%d.%%d", (128 + offset) %% 256, math.floor(m / 256) %% 256, m %% 256)
  return wrk.format("GET", path, {
    ["User-Agent"] = agents[(m %% #agents) + 1], ["X-Forwarded-For"] = address})
end
""" + LUA[LUA.index("function done") :].replace(
    '\'BENCH {"requests": %%d, ', '\'BENCH {"issued": %%d, "requests": %%d, '
).replace("summary.requests, summary.duration", "issued(), summary.requests, summary.duration")


def lua_string(text: str) -> str:
    if not text.isascii():
        raise ValueError(f"not ASCII: {text!r}")
    return json.dumps(text)


@dataclass
class Load:
    """One wrk run's figures."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    # When wrk saw too few answers (a page slower than the run allows), the rate is the
    # server's: the answers it wrote from the run's start until its queue was empty.
    served_rate: float | None = None
    answered: int = 0  # those answers
    bad_status: int = 0  # answers neither 2xx nor 3xx (counted in errors too)
    # Rendered fresh, by the server's evidence (``rendered_fresh``): the answers in its access
    # log, how many were rendered rather than served kept, and how many were the first request
    # of their address.
    logged: int = 0
    fresh: int = 0
    first: int = 0
    kept_pages: int = 0  # pages kept in Redis after the run (a crowd class: must be none)

    @property
    def rate(self) -> float:
        if self.served_rate is not None:
            return self.served_rate
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def saturated(self) -> bool:
        return self.served_rate is not None


def wrk(run: Run, server: Server, page: PageClass, seconds: float, offset: int) -> Load:
    """Load the page class with wrk for ``seconds``; ``offset`` picks its visitors."""
    args = run.args
    script = run.workdir / f"{page.key}.lua"
    values = {
        "agents": ",".join(lua_string(a) for a in USER_AGENTS),
        "counting": "true" if page.counting else "false",
        "threads": args.threads,
    }
    if page.crowd:  # the addresses not asked for yet first
        addresses = run.workdir / f"{page.key}.txt"
        rest = page.paths[page.cursor :] + page.paths[: page.cursor]
        addresses.write_text("".join(f"{path}\n" for path in rest))
        script.write_text(CROWD_LUA % {**values, "file": lua_string(str(addresses))})
    else:
        script.write_text(LUA % {**values, "paths": ",".join(lua_string(p) for p in page.paths)})
    connections = min(args.connections, page.connections or args.connections)
    command = [
        "wrk",
        f"-t{min(args.threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        server.base,
        "--",
        str(offset),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures:\n{result.stdout}\n{result.stderr}")
    figures = json.loads(line[6:])
    errors = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
    if page.crowd:  # past every address asked for
        page.cursor = (page.cursor + figures["issued"]) % len(page.paths)
    return Load(
        requests=figures["requests"] - figures["status"],  # answered 2xx or 3xx
        seconds=figures["duration_us"] / 1e6,
        errors=errors,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        bad_status=figures["status"],
    )


@dataclass
class Measured:
    page: PageClass
    load: Load
    first_fetch_ms: list[float]  # each URL's first answer (cold caches), ms
    rss_mb: float  # the biggest worker's VmRSS after the phase
    requests_so_far: int
    others: float  # cores other processes on the machine took meanwhile
    trivial: float = 0.0  # the trivial view's rate next to this class's run (probes around it)
    probe: int = 0  # how many probes had run before this class's run
    client_answers: int = 0  # successful answers the client saw (checks, warm-up, runs)
    sql: SqlFigures | None = None


def check_urls(
    server: Server, page: PageClass, workers: int, limit: int = 12
) -> tuple[list[float], list[str]]:
    """Fetch each URL once (up to ``limit``, as many at once as there are workers): their times
    (ms), and those that did not answer 200."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        answers = list(
            pool.map(lambda path: fetch(server.base + path, timeout=300), page.paths[:limit])
        )
    if page.crowd:
        page.cursor = max(page.cursor, min(limit, len(page.paths)))
    failed = [
        f"{path} answered {status or 'nothing (connection closed)'} after {seconds:.1f} s"
        for path, (status, seconds, _size) in zip(page.paths, answers, strict=False)
        if status != 200
    ]
    return [seconds * 1000 for _status, seconds, _size in answers], failed


def worker_rss(server: Server) -> float:
    return max((rss for rss, _hwm in server.memory().values()), default=0.0)


def measure(
    run: Run,
    server: Server,
    page: PageClass,
    seconds: float,
    offset: int,
    meter: CpuMeter,
    few: float = FEW_ANSWERS,
) -> tuple[Load, float, float]:
    """One measured wrk run, then the wait for the server's queue to empty: the figures, the
    cores other processes took meanwhile, and the biggest worker's RSS. With fewer than
    ``few`` answers the rate is the server's (see ``Load.served_rate``)."""
    with MEASURING:
        meter.others()
        before = server.requested()
        lines, started, since = server.answered(page), time.monotonic(), time.time()
        load = wrk(run, server, page, seconds, offset)
        others = meter.others()
    rss = worker_rss(server)
    server.wait_idle()  # the requests still queued when wrk stopped
    if load.requests < few:
        load.answered = server.answered(page) - lines
        load.served_rate = load.answered / (time.monotonic() - started)
    rendered_fresh(run, server, page, load, before, since)
    return load, others, max(rss, worker_rss(server))


def rendered_fresh(
    run: Run,
    server: Server,
    page: PageClass,
    load: Load,
    before: list[tuple[str, int]],
    since: float,
) -> None:
    """How many of the run's answers were rendered fresh, from the server's side. The access
    log gives the answers to the class's addresses and how many were the first request of their
    address. Kept pages are the only cache of whole pages: a page rendered and kept has its
    render's start in Redis (``r``), so the kept pages whose render started during the run are
    the fresh renders of a class with kept pages on (a few more may have been rendered but not
    kept); with kept pages off there must be none in Redis at all, and every answer is fresh."""
    import redis
    from django.conf import settings

    addresses = set(page.paths)
    asked = {target for target, _status in before}
    new = server.requested()[len(before) :]
    answers = [t for t, status in new if t in addresses and 200 <= status < 400]
    load.logged = len(answers)
    load.first = len(set(answers) - asked)
    client = redis.Redis.from_url(run.redis_url)
    keys = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:page:*", count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hget(key, "r")
    starts = [float(r) for r in pipe.execute() if r is not None]
    client.close()
    load.kept_pages = len(keys)
    if server.env.get("PAGE_CACHE_SECONDS") == "0":
        load.fresh = load.logged
        if keys:
            run.problems.append(f"{page.label}: {len(keys)} pages kept with kept pages off")
    else:
        load.fresh = min(load.logged, sum(since <= r <= time.time() for r in starts))
    if page.crowd and load.logged and not load.first:
        run.problems.append(f"{page.label}: none of its random addresses was new")
    if page.crowd and load.requests and load.logged < load.requests:
        # wrk counted answers the server did not give to the class's addresses: its script
        # did not load (wrk then asks for "/") or asked for other addresses.
        run.problems.append(
            f"{page.label}: wrk counted {load.requests:,} answers, the server gave "
            f"{load.logged:,} to its addresses"
        )


def combine(loads: list[Load]) -> Load:
    """Slices of one page class's load as one: rates summed over time, p50 the slices' median,
    p99 their worst."""
    total = Load(
        requests=sum(x.requests for x in loads),
        seconds=sum(x.seconds for x in loads),
        errors=sum(x.errors for x in loads),
        p50_ms=statistics.median(x.p50_ms for x in loads),
        p99_ms=max(x.p99_ms for x in loads),
        bad_status=sum(x.bad_status for x in loads),
        logged=sum(x.logged for x in loads),
        fresh=sum(x.fresh for x in loads),
        first=sum(x.first for x in loads),
        kept_pages=max(x.kept_pages for x in loads),
    )
    if any(x.saturated for x in loads):
        walls = [x.answered / x.rate if x.saturated and x.rate else x.seconds for x in loads]
        total.answered = sum(x.answered if x.saturated else x.requests for x in loads)
        total.served_rate = total.answered / sum(walls)
    return total


def load_phases(run: Run, server: Server, pages: list[PageClass]) -> list[Measured]:
    """Every page class under load, the trivial view first and again last. The listing's page
    with and without the counter are measured in alternating slices (``--slices``), so that
    the machine's changing load weighs on both alike."""
    args = run.args
    meter = CpuMeter(lambda: [os.getpid(), *([server.process.pid] if server.process else [])])
    groups: list[list[PageClass]] = []
    for page in [*pages, pages[0]]:
        if page.key == "nocount" and groups and groups[-1][0].key == "detail":
            groups[-1].append(page)
        else:
            groups.append([page])
    measured: list[Measured] = []
    served = 0
    probes: list[float] = []  # the trivial view's rate before each group and after the last
    for number, group in enumerate(groups):
        if group[0].key != "trivial":
            with MEASURING:
                probe = wrk(run, server, pages[0], args.probe_seconds, offset=0)
            probes.append(probe.rate)
            served += probe.requests
            server.wait_idle()
        firsts: dict[str, list[float]] = {}
        seen: dict[str, int] = {}  # answers the client saw: checks, warm-up and runs
        for page in group:
            first, failed = check_urls(server, page, run.args.workers)
            served += len(first)
            firsts[page.key] = first
            seen[page.key] = len(first) - len(failed)
            for failure in failed:
                log(f"  ! {page.label}: {failure}")
                run.problems.append(f"{page.label}: {failure}")
            # Else the checks were warm-up enough (or, with --warmup 0, none is wanted).
            if args.warmup > 0 and statistics.median(first) < SLOW_MS:
                # Visitors of their own (offset): a warm-up's visitors are counted too.
                warm = wrk(run, server, page, args.warmup, offset=1000 + number).requests
                served += warm
                seen[page.key] += warm
                server.wait_idle()
        if group[0].key != "trivial":
            spread_kept_pages(run)
        slices = args.slices if len(group) > 1 else 1
        runs: dict[str, list[tuple[Load, float, float]]] = {page.key: [] for page in group}
        for n in range(slices):
            for page in group:  # a fresh browser for each slice: every request counts
                offset = 1 + number * slices + n  # new visitors for each group and slice
                if slices > 1:
                    # Its pages that expired while the other class ran are rendered again
                    # first, as continuous traffic would have rendered them one by one.
                    lead_in = wrk(run, server, page, 1, offset=2000 + number * slices + n)
                    served += lead_in.requests
                    seen[page.key] += lead_in.requests
                    server.wait_idle()
                runs[page.key].append(
                    measure(
                        run,
                        server,
                        page,
                        args.duration / slices,
                        offset,
                        meter,
                        few=FEW_ANSWERS / slices,
                    )
                )
        for page in group:
            load = combine([x[0] for x in runs[page.key]])
            others = statistics.mean(x[1] for x in runs[page.key])
            rss = max(x[2] for x in runs[page.key])
            served += load.answered if load.saturated else load.requests
            if not (load.answered if load.saturated else load.requests):
                run.problems.append(f"{page.label}: no answer in its measured run")
            if load.bad_status:
                run.problems.append(f"{page.label}: {load.bad_status} answers not 2xx or 3xx")
            first = firsts[page.key]
            measured.append(
                Measured(
                    page,
                    load,
                    first,
                    rss,
                    served,
                    others,
                    probe=len(probes),
                    client_answers=seen[page.key] + load.requests,
                )
            )
            tag = " (again)" if number == len(groups) - 1 else ""
            sliced = f", {slices} slices" if slices > 1 else ""
            log(
                f"  {page.label + tag:28s} {load.rate:7,.1f} req/s  p50 {latency(load, 'p50'):>6s} "
                f"ms  p99 {latency(load, 'p99'):>6s} ms  errors {load.errors}  RSS {rss:5.1f} MB  "
                f"others {others:.2f} cores{sliced}  (1st fetch of its URLs: median "
                f"{statistics.median(first):.0f} ms, max {max(first):.0f} ms)"
            )
    if served < args.rss_requests:  # top up with the trivial view, then read the memory
        rate = max(measured[-1].load.rate, 50.0)
        extra = wrk(run, server, pages[0], (args.rss_requests - served) / rate + 2, offset=0)
        server.wait_idle()
        served += extra.requests
        log(f"  (then {extra.requests:,} more trivial requests: {served:,} served in all)")
    last = measured[-1]
    last.requests_so_far = served
    last.rss_mb = worker_rss(server)
    # Each class's yardstick: the probes just before and after it (the last trivial run after
    # the last class); the trivial runs are their own.
    probes.append(last.load.rate)
    for m in measured:
        if m.page.key == "trivial":
            m.trivial = m.load.rate
        else:
            m.trivial = statistics.mean(probes[m.probe - 1 : m.probe + 1])
    return measured


def spread_kept_pages(run: Run) -> None:
    """Kept pages as they are in steady state: rendered at scattered moments, not all in the
    warm-up. Each kept page's remaining life is drawn anew, uniform between none and what it has
    left (a page seen at a random moment of its keep), so pages expire and are rendered again
    during the measured runs at the rate a server under steady load renders them, instead of
    after them, all at once."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(run.redis_url)
    pipe = client.pipeline(transaction=False)
    keys = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:page:*", count=1000))
    for key, left in zip(keys, [client.pttl(key) for key in keys], strict=True):
        if left > 1:
            pipe.pexpire(key, random.randint(1, left))
    pipe.execute()
    client.close()


def forget_kept_pages(run: Run) -> None:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(run.redis_url)
    for key in client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:page:*", count=1000):
        client.delete(key)
    client.close()


# Held by a measured wrk run (a slice or a probe) and by a snapshot refresh: neither starts
# while the other runs.
MEASURING = threading.Lock()


class SnapshotBeat:
    """Beat's counts snapshot (``postings.tasks.refresh_facet_counts``), run here on its
    schedule while the server is under load, as a Celery worker does in production: without
    it, a web worker would find the snapshot stale every minute and count it itself. A refresh
    (3 s of PostgreSQL at a million) waits for the measured run in progress and runs between
    runs: landing in one slice of the listing's page and not the other, it decided the
    counter's cost. So that the wait never lets the snapshot grow older than
    ``FACET_CACHE_SECONDS`` (a web worker would count it), it refreshes every 60 % of beat's
    interval."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="snapshot-beat", daemon=True)

    def __enter__(self) -> SnapshotBeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        from django.conf import settings
        from django.db import connection

        from postings.tasks import refresh_facet_counts

        interval = settings.CELERY_BEAT_SCHEDULE["refresh-facet-counts"]["schedule"] * 0.6
        try:
            while not self.stopped.is_set():
                with MEASURING:
                    refresh_facet_counts()
                self.stopped.wait(interval)
        finally:
            connection.close()


# --- The view counter ---------------------------------------------------------------------------


@dataclass
class ServerFacts:
    """What the server's workers looked like at the end of the load phases."""

    memory: dict[int, tuple[float, float]]  # pid -> (VmRSS, VmHWM) MB
    restarts: int  # gunicorn restarted to drop a queue it could not drain
    peak_rss: float  # MB, of workers before a restart


@dataclass
class CounterCheck:
    seen: int  # answers 200 the client saw (wrk stops before its last requests are answered)
    served: int  # the listing's pages answered 200 (access log)
    counted: int  # growth of view_count after the flush
    pending_after_flush: int

    @property
    def lost(self) -> int:
        return self.served - self.counted


def views_total(pks: Sequence[int]) -> int:
    from django.db.models import Sum

    from postings.models import Posting

    return Posting.objects.filter(pk__in=pks).aggregate(n=Sum("view_count"))["n"] or 0


def detail_pks(page: PageClass) -> list[int]:
    return [int(re.match(r"/jobs/(\d+)-", path)[1]) for path in page.paths]  # type: ignore[index]


def check_counter(server: Server, pks: list[int], before: int, seen: int) -> CounterCheck:
    """Flush the buffered counts and compare the growth with the pages served."""
    from postings import counters

    counters.flush("views")
    pending = sum(counters.pending_counts(pks, "views").values())
    counted = views_total(pks) - before
    pattern = re.compile(r'"GET (/jobs/\d+-[^/ ]+/) HTTP/1\.[01]" 200 ')
    served = sum(1 for line in server.access_log.open() if pattern.search(line))
    return CounterCheck(seen, served, counted, pending)


# --- SQL of each page class ---------------------------------------------------------------------


@dataclass
class Statement:
    sql: str
    kind: str
    page: str  # a URL that runs it
    runs: list[float] = field(default_factory=list)  # planning + execution, ms
    rows: int = 0  # rows the top node returned
    scanned: int = 0  # most rows any node produced (what an exact count counts)

    @property
    def p95(self) -> float:
        ordered = sorted(self.runs)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class SqlFigures:
    statements: list[Statement]
    queries_per_request: dict[str, int]

    def slowest(self, kinds: set[str] | None = None) -> Statement | None:
        chosen = [s for s in self.statements if kinds is None or s.kind in kinds]
        return max(chosen, key=lambda s: s.p95, default=None)


def kind_of(sql: str) -> str:
    """What a statement is for, from its text."""
    text = sql.upper()
    if "NUMNODE(" in text:
        return "search terms check"
    if "TS_RANK" in text:
        return "ranked search rows"
    if "COUNT(" in text and ("GROUP BY" in text or "FILTER (WHERE" in text):
        return "facet counts"
    if "CELL_OPEN" in text:  # facets.count_few: the few matching jobs' cells
        return "choice counts"
    if "COUNT(" in text:
        return "capped count" if "LIMIT" in text else "exact count"
    if "MIN(" in text and "MAX(" in text:  # the sitemap's pages, by id range
        return "id bounds"
    if "MAX(" in text:
        return "latest change"
    if "UNION ALL" in text:
        return "similar jobs"
    if "VIEWCOUNTFLUSH" in text:
        return "counter batches"
    if re.search(r'"POSTINGS_POSTING"\."ID" = \d+', text):
        return "the listing"
    if re.search(r'"POSTINGS_POSTING"\."ID" IN \(SELECT', text):  # browse.IdsFirst
        return "page rows"
    if re.search(r'"POSTINGS_POSTING"\."ID" IN \(', text):
        return "cards by id"
    if "ORDER BY" in text and "LIMIT" in text:
        return "page rows"
    if re.search(r'"POSTINGS_POSTING"\."ID" > \d+', text):  # a sitemap page's id range
        return "id range rows"
    return "other"


def capture(paths: Sequence[str]) -> dict[str, list[str]]:
    """path -> the SQL a GET of it runs when nothing of it is cached yet: a cache of its own,
    empty, and no kept pages, so the capped counts, the choice counts and similar jobs' queries
    run. Only the counts snapshot is there already, as beat keeps it (it is measured apart:
    ``snapshot_sql``)."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from postings import facets, similar

    caches = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "bench-sql-capture",
        },
    }
    found = {}
    # One snapshot for the whole capture, never stale meanwhile.
    with override_settings(CACHES=caches, PAGE_CACHE_SECONDS=0, FACET_CACHE_SECONDS=10**6):
        from django.core.cache import cache

        snapshot = facets.build_cube()
        client = Client(HTTP_USER_AGENT=CHECKER_AGENT)
        for path in paths:
            cache.clear()
            similar.forget_kept_groups()  # kept in Redis, not in the cache
            cache.set(facets.STAMP_KEY, snapshot.stamp)
            cache.set(facets.CUBE_KEY, snapshot)
            with CaptureQueriesContext(connection) as queries:
                response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code} in-process")
            found[path] = [q["sql"] for q in queries.captured_queries]
    return found


def snapshot_sql() -> str:
    """The statement that counts the snapshot behind the list's counts (postings/facets.py)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from postings import facets

    with CaptureQueriesContext(connection) as queries:
        facets.build_cube()
    # The GROUP BY (then the names' capitals, a small query of its own).
    (statement,) = [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"]]
    return statement


def explain(cursor: Any, statement: Statement) -> None:
    """Run the statement once under EXPLAIN ANALYZE: its time, rows, and most rows any node made."""
    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) " + statement.sql)
    (plan,) = cursor.fetchone()
    top = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
    statement.runs.append(top["Planning Time"] + top["Execution Time"])
    statement.rows = top["Plan"].get("Actual Rows", 0)

    def most(node: dict[str, Any]) -> int:
        rows = int(node.get("Actual Rows", 0) * node.get("Actual Loops", 1))
        return max([rows, *(most(child) for child in node.get("Plans", []))])

    statement.scanned = max(statement.scanned, most(top["Plan"]))


def measure_sql(run: Run, pages: list[PageClass]) -> dict[str, SqlFigures]:
    """Each page class's statements, EXPLAIN ANALYZEd: each once, then round after round (the
    cheapest first) up to --sql-runs runs each while --sql-seconds last."""
    from django.db import connection

    per_class: dict[str, SqlFigures] = {}
    everything: list[Statement] = []
    for page in pages:
        if not page.sql_paths:
            continue
        statements: dict[str, Statement] = {}
        counts = {}
        for path, queries in capture(page.sql_paths).items():
            counts[path] = len(queries)  # what a request runs when nothing is cached
            for sql in queries:
                # A statement sent with its values bound by the server (the listing page's
                # prepared ones, postings/rows.py) is logged without its text: not measured here.
                if sql and sql.lstrip("( ").upper().startswith(("SELECT", "WITH")):
                    statements.setdefault(sql, Statement(sql, kind_of(sql), path))
        per_class[page.key] = SqlFigures(list(statements.values()), counts)
        everything.extend(statements.values())
    # Beat's, not a page's: the counts snapshot, every 45 s (a page counts it when beat is late).
    snapshot = Statement(snapshot_sql(), "counts snapshot", "(beat: postings.tasks)")
    per_class["snapshot"] = SqlFigures([snapshot], {})
    everything.append(snapshot)
    started = time.monotonic()
    deadline = started + run.args.sql_seconds
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '120s'")
        for statement in everything:
            explain(cursor, statement)
        while time.monotonic() < deadline:
            pending = [s for s in everything if len(s.runs) < run.args.sql_runs]
            if not pending:
                break
            for statement in sorted(pending, key=lambda s: s.runs[0]):
                if time.monotonic() >= deadline:
                    break
                explain(cursor, statement)
        cursor.execute("RESET statement_timeout")
    runs = sorted(len(s.runs) for s in everything)
    log(
        f"  {len(everything)} statements, {runs[0]} to {runs[-1]} runs each "
        f"(median {statistics.median(runs):.0f}), {time.monotonic() - started:.0f} s"
    )
    return per_class


# --- The report ---------------------------------------------------------------------------------


def latency(load: Load, which: str) -> str:
    """A percentile of wrk's in ms, or ">10000" when too few requests finished within the run
    (their latencies are longer than the run)."""
    if load.requests < FEW_ANSWERS:
        return f">{load.seconds * 1000:.0f}"
    return ms(load.p50_ms if which == "p50" else load.p99_ms)


def fresh_of(m: Measured) -> str:
    return "" if m.page.key == "trivial" else f"{m.load.fresh:,}/{m.load.logged:,}"


def ratio(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.4f}"


def ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def print_report(
    run: Run,
    dataset: Dataset,
    measured: list[Measured],
    sql: dict[str, SqlFigures],
    counter: CounterCheck | None,
    server: ServerFacts,
) -> None:
    args = run.args
    trivial_runs = [m for m in measured if m.page.key == "trivial"]
    by_key = {m.page.key: m for m in measured if m.page.key != "trivial"}
    log()
    log(
        f"Issue 7 at {args.postings:,} postings: gunicorn {args.workers} sync workers, "
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s on loopback"
    )
    header = (
        f"{'page class':{WIDE}s} {'req/s':>8s} {'×trivial':>9s} {'p50 ms':>8s} {'p99 ms':>8s} "
        f"{'SQL p95 ms':>11s}  {'worker RSS MB':>13s}  {'fresh/answers':>15s}  slowest statement"
    )
    log(header)
    log("-" * len(header))
    rows = [trivial_runs[0], *by_key.values(), trivial_runs[-1]] if trivial_runs else []
    for m in rows:
        figures = sql.get(m.page.key)
        slowest = figures.slowest() if figures else None
        label = m.page.label if m is not trivial_runs[-1] else "trivial view (again)"
        rate = f"{m.load.rate:,.0f}" if m.load.rate >= 10 else f"{m.load.rate:.1f}"
        log(
            f"{label:{WIDE}s} {rate + ('*' if m.load.saturated else ' '):>9s}"
            f"{ratio(m.load.rate / m.trivial):>9s} {latency(m.load, 'p50'):>8s} "
            f"{latency(m.load, 'p99'):>8s} {ms(slowest.p95) if slowest else '-':>11s}  "
            f"{m.rss_mb:13.1f}  {fresh_of(m):>15s}  {slowest.kind if slowest else ''}"
        )
    log(
        "(fresh/answers: of the answers in the access log to the class's addresses during its "
        "measured run, those rendered rather than served kept: the kept pages whose render began "
        "during the run)"
    )
    if any(m.load.saturated for m in measured):
        log(
            f"(* fewer than {FEW_ANSWERS} answers within the run: the rate is the server's, "
            "from its access log until its queue emptied; latencies are longer than the run)"
        )
    probes = sorted({round(m.trivial) for m in measured if m.page.key != "trivial"})
    log(
        f"(×trivial: against the trivial view's {args.probe_seconds:g}-second runs just before and "
        f"after each class, {probes[0] if probes else 0:,} to {probes[-1] if probes else 0:,} "
        f"req/s; "
        f"errors: {sum(m.load.errors for m in measured)}; requests served: "
        f"{measured[-1].requests_so_far if measured else 0:,})"
    )
    log_sql_details(sql)
    log()
    log("Targets (issue 7)" + (": not judged in a smoke run" if args.smoke else ""))
    results = targets(run, dataset, measured, sql, counter, server)
    for name, passed, detail in results:
        verdict = "----" if args.smoke else "PASS" if passed else "FAIL"
        log(f"  {verdict}  {name}: {detail}")
    load = dataset.load
    log()
    log(
        f"Load of the data set: {load['seconds']:.0f} s "
        f"({'this run' if dataset.built_now else 'when it was built'}; the build used "
        f"{load['cpu']:.0f} CPU-s, other processes took {load['others']:.0f} CPU-s meanwhile)"
    )
    others = statistics.mean(m.others for m in measured) if measured else 0.0
    log(
        f"Total run time: {time.monotonic() - run.started:.0f} s. Other processes on the machine "
        f"took {others:.2f} of its {os.cpu_count()} cores on average during the load phases "
        "(PostgreSQL's short-lived parallel workers counted among them)."
    )


def print_crowd_report(run: Run, measured: list[Measured], server: ServerFacts) -> None:
    """Issue 19's headline: the crowd's classes, each between two runs of the trivial view, and
    its targets."""
    args = run.args
    trivial_runs = [m for m in measured if m.page.key == "trivial"]
    rows = [trivial_runs[0], *(m for m in measured if m.page.key != "trivial"), trivial_runs[-1]]
    addresses = max(len(m.page.paths) for m in measured)
    log()
    log(
        f"Issue 19 at {args.postings:,} postings, the crowd ({addresses:,} random addresses a "
        f"class, kept pages off): gunicorn {args.workers} sync workers, wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration:g}s on loopback"
    )
    header = (
        f"{'page class':28s} {'req/s':>8s} {'×trivial':>9s} {'p50 ms':>8s} {'p99 ms':>8s} "
        f"{'worker RSS MB':>13s}  rendered fresh (answers in the access log; first of address)"
    )
    log(header)
    log("-" * len(header))
    for m in rows:
        label = m.page.label if m is not trivial_runs[-1] else "trivial view (again)"
        rate = f"{m.load.rate:,.0f}" if m.load.rate >= 10 else f"{m.load.rate:.1f}"
        fresh = (
            f"{m.load.fresh:,} of {m.load.logged:,} ({m.load.first:,} first of their address)"
            if m.page.crowd
            else ""
        )
        log(
            f"{label:28s} {rate + ('*' if m.load.saturated else ' '):>9s}"
            f"{ratio(m.load.rate / m.trivial):>9s} {latency(m.load, 'p50'):>8s} "
            f"{latency(m.load, 'p99'):>8s} {m.rss_mb:13.1f}  {fresh}"
        )
    kept = max((m.load.kept_pages for m in measured if m.page.crowd), default=0)
    log(
        f"(kept pages off: the server ran with PAGE_CACHE_SECONDS=0 and Redis held {kept} kept "
        "pages after each run, so every answer was rendered fresh; ×trivial: against the "
        f"trivial view's {args.probe_seconds:g}-second runs just before and after each class; "
        f"requests served: {measured[-1].requests_so_far:,})"
    )
    log()
    log("Targets (issue 19, the crowd)" + (": not judged in a smoke run" if args.smoke else ""))
    for name, passed, detail in crowd_targets(measured, server):
        verdict = "----" if args.smoke else "PASS" if passed else "FAIL"
        log(f"  {verdict}  {name}: {detail}")


def crowd_targets(measured: list[Measured], server: ServerFacts) -> list[tuple[str, bool, str]]:
    by_key = {m.page.key: m for m in measured if m.page.crowd}
    results: list[tuple[str, bool, str]] = []
    for key, target in CROWD_TARGETS.items():
        if key in by_key:
            m = by_key[key]
            share = m.load.rate / m.trivial
            results.append(
                (
                    f"{m.page.label}, random addresses ≥ {target:.2f} of the trivial view",
                    share >= target,
                    f"{ratio(share)} ({m.load.rate:,.1f} / {m.trivial:,.0f} req/s)",
                )
            )
    for key in CROWD_TARGETS:
        if key in by_key:
            load = by_key[key].load
            p99 = load.p99_ms if load.requests >= FEW_ANSWERS else math.inf
            results.append(
                (
                    f"{by_key[key].page.label}, random addresses p99 ≤ {P99_MS:g} ms",
                    p99 <= P99_MS,
                    f"{latency(load, 'p99')} ms",
                )
            )
    served = measured[-1].requests_so_far if measured else 0
    peak = max([server.peak_rss, *(m.rss_mb for m in measured)])
    results.append(
        (
            f"a web worker's RSS ≤ {RSS_MB:g} MB after {MIN_REQUESTS_FOR_RSS:,} requests",
            peak <= RSS_MB and served >= MIN_REQUESTS_FOR_RSS,
            f"{peak:.1f} MB at most after a phase, {served:,} requests served"
            + (f", gunicorn restarted {server.restarts} times" if server.restarts else ""),
        )
    )
    return results


def log_sql_details(sql: dict[str, SqlFigures]) -> None:
    log()
    log("SQL p95 by page class and statement kind (ms; EXPLAIN ANALYZE, planning + execution)")
    for key, figures in sql.items():
        kinds: dict[str, list[Statement]] = {}
        for statement in figures.statements:
            kinds.setdefault(statement.kind, []).append(statement)
        parts = []
        for kind, statements in sorted(kinds.items(), key=lambda kv: -max(s.p95 for s in kv[1])):
            worst = max(statements, key=lambda s: s.p95)
            parts.append(f"{kind} {ms(worst.p95)} (×{len(statements)})")
        queries = sorted(set(figures.queries_per_request.values()))
        log(f"  {key:8s} queries per request {'/'.join(map(str, queries))}: " + "; ".join(parts))
        for statement in sorted(figures.statements, key=lambda s: -s.p95)[:3]:
            log(
                f"           {ms(statement.p95):>7s} ms  {statement.kind:18s} "
                f"{len(statement.runs):2d} runs, {statement.scanned:>9,} rows at most  "
                f"{statement.page}"
            )


def targets(
    run: Run,
    dataset: Dataset,
    measured: list[Measured],
    sql: dict[str, SqlFigures],
    counter: CounterCheck | None,
    server: ServerFacts,
) -> list[tuple[str, bool, str]]:
    by_key = {m.page.key: m for m in measured if m.page.key != "trivial"}
    results: list[tuple[str, bool, str]] = []
    if "list" in sql:
        worst = sql["list"].slowest()
        no_facets = sql["list"].slowest({k for k in _kinds(sql["list"]) if k != "facet counts"})
        assert worst is not None
        results.append(
            (
                f"1a list page SQL p95 ≤ {LIST_SQL_MS:g} ms (filters, combinations, pages 1, 500)",
                worst.p95 <= LIST_SQL_MS,
                f"{ms(worst.p95)} ms, {worst.kind} of {worst.page}"
                + (
                    f"; without facet counts {ms(no_facets.p95)} ms ({no_facets.kind})"
                    if no_facets
                    else ""
                ),
            )
        )
    if "search" in sql:
        worst = sql["search"].slowest()
        assert worst is not None
        results.append(
            (
                f"1b search SQL p95 ≤ {SEARCH_SQL_MS:g} ms (rare, common, phrase with exclusion)",
                worst.p95 <= SEARCH_SQL_MS,
                f"{ms(worst.p95)} ms, {worst.kind} of {worst.page}",
            )
        )
    exact = [
        (key, s)
        for key, figures in sql.items()
        for s in figures.statements
        if s.kind in ("exact count", "facet counts") and s.scanned > 1001
    ]
    results.append(
        (
            "1c no exact COUNT over large result sets on a public page",
            not exact,
            "; ".join(
                f"{key}: {s.kind} over {s.scanned:,} rows ({ms(s.p95)} ms)"
                for key, s in sorted(exact, key=lambda ks: -ks[1].scanned)[:4]
            )
            or "all counts capped",
        )
    )
    for key, target in RATIO_TARGETS.items():
        if key in by_key:
            m = by_key[key]
            share = m.load.rate / m.trivial
            results.append(
                (
                    f"2 {m.page.label} ≥ {target:.2f} of the trivial view",
                    share >= target,
                    f"{ratio(share)} ({m.load.rate:,.1f} / {m.trivial:,.0f} req/s)",
                )
            )
    for key in ("list", "search", "detail"):
        if key in by_key:
            load = by_key[key].load
            p99 = load.p99_ms if load.requests >= FEW_ANSWERS else math.inf
            results.append(
                (
                    f"2 {by_key[key].page.label} p99 ≤ {P99_MS:g} ms",
                    p99 <= P99_MS,
                    f"{latency(load, 'p99')} ms",
                )
            )
    if "detail" in by_key and "nocount" in by_key:
        on, off = by_key["detail"].load.rate, by_key["nocount"].load.rate
        cost = 1 - on / off if off else 0.0
        results.append(
            (
                f"3a the view counter costs ≤ {COUNTER_COST:.0%} of the listing page's throughput",
                cost <= COUNTER_COST,
                f"{cost:.0%} ({on:,.0f} with, {off:,.0f} req/s without)",
            )
        )
    if counter is not None:
        results.append(
            (
                "3b the view counter loses nothing",
                counter.lost == 0 and counter.pending_after_flush == 0,
                f"{counter.served:,} pages answered 200 (access log; wrk and the checks saw "
                f"{counter.seen:,}), {counter.counted:,} counted after the flush, "
                f"{counter.pending_after_flush} still buffered",
            )
        )
    served = measured[-1].requests_so_far if measured else 0
    peak = max([server.peak_rss, *(m.rss_mb for m in measured)])
    hwm = max((h for _r, h in server.memory.values()), default=0.0)
    restarts = server.restarts
    results.append(
        (
            f"4 a web worker's RSS ≤ {RSS_MB:g} MB after {MIN_REQUESTS_FOR_RSS:,} requests",
            peak <= RSS_MB and served >= MIN_REQUESTS_FOR_RSS,
            f"{peak:.1f} MB at most after a phase (peak VmHWM {hwm:.1f} MB), "
            f"{served:,} requests served"
            + (f", gunicorn restarted {restarts} times" if restarts else ""),
        )
    )
    load = dataset.load["seconds"]
    results.append(
        (
            f"5 the data set loads in ≤ {LOAD_SECONDS / 60:g} minutes",
            load <= LOAD_SECONDS,
            f"{load:.0f} s" + ("" if dataset.built_now else " (when it was built)"),
        )
    )
    if sql:
        counts = {k: sorted(set(f.queries_per_request.values())) for k, f in sql.items()}
        results.append(
            (
                "6 queries per page constant in the number of postings",
                True,
                "asserted by the tests; here "
                + ", ".join(f"{k} {'/'.join(map(str, v))}" for k, v in counts.items()),
            )
        )
    return results


def _kinds(figures: SqlFigures) -> set[str]:
    return {s.kind for s in figures.statements}


# --- How busy the shared machine was -------------------------------------------------------------


def _proc_cpu() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, name, CPU seconds including its reaped children)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = stat.read_text()
            name = text[text.index("(") + 1 : text.rindex(")")]
            fields = text.rsplit(")", 1)[1].split()
            cpu = sum(int(f) for f in fields[11:15]) / scale_data.CLOCK_TICKS
            table[int(stat.parent.name)] = (int(fields[1]), name, cpu)
    return table


class CpuMeter:
    """The CPU the benchmark's own processes used (this one and its wrk, gunicorn and its
    workers, the database sessions of the benchmark's database, Redis) and what every other
    process on the machine took, between two samples."""

    def __init__(self, roots: Callable[[], list[int]]) -> None:
        self.roots = roots
        self.last = self._sample()

    def _ours(self, table: dict[int, tuple[int, str, float]]) -> dict[int, float]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            pids = {pid for (pid,) in cursor.fetchall()}
        pids |= {pid for pid, (_parent, name, _cpu) in table.items() if name == "redis-server"}
        stack = self.roots()
        while stack:
            pid = stack.pop()
            pids.add(pid)
            stack.extend(child for child, (parent, _n, _c) in table.items() if parent == pid)
        return {pid: table[pid][2] for pid in pids if pid in table}

    def _sample(self) -> tuple[float, float, dict[int, float]]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = (sum(fields) - fields[3] - fields[4]) / scale_data.CLOCK_TICKS
        return time.monotonic(), busy, self._ours(_proc_cpu())

    def others(self) -> float:
        """Cores other processes took on average since the last call."""
        then, busy_then, ours_then = self.last
        now, busy, ours = self.last = self._sample()
        used = sum(cpu - ours_then.get(pid, 0.0) for pid, cpu in ours.items())
        return max(0.0, (busy - busy_then - used) / max(now - then, 1e-9))


# --- Main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data set")
    data.add_argument("--postings", type=int, default=1_000_000, help="postings in the data set")
    data.add_argument("--companies", type=int, default=20_000, help="companies in the data set")
    data.add_argument("--seed", type=int, default=7, help="seed of the data set")
    data.add_argument("--rebuild", action="store_true", help="build the data set even if current")
    data.add_argument(
        "--toast-compression",
        choices=("", "pglz", "lz4"),
        default="",
        help="default_toast_compression while loading ('' = the server's, as in production)",
    )
    where = parser.add_argument_group("services")
    where.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server")
    where.add_argument(
        "--database", help="the benchmark's database (default jobboard_bench, --smoke: ..._smoke)"
    )
    where.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server")
    where.add_argument("--redis-db", type=int, default=9, help="Redis database (flushed)")
    load = parser.add_argument_group("load")
    load.add_argument("--duration", type=float, default=10, help="seconds of load per page class")
    load.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per page class")
    load.add_argument("--connections", type=int, default=32, help="wrk connections")
    load.add_argument("--threads", type=int, default=2, help="wrk threads")
    load.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    load.add_argument(
        "--slices",
        type=int,
        default=3,
        help="the listing's page with and without the counter: alternating runs of each",
    )
    load.add_argument("--skip-load", action="store_true", help="no server, no wrk")
    load.add_argument(
        "--only",
        default="",
        help="these page classes only, e.g. detail,nocount (keys: crowd_list crowd_search "
        "crowd_detail list search detail nocount cold feed sitemap); for trying a change, not "
        "for the figures",
    )
    sqlg = parser.add_argument_group("SQL")
    sqlg.add_argument("--sql-runs", type=int, default=20, help="EXPLAIN ANALYZE runs a statement")
    sqlg.add_argument(
        "--sql-seconds", type=float, default=60, help="time for the SQL runs (slow ones run fewer)"
    )
    sqlg.add_argument("--skip-sql", action="store_true", help="no EXPLAIN ANALYZE")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="does it run? 1,000 postings built afresh, 1-s runs; fails on errors, not on speed",
    )
    args = parser.parse_args(argv)
    args.probe_seconds = PROBE_SECONDS
    args.rss_requests = MIN_REQUESTS_FOR_RSS
    args.small_pools = args.smoke
    if args.smoke:
        args.postings, args.companies, args.rebuild = SMOKE_POSTINGS, SMOKE_COMPANIES, True
        args.duration, args.warmup, args.slices, args.probe_seconds = 1, 0, 2, 1
        args.sql_runs, args.sql_seconds, args.rss_requests = 1, 0, 0
    args.database = args.database or (SMOKE_DATABASE if args.smoke else "jobboard_bench")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.skip_load and shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    run = Run.from_args(args, workdir)
    server: Server | None = None

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        setup_django(run)  # the builder uses the app's own functions; no connection yet
        dataset = ensure_dataset(run)
        describe_dataset(dataset)
        check_redis(run)
        pages = page_classes(run)
        if args.only:  # the trivial view stays: the others' ratios are to it
            pages = [p for p in pages if p.key == "trivial" or p.key in args.only.split(",")]
        crowd = [p for p in pages if p.key == "trivial" or p.crowd]
        pages = [p for p in pages if not p.crowd]
        from postings.counters import is_bot

        if any(is_bot(agent) for agent in [*USER_AGENTS, CHECKER_AGENT]):
            raise SystemExit("a benchmark User-Agent looks like a crawler: it would not count")
        measured: list[Measured] = []
        crowd_measured: list[Measured] = []
        crowd_facts = ServerFacts({}, 0, 0.0)
        counter = None
        facts = ServerFacts({}, 0, 0.0)
        if not args.skip_load:
            subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                cwd=ROOT,
                env=run.env,
                check=True,
            )
            server = Server(run)
            server.start()
            log(f"Server: gunicorn, {args.workers} workers, {server.base} (logs in {workdir})")
            counted = [p for p in pages if p.counting]  # the listing's pages, hot and cold
            pks = sorted({pk for page in counted for pk in detail_pks(page)})
            before = views_total(pks)
            log("Load (each page class after its warm-up):")
            with SnapshotBeat():
                measured = load_phases(run, server, pages)
            facts = ServerFacts(server.memory(), server.restarts, server.peak_rss)
            seen = sum(m.client_answers for m in measured if m.page.counting)
            counter = check_counter(server, pks, before, seen)
            server.stop()
            if counter.lost or counter.pending_after_flush:
                run.problems.append(
                    f"the view counter: {counter.served:,} pages served, {counter.counted:,} "
                    f"counted, {counter.pending_after_flush} still buffered"
                )
            if facts.restarts:
                run.problems.append(f"gunicorn was restarted {facts.restarts} times")
            if len(crowd) > 1:  # after the counter's check: the crowd's visits count too
                forget_kept_pages(run)  # the hot classes' (any left is then a fault)
                server = Server(run, "crowd", {"PAGE_CACHE_SECONDS": "0"})
                server.start()
                log(f"Server with kept pages off (PAGE_CACHE_SECONDS=0): {server.base}")
                log("Load of the crowd (random addresses, each asked for once):")
                with SnapshotBeat():
                    crowd_measured = load_phases(run, server, crowd)
                crowd_facts = ServerFacts(server.memory(), server.restarts, server.peak_rss)
                server.stop()
                if crowd_facts.restarts:
                    run.problems.append(f"gunicorn was restarted {crowd_facts.restarts} times")
        sql: dict[str, SqlFigures] = {}
        if not args.skip_sql:
            log("SQL (EXPLAIN ANALYZE of each page class's statements):")
            sql = measure_sql(run, pages)
        if crowd_measured:
            print_crowd_report(run, crowd_measured, crowd_facts)
        print_report(run, dataset, measured, sql, counter, facts)
        if not args.smoke:
            return 0
        log()
        for problem in run.problems:
            log(f"SMOKE FAILED: {problem}")
        if not run.problems:
            log("smoke run: every step ran (figures of a run this small are not judged)")
        return 1 if run.problems else 0
    except KeyboardInterrupt:
        log("\nInterrupted.")
        return 130
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            log(f"Scratch files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
