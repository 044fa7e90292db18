"""Where a page's time goes: each page class of ``bench/scale.py`` requested in-process by Django's
test client against the benchmark's database, rendered fresh (kept pages off:
``PAGE_CACHE_SECONDS=0``), timed plain, then under cProfile.

Run it after ``bench/scale.py`` has built its data set (same options for where things are)::

    .venv/bin/python bench/profile_pages.py                 # the main page classes, 20 requests
    .venv/bin/python bench/profile_pages.py --requests 60 \
        trivial crowd_list crowd_search crowd_detail        # the baseline of docs/performance.md
    .venv/bin/python bench/profile_pages.py list search     # some of them
    .venv/bin/python bench/profile_pages.py --url '/jobs/?q=developer' --top 40
    .venv/bin/python bench/profile_pages.py --smoke         # does it still run? seconds

For each page class it prints the plain time per request (no profiler), the SQL time the queries
took (Django's own timing, which includes the round trip), and a breakdown of the profiled time
by what the code was doing: SQL, template rendering (and inside it the form widgets, the cards,
the template helpers of ``postings_tags``, ``url()``, ``|intcomma``), the facet counts and their
cache, the view counter, similar jobs, middleware, and the rest; then the functions with the most
time of their own and with the most cumulative time; at the end a table of every class: its
plain time, its SQL, and the shares of templates, SQL, the facet sums and middleware. cProfile
slows Python down about twice (SQL not), so the shares matter, not the profiled milliseconds.

The crowd classes (``crowd_list``, ``crowd_search``, ``crowd_detail``) draw their addresses as
``bench/scale.py``'s crowd does (random filter combinations, the data set's own words, open
listings from the whole id range), and every measured request asks for an address of its own:
a few addresses warm the process up (compiled templates, the connection), then each pass (plain,
templates timed, profiled) has addresses no request asked for before. The other classes are
``bench/scale.py``'s hot rotations: each URL is requested once first, so the caches of data
(not of pages: kept pages are off) are warm, as under load. Facet counts stay cached for the
whole profile (``--facets cold`` counts them in every request, as the first request of each
minute and filter combination does); the settings are otherwise the production ones of
``bench/scale.py`` (DEBUG off). Static files are collected into a scratch directory first, with
hashed names as in production (without WhiteNoise's compression, which changes no page): the
pages' ``static()`` needs their manifest.

``--smoke`` profiles every page class, 2 requests each, on ``bench/scale.py --smoke``'s data set
(``jobboard_bench_smoke``, built when it is not there): it exits non-zero when a page answers
anything but 200. The test suite runs it (tests/test_bench.py).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (label, (file suffix, function name, template node class or ""), ...): the cumulative time of
# the outermost calls, summed over the places given (a Django template's tag, or the Jinja2
# function or compiled template doing the same). Indented labels are parts of the one above;
# groups may overlap otherwise.
GROUPS: list[tuple[str, tuple[tuple[str, str, str], ...]]] = [
    (
        "the view (until its response is rendered)",
        (("django/core/handlers/base.py", "_get_response", ""),),
    ),
    ("  SQL (execute and fetch rows)", (("django/db/backends/utils.py", "_execute", ""),)),
    ("  querysets (SQL and model objects)", (("django/db/models/query.py", "__iter__", ""),)),
    ("  browse(): filters, count, rows, facets", (("postings/browse.py", "browse", ""),)),
    ("    facets_for (cache, or counting)", (("postings/browse.py", "facets_for", ""),)),
    (
        "      sums over the counts snapshot (numpy)",
        (("postings/facets.py", "snapshot_counts", ""),),
    ),
    ("      the list's count from the snapshot", (("postings/facets.py", "total", ""),)),
    ("      numpy isin (in both)", (("", "isin", ""),)),
    ("    PostingFilter (form, validation)", (("django_filters/filterset.py", "is_valid", ""),)),
    ("  view counter: count_once", (("postings/counters.py", "count_once", ""),)),
    ("  view counter: pending_counts", (("postings/counters.py", "pending_counts", ""),)),
    ("  listing page's Redis round trip", (("postings/counters.py", "count_and_read", ""),)),
    ("  the listing (plain SQL)", (("postings/listing_page.py", "listing", ""),)),
    ("  similar jobs", (("postings/similar.py", "similar_postings", ""),)),
    (
        "  structured data (job_posting_data)",
        (("postings/structured.py", "job_posting_data", ""),),
    ),
    ("  feed (Feed.__call__)", (("django/contrib/syndication/views.py", "__call__", ""),)),
    ("  sitemap view", (("django/contrib/sitemaps/views.py", "sitemap", ""),)),
    ("  template rendering", (("django/template/response.py", "rendered_content", ""),)),
    (
        "    {{ form.country }} and other widgets",
        (("django/forms/boundfield.py", "as_widget", ""),),
    ),
    (
        "    {% include %} (the cards)",
        (
            ("django/template/loader_tags.py", "render", "IncludeNode"),
            # Jinja2 compiles an included template to a function named after its file.
            ("templates/includes/_posting_card.html", "root", ""),
        ),
    ),
    ("    timestamp()", (("postings/templatetags/postings_tags.py", "timestamp", ""),)),
    ("    deadline_state()", (("postings/templatetags/postings_tags.py", "deadline_state", ""),)),
    ("    |salary", (("postings/templatetags/postings_tags.py", "salary", ""),)),
    (
        "    |intcomma",
        (
            ("django/contrib/humanize/templatetags/humanize.py", "intcomma", ""),
            ("jobboard/jinja2.py", "intcomma", ""),
        ),
    ),
    (
        "    url()",
        (
            ("django/template/defaulttags.py", "render", "URLNode"),
            ("jobboard/jinja2.py", "url", ""),
        ),
    ),
    ("    |json_ld", (("postings/templatetags/postings_tags.py", "json_ld", ""),)),
    (
        "    report_form()",
        (
            ("django/template/library.py", "render", "InclusionNode"),
            ("reporting/templatetags/reporting_tags.py", "report_form", ""),
        ),
    ),
    (
        "    the CSRF field",
        (
            ("django/template/defaulttags.py", "render", "CsrfTokenNode"),
            ("django/template/backends/utils.py", "csrf_input", ""),
        ),
    ),
]


def log(message: str = "") -> None:
    print(message, flush=True)


def setup(args: argparse.Namespace, workdir: Path) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings_bench",
            "STATIC_ROOT": str(workdir / "static"),
            "STATICFILES_STORAGE": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
            "DATABASE_URL": f"{args.postgres.rstrip('/')}/{args.database}",
            "REDIS_URL": f"{args.redis.rstrip('/')}/{args.redis_db}",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "testserver",
            "COUNTS_PER_ADDRESS_PER_DAY": "1000000000",
            "LOG_LEVEL": "WARNING",
            # Rendering is measured, not the kept pages: each request renders its page.
            "PAGE_CACHE_SECONDS": "0",
            # "cached": facet counts stay fresh for the whole profile (counted once, in the warm
            # pass); "cold": every request counts them, as the first one of each minute does.
            "FACET_CACHE_SECONDS": "86400" if args.facets == "cached" else "0",
        }
    )
    import django

    django.setup()
    command = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"]
    subprocess.run(command, cwd=ROOT, env=os.environ, check=True)


def ensure_smoke_dataset(args: argparse.Namespace, workdir: Path) -> None:
    """Build ``bench/scale.py --smoke``'s data set unless it is there and current."""
    from bench import scale

    scale_args = scale.parse_args(
        [
            *("--postings", str(scale.SMOKE_POSTINGS), "--companies", str(scale.SMOKE_COMPANIES)),
            *("--seed", str(args.seed), "--postgres", args.postgres, "--database", args.database),
            *("--redis", args.redis, "--redis-db", str(args.redis_db)),
        ]
    )
    scale_args.small_pools = True
    scale.ensure_dataset(scale.Run.from_args(scale_args, workdir))


