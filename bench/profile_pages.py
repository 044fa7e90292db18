"""Where a page's time goes: each page class of ``bench/scale.py`` requested in-process by Django's
test client against the benchmark's database, timed plain, then under cProfile.

Run it after ``bench/scale.py`` has built its data set (same options for where things are)::

    .venv/bin/python bench/profile_pages.py                 # every page class, 20 requests each
    .venv/bin/python bench/profile_pages.py list search     # some of them
    .venv/bin/python bench/profile_pages.py --url '/jobs/?q=developer' --top 40
    .venv/bin/python bench/profile_pages.py --smoke         # does it still run? seconds

For each page class it prints the plain time per request (no profiler), the SQL time the queries
took (Django's own timing, which includes the round trip), and a breakdown of the profiled time
by what the code was doing: SQL, template rendering (and inside it the form widgets, the cards,
the template tags and filters of ``postings_tags``, ``humanize``), the facet counts and their
cache, the view counter, similar jobs, middleware, and the rest; then the functions with the most
time of their own. cProfile slows Python down about twice (SQL not), so the shares matter, not
the profiled milliseconds. Caches are warm (each URL is requested once first), as they are under
load, and facet counts stay cached for the whole profile (``--facets cold`` counts them in every
request, as the first request of each minute and filter combination does); the settings are
otherwise the production ones of ``bench/scale.py`` (DEBUG off). Static files are collected into
a scratch directory first, with hashed names as in production (without WhiteNoise's compression,
which changes no page): the pages' ``{% static %}`` needs their manifest.

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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (label, (file suffix, function name, template node class or "")): the cumulative time of the
# outermost calls. Indented labels are parts of the one above; groups may overlap otherwise.
GROUPS: list[tuple[str, tuple[str, str, str]]] = [
    (
        "the view (until its response is rendered)",
        ("django/core/handlers/base.py", "_get_response", ""),
    ),
    ("  SQL (execute and fetch rows)", ("django/db/backends/utils.py", "_execute", "")),
    ("  querysets (SQL and model objects)", ("django/db/models/query.py", "__iter__", "")),
    ("  browse(): filters, count, rows, facets", ("postings/browse.py", "browse", "")),
    ("    facets_for (cache, or counting)", ("postings/browse.py", "facets_for", "")),
    ("    PostingFilter (form, validation)", ("django_filters/filterset.py", "is_valid", "")),
    ("  view counter: count_once", ("postings/counters.py", "count_once", "")),
    ("  view counter: pending_counts", ("postings/counters.py", "pending_counts", "")),
    ("  similar jobs", ("postings/similar.py", "similar_postings", "")),
    ("  structured data (job_posting_data)", ("postings/structured.py", "job_posting_data", "")),
    ("  feed (Feed.__call__)", ("django/contrib/syndication/views.py", "__call__", "")),
    ("  sitemap view", ("django/contrib/sitemaps/views.py", "sitemap", "")),
    ("  template rendering", ("django/template/response.py", "rendered_content", "")),
    ("    {{ form.country }} and other widgets", ("django/forms/boundfield.py", "as_widget", "")),
    ("    {% include %} (the cards)", ("django/template/loader_tags.py", "render", "IncludeNode")),
    ("    {% timestamp %}", ("postings/templatetags/postings_tags.py", "timestamp", "")),
    ("    {% deadline_state %}", ("postings/templatetags/postings_tags.py", "deadline_state", "")),
    ("    |salary", ("postings/templatetags/postings_tags.py", "salary", "")),
    ("    |intcomma", ("django/contrib/humanize/templatetags/humanize.py", "intcomma", "")),
    ("    {% url %}", ("django/template/defaulttags.py", "render", "URLNode")),
    ("    |json_ld", ("postings/templatetags/postings_tags.py", "json_ld", "")),
    ("    {% report_form %}", ("django/template/library.py", "render", "InclusionNode")),
    ("    {% csrf_token %}", ("django/template/defaulttags.py", "render", "CsrfTokenNode")),
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


def urls_of(names: Sequence[str], seed: int) -> dict[str, list[str]]:
    """Each page class's URLs, as bench/scale.py requests them (fewer listings)."""
    from bench import scale

    found: dict[str, list[str]] = {}
    for name in names:
        if name == "trivial":
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
    installed: patches ``django.template.base.Template.render`` in this process only."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from django.template import base

        original = base.Template.render

        def render(template: Any, context: Any) -> Any:
            name = template.origin.template_name if template.origin else "(string)"
            started = time.perf_counter()
            try:
                return original(template, context)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
                self.calls[name] = self.calls.get(name, 0) + 1

        base.Template.render = render  # type: ignore[method-assign]
        try:
            yield
        finally:
            base.Template.render = original  # type: ignore[method-assign]


