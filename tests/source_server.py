"""A local HTTP server that plays the "source pages" aggregated listings are re-checked against.

The ``source_server`` fixture serves on 127.0.0.1 with an ephemeral port from a thread; a test sets
its routes while it runs::

    def test_a_gone_page(source_server):
        source_server.json_ld_page("/jobs/1", job_posting(title="Baker"), etag='"v1"')
        url = source_server.url("/jobs/1")
        ...
        source_server.status("/jobs/1", 410)
        ...
        assert len(source_server.requests("/jobs/1")) == 2
        assert source_server.max_in_flight("/jobs/1") == 1

Routes are matched on the path alone (the query string is ignored); an unknown path is a 404.
``page``, ``json_ld_page``, ``status`` and ``redirect`` set what a path answers and clear any
``delay``, ``hang`` or ``trickle`` set on it before; those three change how an existing route
answers (a path without a route answers an empty 200 page).
"""

from __future__ import annotations

import html
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pytest

__all__ = ["Hit", "SourceServer", "job_posting", "json_ld_html", "source_server"]


class Hit(NamedTuple):
    """One request the server received: wall-clock time, method and headers (case-insensitive)."""

    time: float
    method: str
    headers: Message


@dataclass
class Route:
    status: int = 200
    body: bytes | Callable[[], bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # sleep, then answer normally
    hang: float = 0.0  # sleep, then drop the connection without an answer
    trickle: tuple[float, float] | None = None  # (seconds, interval): the body spread over time

    def render(self) -> bytes:
        return self.body() if callable(self.body) else self.body

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def job_posting(**fields: Any) -> dict[str, Any]:
    """A plausible schema.org JobPosting; keyword arguments replace or add fields."""
    job = {
        "@context": "https://schema.org",
        "@type": "JobPosting",
        "title": "Backend Developer",
        "description": "<p>Build and run the services behind our shop.</p>",
        "datePosted": "2025-01-06",
        "validThrough": "2099-12-31T23:59:59Z",
        "employmentType": "FULL_TIME",
        "hiringOrganization": {"@type": "Organization", "name": "Example GmbH"},
        "jobLocation": {
            "@type": "Place",
            "address": {
                "@type": "PostalAddress",
                "addressLocality": "Berlin",
                "addressCountry": "DE",
            },
        },
    }
    job.update(fields)
    return job


def json_ld_html(job: dict[str, Any], extra_html: str = "") -> bytes:
    """A job page with its JobPosting as JSON-LD, plus noise that differs on every render."""
    data = {"@context": "https://schema.org", "@type": "JobPosting", **job}
    script = json.dumps(data, indent=1).replace("</", "<\\/")
    title = html.escape(str(data.get("title", "")))
    rendered = datetime.now(UTC).isoformat(timespec="microseconds")
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{title}</title>\n"
        f'<script type="application/ld+json">\n{script}\n</script>\n</head><body>\n'
        f"<main><h1>{title}</h1>\n{extra_html}</main>\n"
        f'<aside class="ad">Sponsored offer #{random.randrange(10**9)}</aside>\n'
        f"<footer>Rendered at {rendered}</footer>\n</body></html>\n"
    ).encode()