CROWD = ("crowd_list", "crowd_search", "crowd_detail")
WARM = 5  # a crowd class's addresses requested before the measured passes


def urls_of(names: Sequence[str], seed: int, requests: int) -> dict[str, list[str]]:
    """Each page class's URLs, as bench/scale.py requests them (fewer listings); a crowd class
    gets an address of its own for every request of every pass (``profile``)."""
    from bench import scale

    found: dict[str, list[str]] = {}
    crowd = WARM + 3 * requests
    for name in names:
        if name == "crowd_list":
            found[name] = scale.crowd_list_paths(seed, crowd)
        elif name == "crowd_search":
            found[name] = scale.crowd_search_paths(seed, crowd)
        elif name == "crowd_detail":
            found[name] = scale.crowd_detail_paths(seed, crowd)
        elif name == "trivial":
            found[name] = ["/bench/trivial/"]
        elif name == "list":
            found[name] = [scale.query_url(q) for q in scale.LIST_FILTERS] + [
                scale.deep_page(q) for q in scale.DEEP_FILTERS
            ]
        elif name == "search":
            found[name] = [scale.query_url(q) for q in scale.SEARCHES]
        elif name == "detail":
            found[name] = scale.newest_paths(scale.HOT_LISTINGS)
        elif name == "cold":  # listings drawn from all: each one's first request
            found[name] = scale.detail_paths(seed, 200)
        elif name == "nocount":
            found[name] = [f"/bench/nocount{p}" for p in scale.newest_paths(scale.HOT_LISTINGS)]
        elif name == "feed":
            found[name] = list(scale.FEEDS)
        elif name == "sitemap":
            found[name] = scale.sitemap_paths()[:3]
        else:
            raise SystemExit(f"unknown page class {name!r}")
    return found