def profile(paths: list[str], requests: int, top: int) -> list[str]:
    """Print where the time of these pages goes; returns the answers that were not 200."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.scale import CHECKER_AGENT

    client = Client(HTTP_USER_AGENT=CHECKER_AGENT)
    chosen = [paths[i % len(paths)] for i in range(requests)]
    for path in dict.fromkeys(chosen):  # warm: compiled templates, caches, connection
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
    plain, sql_ms, queries, statuses = [], [], [], []
    for path in chosen:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            statuses.append((path, client.get(path).status_code))
            plain.append((time.perf_counter() - started) * 1000)
        sql_ms.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
        queries.append(len(captured.captured_queries))
    clock = TemplateClock()
    with clock.installed():
        timed = []
        for path in chosen:
            started = time.perf_counter()
            statuses.append((path, client.get(path).status_code))
            timed.append((time.perf_counter() - started) * 1000)
    profiler = cProfile.Profile()
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
    log(
        f"  templates (timed without the profiler, each including what it includes; "
        f"{statistics.mean(timed):.1f} ms a request):"
    )
    ranked_templates = sorted(clock.seconds.items(), key=lambda item: -item[1])
    for name, seconds in ranked_templates[:8]:
        calls = clock.calls[name] / len(chosen)
        log(f"    {seconds * 1000 / len(chosen):8.2f} ms  {calls:6.1f}x  {name}")
    log(f"  {'where the profiled time went':46s} {'ms/request':>10s} {'share':>6s}")
    view = cumulative(stats, "django/core/handlers/base.py", "_get_response") * 1000 / len(chosen)
    outside = ("middleware, handler, test client (outside the view)", profiled - view)
    log(f"  {outside[0]:46s} {outside[1]:10.2f} {outside[1] / profiled:6.0%}")
    for label, (file, function, node) in GROUPS:
        per_request = cumulative(stats, file, function, node) * 1000 / len(chosen)
        if per_request >= 0.05:
            log(f"  {label:46s} {per_request:10.2f} {per_request / profiled:6.0%}")
    log(f"  functions with the most time of their own (of {len(chosen)} requests):")
    entries = stats.stats  # type: ignore[attr-defined]
    ranked = sorted(entries.items(), key=lambda item: -item[1][2])[:top]
    for (file, line, name), (_cc, calls, own, cum, _callers) in ranked:
        short = file.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        log(
            f"    {own * 1000 / len(chosen):7.2f} ms own {cum * 1000 / len(chosen):8.2f} cum "
            f"{calls / len(chosen):8.1f}x  {short}:{line} {name}"
        )
    return [f"{path} answered {status}" for path, status in statuses if status != 200]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "classes",
        nargs="*",
        default=["trivial", "list", "search", "detail", "nocount", "feed"],
        help="page classes: trivial list search detail nocount cold feed sitemap",
    )
    parser.add_argument("--url", action="append", default=[], help="profile these URLs instead")
    parser.add_argument("--requests", type=int, default=20, help="requests per page class")
    parser.add_argument("--top", type=int, default=15, help="functions listed by own time")
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
            args.classes = ["trivial", "list", "search", "detail", "nocount", "cold", "feed"]
            args.classes.append("sitemap")
    args.database = args.database or "jobboard_bench"
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    try:
        setup(args, workdir)
        if args.smoke:
            ensure_smoke_dataset(args, workdir)
        targets = {"urls": args.url} if args.url else urls_of(args.classes, args.seed)
        problems = []
        for name, paths in targets.items():
            log(f"{name}: {len(paths)} URL(s), {args.requests} requests")
            if not paths:
                problems.append(f"{name}: no URL to request (is the data set there?)")
                continue
            problems += profile(paths, args.requests, args.top)
            log()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for problem in problems:
        log(f"{'SMOKE FAILED' if args.smoke else 'NOT 200'}: {problem}")
    if args.smoke and not problems:
        log("smoke run: every page class profiled (figures of a run this small are not judged)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