def _http_date(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    return format_datetime(value.astimezone(UTC), usegmt=True)


def _not_modified(route: Route, headers: Message) -> bool:
    """Whether a conditional request matches the route's ETag or Last-Modified (RFC 9110)."""
    etag = route.header("ETag")
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:  # takes precedence over If-Modified-Since
        if etag is None:
            return False
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or etag.removeprefix("W/") in tags
    last_modified = route.header("Last-Modified")
    if_modified_since = headers.get("If-Modified-Since")
    if last_modified is None or if_modified_since is None:
        return False
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _answered: Callable[[], None]

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the test reads server.requests() instead

    def _handle(self) -> None:
        source = self.server.source
        route, self._answered = source.arrive(urlsplit(self.path).path, self.command, self.headers)
        try:
            self._answer(source, route)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client gave up: that is what a test wants
        finally:
            self._answered()

    def _answer(self, source: SourceServer, route: Route | None) -> None:
        # A request stops counting as in flight just before the answer's last bytes go out, so
        # a client asking again as soon as it has its answer never overlaps with itself.
        if route is None:
            route = Route(status=404, body=b"<h1>Not Found</h1>")
        if route.hang:
            source.sleep(route.hang)
            self.close_connection = True
            return
        if route.delay:
            source.sleep(route.delay)
        if route.status < 300 and _not_modified(route, self.headers):
            self.send_response(304)
            for name in ("ETag", "Last-Modified", "Cache-Control"):
                if (value := route.header(name)) is not None:
                    self.send_header(name, value)
            self._answered()
            self.end_headers()
            return
        body = route.render()
        if route.trickle is not None:
            self._trickle(source, route, body)
            return
        self.send_response(route.status)
        self._send_headers(route, len(body))
        self._answered()
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_headers(self, route: Route, length: int) -> None:
        if route.header("Content-Type") is None:
            self.send_header("Content-Type", "text/html; charset=utf-8")
        for name, value in route.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))

    def _trickle(self, source: SourceServer, route: Route, body: bytes) -> None:
        seconds, interval = route.trickle or (0.0, 1.0)
        pieces = max(1, int(seconds / interval))
        body = body.ljust(pieces, b" ")  # at least one byte per piece
        size = -(-len(body) // pieces)
        self.send_response(route.status)
        self._send_headers(route, len(body))
        self.end_headers()
        for start in range(0, len(body), size):
            last = start + size >= len(body)
            if last:
                self._answered()
            self.wfile.write(body[start : start + size])
            if not last and source.sleep(interval):
                self.close_connection = True
                return  # the server is shutting down


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address) -> None:
        """A client that gave up (timed out, was killed) is what these tests are about: quiet."""

    request_queue_size = 256
    source: SourceServer