def cumulative(stats: pstats.Stats, file_suffix: str, function: str, node: str = "") -> float:
    """Cumulative seconds of the matching functions, not counting calls from within themselves."""
    total = 0.0
    entries = stats.stats  # type: ignore[attr-defined]
    for (file, _line, name), (_cc, _nc, _tt, ct, callers) in entries.items():
        if not file.endswith(file_suffix) or name != function:
            continue
        if node and not _is_node(file, _line, node):
            continue
        # Time entered from callers that are not this same function (recursion counted once).
        inner = sum(
            c[3] for (cfile, cline, cname), c in callers.items() if cfile == file and cname == name
        )
        total += ct - inner
    return total


def _is_node(file: str, line: int, node: str) -> bool:
    """Whether the function at file:line belongs to template node class ``node``."""
    try:
        source = Path(file).read_text().splitlines()
    except OSError:
        return False
    for text in reversed(source[: line - 1]):
        if text.startswith("class "):
            return text.startswith(f"class {node}")
    return False


class TemplateClock:
    """Wall time of every template render, by template (inclusive of what it includes), while
    installed: patches the ``render`` of Django's templates and of Django's Jinja2 backend in
    this process only. A Jinja2 ``{% include %}`` runs inside its page's render, so it is not
    timed apart (the profile's "the cards" line is); Django's form widgets still render their
    own templates and are."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def _timed(self, original: Any) -> Any:
        def render(template: Any, *args: Any, **kwargs: Any) -> Any:
            name = template.origin.template_name if template.origin else "(string)"
            started = time.perf_counter()
            try:
                return original(template, *args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
                self.calls[name] = self.calls.get(name, 0) + 1

        return render

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from django.template import base
        from django.template.backends import jinja2

        originals = [
            (base.Template, base.Template.render),
            (jinja2.Template, jinja2.Template.render),
        ]
        for cls, original in originals:
            cls.render = self._timed(original)  # type: ignore[method-assign]
        try:
            yield
        finally:
            for cls, original in originals:
                cls.render = original  # type: ignore[method-assign]


@dataclass
class Summary:
    """A page class's figures for the closing table."""

    name: str
    plain_ms: float
    median_ms: float
    sql_ms: float
    queries: float
    profiled_ms: float
    shares: dict[str, float]  # of the profiled time