class SourceServer:
    """The routes, the recorded requests and the serving thread. Every method is thread-safe."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._hits: dict[str, list[Hit]] = {}
        self._in_flight: dict[str, int] = {}
        self._max_in_flight: dict[str, int] = {}
        self._total_in_flight = 0
        self._max_total_in_flight = 0
        self._closing = threading.Event()
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.source = self
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"source-server-{self.port}",
            daemon=True,
        )

    def start(self) -> SourceServer:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; requests still sleeping wake up and end at once."""
        self._closing.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def url(self, path: str = "/", host: str | None = None) -> str:
        """The full URL of a path; ``host="localhost"`` names the same server differently."""
        return f"http://{host or self.host}:{self.port}{path}"

    # --- routes -----------------------------------------------------------------------------

    def page(
        self,
        path: str,
        html: str | bytes,
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        etag: str | None = None,
        last_modified: datetime | str | None = None,
    ) -> str:
        """Serve this body at ``path``; with an ETag or Last-Modified, answer 304 when it matches.

        Returns the path's URL.
        """
        body = html.encode() if isinstance(html, str) else html
        return self._set(path, Route(status, body, self._headers(headers, etag, last_modified)))

    def json_ld_page(
        self,
        path: str,
        job: dict[str, Any],
        extra_html: str = "",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: datetime | str | None = None,
    ) -> str:
        """Serve a page holding ``job`` as schema.org JSON-LD, its bytes new on every request."""
        job = json.loads(json.dumps(job))  # a snapshot: later changes to the dict don't leak in
        route = Route(
            status,
            lambda: json_ld_html(job, extra_html),
            self._headers(headers, etag, last_modified),
        )
        return self._set(path, route)

    def status(self, path: str, code: int, headers: dict[str, str] | None = None) -> str:
        """Answer ``code`` (404, 410, 429, 500, 503, ...) with a short HTML body."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Status"
        body = f"<!doctype html><title>{code}</title><h1>{code} {phrase}</h1>".encode()
        return self._set(path, Route(code, body, dict(headers or {})))

    def redirect(self, path: str, to: str, code: int = 301) -> str:
        """Redirect to another path on this server (``/...``) or to any URL."""
        location = self.url(to) if to.startswith("/") else to
        return self._set(path, Route(code, b"", {"Location": location}))

    def delay(self, path: str, seconds: float) -> str:
        """Wait ``seconds`` before answering as the route otherwise would."""
        return self._change(path, delay=seconds, hang=0.0, trickle=None)

    def hang(self, path: str, seconds: float) -> str:
        """Accept the request, say nothing for ``seconds``, then drop the connection."""
        return self._change(path, hang=seconds, delay=0.0, trickle=None)

    def trickle(self, path: str, seconds: float, interval: float = 0.5) -> str:
        """Send status and headers at once, then the body a piece every ``interval`` seconds
        so the whole answer takes about ``seconds`` (each read is quick, the total is not)."""
        return self._change(path, trickle=(seconds, interval), delay=0.0, hang=0.0)

    def remove(self, path: str) -> None:
        """Forget a route: the path answers 404 again."""
        with self._lock:
            self._routes.pop(path, None)

    # --- what was requested -----------------------------------------------------------------

    def requests(self, path: str | None = None) -> list[Hit]:
        """Every request so far to ``path`` (or to any path), oldest first."""
        with self._lock:
            if path is not None:
                return list(self._hits.get(path, []))
            return sorted((hit for hits in self._hits.values() for hit in hits), key=lambda h: h[0])

    def max_in_flight(self, path: str | None = None) -> int:
        """The most requests to ``path`` (or to the whole server) ever served at the same time."""
        with self._lock:
            if path is None:
                return self._max_total_in_flight
            return self._max_in_flight.get(path, 0)

    def in_flight(self, path: str | None = None) -> int:
        """Requests being answered right now."""
        with self._lock:
            return self._total_in_flight if path is None else self._in_flight.get(path, 0)

    def clear_requests(self) -> None:
        """Forget recorded requests and the in-flight maxima (not the routes)."""
        with self._lock:
            self._hits.clear()
            self._max_in_flight = dict(self._in_flight)
            self._max_total_in_flight = self._total_in_flight

    # --- used by the handler ----------------------------------------------------------------

    def arrive(
        self, path: str, method: str, headers: Message
    ) -> tuple[Route | None, Callable[[], None]]:
        """Record a request; returns its route and a callable that ends its time in flight."""
        route = self._enter(path, method, headers)
        left = threading.Event()

        def leave() -> None:
            if not left.is_set():
                left.set()
                self._leave(path)

        return route, leave

    def sleep(self, seconds: float) -> bool:
        """Sleep, waking early when the server closes; returns whether it is closing."""
        return self._closing.wait(seconds)

    def _enter(self, path: str, method: str, headers: Message) -> Route | None:
        with self._lock:
            self._hits.setdefault(path, []).append(Hit(time.time(), method, headers))
            now = self._in_flight[path] = self._in_flight.get(path, 0) + 1
            self._max_in_flight[path] = max(self._max_in_flight.get(path, 0), now)
            self._total_in_flight += 1
            self._max_total_in_flight = max(self._max_total_in_flight, self._total_in_flight)
            route = self._routes.get(path)
            return None if route is None else Route(**vars(route))

    def _leave(self, path: str) -> None:
        with self._lock:
            self._in_flight[path] -= 1
            self._total_in_flight -= 1

    def _set(self, path: str, route: Route) -> str:
        with self._lock:
            self._routes[path] = route
        return self.url(path)

    def _change(self, path: str, **changes: Any) -> str:
        with self._lock:
            route = self._routes.get(path) or Route()
            self._routes[path] = Route(**{**vars(route), **changes})
        return self.url(path)

    @staticmethod
    def _headers(
        headers: dict[str, str] | None, etag: str | None, last_modified: datetime | str | None
    ) -> dict[str, str]:
        result = dict(headers or {})
        if etag is not None:
            result["ETag"] = etag
        if last_modified is not None:
            result["Last-Modified"] = _http_date(last_modified)
        return result


@pytest.fixture
def source_server(settings) -> Iterator[SourceServer]:
    """A fresh source-page server for the test, shut down (never waited on) afterwards.

    Fetches refuse loopback addresses and ports other than 80 and 443, so the fixture allows
    exactly this server's address and port, as an operator allows an intranet source.
    """
    server = SourceServer().start()
    settings.SOURCE_ALLOWED_NETWORKS = [f"{server.host}/32"]
    settings.SOURCE_ALLOWED_PORTS = [server.port]
    try:
        yield server
    finally:
        server.close()