def profile(
    paths: list[str], requests: int, top: int, *, crowd: bool = False
) -> tuple[list[str], Summary]:
    """Print where the time of these pages goes; returns the answers that were not 200 and the
    figures. A crowd class asks each address once: a few to warm up (templates compiled,
    connection open), then each pass (plain, templates timed, profiled) addresses of its own,
    so every measured request is its address's first."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.scale import CHECKER_AGENT

    client = Client(HTTP_USER_AGENT=CHECKER_AGENT)
    if crowd:
        warm = paths[:WARM]
        passes = [paths[WARM + n * requests : WARM + (n + 1) * requests] for n in range(3)]
        if not all(passes):
            raise SystemExit(f"too few addresses ({len(paths)}) for {requests} requests a pass")
    else:
        chosen = [paths[i % len(paths)] for i in range(requests)]
        warm, passes = list(dict.fromkeys(chosen)), [chosen] * 3
    for path in warm:  # warm: compiled templates, caches, connection
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
    plain, sql_ms, queries, statuses = [], [], [], []
    chosen = passes[0]
    for path in chosen:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            statuses.append((path, client.get(path).status_code))
            plain.append((time.perf_counter() - started) * 1000)
        sql_ms.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
        queries.append(len(captured.captured_queries))
    slowest = sorted(zip(plain, sql_ms, queries, chosen, strict=True), reverse=True)[:5]
    clock = TemplateClock()
    chosen = passes[1]
    with clock.installed():
        timed = []
        for path in chosen:
            started = time.perf_counter()
            statuses.append((path, client.get(path).status_code))
            timed.append((time.perf_counter() - started) * 1000)
    profiler = cProfile.Profile()
    chosen = passes[2]
    profiler.enable()
    for path in chosen:
        statuses.append((path, client.get(path).status_code))
    profiler.disable()
    stats = pstats.Stats(profiler)
    profiled = stats.total_tt * 1000 / len(chosen)  # type: ignore[attr-defined]
    log(
        f"  plain: {statistics.mean(plain):.1f} ms a request (median "
        f"{statistics.median(plain):.1f}, max {max(plain):.1f}); SQL {statistics.mean(sql_ms):.1f}"
        f" ms in {statistics.mean(queries):.1f} queries; under cProfile {profiled:.1f} ms"
    )
    if len(set(chosen)) > 1:  # where the slow requests are, for the crowd's random addresses
        log("  the slowest requests (plain):")
        for total, sql, count, path in slowest:
            log(f"    {total:7.1f} ms, SQL {sql:6.1f} ms in {count} queries  {path}")
    log(
        f"  templates (timed without the profiler, each including what it includes; "
        f"{statistics.mean(timed):.1f} ms a request):"
    )
    ranked_templates = sorted(clock.seconds.items(), key=lambda item: -item[1])
    for name, seconds in ranked_templates[:8]:
        calls = clock.calls[name] / len(chosen)
        log(f"    {seconds * 1000 / len(chosen):8.2f} ms  {calls:6.1f}x  {name}")
    log(f"  {'where the profiled time went':46s} {'ms/request':>10s} {'share':>6s}")
    per = 1000 / len(chosen)
    view = cumulative(stats, "django/core/handlers/base.py", "_get_response") * per
    chain = cumulative(stats, "django/core/handlers/base.py", "get_response") * per
    shares = {}
    for label, value in (
        ("test client and WSGI handler (not middleware)", profiled - chain),
        ("middleware (without the view)", chain - view),
    ):
        shares[label] = value / profiled
        log(f"  {label:46s} {value:10.2f} {value / profiled:6.0%}")
    for label, places in GROUPS:
        per_request = sum(cumulative(stats, *place) for place in places) * per
        shares[label.strip()] = per_request / profiled
        if per_request >= 0.05:
            log(f"  {label:46s} {per_request:10.2f} {per_request / profiled:6.0%}")
    entries = stats.stats  # type: ignore[attr-defined]
    # The cumulative ranking starts inside the view: the test client, the handler and each
    # middleware's __call__ hold nearly all of every request and would fill the list.
    inside = view / per * 0.98
    for what, column, where in (("cumulative", 3, ", inside the view"), ("own", 2, "")):
        log(f"  the {top} functions with the most {what} time{where} (of {len(chosen)} requests):")
        candidates = [e for e in entries.items() if column == 2 or e[1][3] < inside]
        ranked = sorted(candidates, key=lambda item, c=column: -item[1][c])[:top]
        for (file, line, name), (_cc, calls, own, cum, _callers) in ranked:
            short = file.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
            log(
                f"    {own * per:7.2f} ms own {cum * per:8.2f} cum "
                f"{calls / len(chosen):8.1f}x  {short}:{line} {name}"
            )
    summary = Summary(
        "",
        statistics.mean(plain),
        statistics.median(plain),
        statistics.mean(sql_ms),
        statistics.mean(queries),
        profiled,
        shares,
    )
    return [f"{path} answered {status}" for path, status in statuses if status != 200], summary


# The closing table's columns: (heading, the share of the profiled time it adds up).
SUMMARY_SHARES = (
    ("templates", ("template rendering",)),
    ("SQL", ("SQL (execute and fetch rows)",)),
    ("facets", ("sums over the counts snapshot (numpy)", "the list's count from the snapshot")),
    ("middleware", ("middleware (without the view)",)),
)


def log_summary(summaries: list[Summary]) -> None:
    """One line a page class: the plain time, SQL, and the shares of the profiled time."""
    log("Summary (plain: without the profiler; shares: of the profiled time)")
    header = (
        f"  {'page class':14s} {'ms/request':>10s} {'median':>7s} {'SQL ms':>7s} {'queries':>7s}"
        + "".join(f" {heading:>10s}" for heading, _labels in SUMMARY_SHARES)
    )
    log(header)
    for s in summaries:
        shares = "".join(
            f" {sum(s.shares.get(label, 0.0) for label in labels):10.0%}"
            for _heading, labels in SUMMARY_SHARES
        )
        log(
            f"  {s.name:14s} {s.plain_ms:10.1f} {s.median_ms:7.1f} {s.sql_ms:7.1f} "
            f"{s.queries:7.1f}{shares}"
        )


def kept_pages(*, forget: bool = False) -> int:
    """How many pages are kept in Redis (``postings.pagecache``); with ``forget``, none after."""
    import redis
    from django.conf import settings

    from bench.scale import REDIS_OWNER_KEY

    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:page:*", count=1000))
    if forget and keys:
        client.delete(*keys)
    if forget and not client.dbsize():
        # The keys the profile leaves (counts, caches) are the benchmarks': bench/scale.py may
        # flush them, where it refuses to flush a database it did not write.
        client.set(REDIS_OWNER_KEY, "bench/profile_pages.py")
    client.close()
    return len(keys)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "classes",
        nargs="*",
        default=["trivial", *CROWD, "list", "search", "detail", "feed"],
        help="page classes: trivial crowd_list crowd_search crowd_detail (random addresses, each"
        " asked for once, as bench/scale.py's crowd) list search detail nocount cold feed sitemap"
        " (bench/scale.py's hot rotations)",
    )
    parser.add_argument("--url", action="append", default=[], help="profile these URLs instead")
    parser.add_argument("--requests", type=int, default=20, help="requests per page class")
    parser.add_argument(
        "--top", type=int, default=15, help="functions listed by cumulative and by own time"
    )
    parser.add_argument(
        "--facets",
        choices=("cached", "cold"),
        default="cached",
        help="facet counts from the cache (most requests) or counted by each request",
    )
    parser.add_argument("--seed", type=int, default=7, help="the data set's seed")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", help="default jobboard_bench, --smoke: jobboard_bench_smoke")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--redis-db", type=int, default=9)
    parser.add_argument(
        "--smoke", action="store_true", help="does it run? every class, 2 requests, small data"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        from bench.scale import SMOKE_DATABASE

        args.database = args.database or SMOKE_DATABASE
        args.requests, args.top = 2, 5
        if not args.url and args.classes == parser.get_default("classes"):
            args.classes = ["trivial", *CROWD, "list", "search", "detail", "nocount", "cold"]
            args.classes += ["feed", "sitemap"]
    args.database = args.database or "jobboard_bench"
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    try:
        setup(args, workdir)
        if args.smoke:
            ensure_smoke_dataset(args, workdir)
        kept_pages(forget=True)  # an earlier run's (bench/scale.py's, in the same Redis database)
        if args.url:
            targets = {"urls": args.url}
        else:
            targets = urls_of(args.classes, args.seed, args.requests)
        problems = []
        summaries = []
        for name, paths in targets.items():
            log(f"{name}: {len(paths)} URL(s), {args.requests} requests")
            if not paths:
                problems.append(f"{name}: no URL to request (is the data set there?)")
                continue
            found, summary = profile(paths, args.requests, args.top, crowd=name in CROWD)
            summary.name = name
            problems += found
            summaries.append(summary)
            log()
        log_summary(summaries)
        kept = kept_pages()
        log(f"Pages kept in Redis after the profile: {kept} (none with kept pages off)")
        if kept:
            problems.append(f"{kept} pages were kept: the profile measured kept pages served")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for problem in problems:
        log(f"{'SMOKE FAILED' if args.smoke else 'NOT 200'}: {problem}")
    if args.smoke and not problems:
        log("smoke run: every page class profiled (figures of a run this small are not judged)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
