"""nginx in front of gunicorn, as in the production shape, against the test database.

The nginx here runs the repository's own config (deploy/nginx/jobboard.conf.template), rendered as
the official image renders it (its two ${JOBBOARD_...} names filled in), inside a minimal main
config like the image's. gunicorn runs as compose runs it: two sync workers. Debian's nginx
package is needed (bin/test installs it when run as root).
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import brotli
import pytest

from postings.factories import PublishedPostingFactory
from tests.conftest import require_production_shape
from tests.worker import worker_database_url

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "jobboard.conf.template"
MIB = 1024 * 1024
# Resolved to 127.0.0.1 by the browser below: a name Chromium treats as any other site.
SITE_HOST = "jobs.example.test"

# The official image's nginx.conf, reduced to what a test run needs: its own pid, logs and
# temporary files in a scratch directory, in the foreground; the server block is the template's.
MAIN_CONF = """
{user}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {tmp}/access.log;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/conf.d/*.conf;
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        message = "nginx is not installed (bin/test installs Debian's nginx package)"
        if require_production_shape():
            pytest.fail(message + ", and JOBBOARD_REQUIRE_POSTGRES=1")
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render(template: str, **values: str) -> str:
    """What the official image's envsubst step writes, for the names it is told to fill in."""
    for name, value in values.items():
        template = template.replace("${" + name + "}", value)
    assert "${JOBBOARD_" not in template
    return template


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} after {timeout} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running(command: list[str], port: int, log: Path, **popen) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 (our own binaries and arguments)
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )
    try:
        wait_for_port(port, process, log)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Stack:
    nginx_port: int
    gunicorn_port: int
    static_root: Path
    access_log: Path  # gunicorn's: what reached a worker


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    """collectstatic as the Dockerfile runs it (DEBUG off: WhiteNoise's compressed manifest)."""
    root = tmp_path_factory.mktemp("static")
    env = {**os.environ, "DEBUG": "false", "STATIC_ROOT": str(root)}
    env.pop("STATICFILES_STORAGE", None)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    return root


@pytest.fixture(scope="module")
def stack(tmp_path_factory, static_root, django_db_setup) -> Iterator[Stack]:
    """gunicorn (2 sync workers) on the test database, and nginx with the repository's config."""
    nginx = nginx_binary()
    tmp = tmp_path_factory.mktemp("nginx")
    gunicorn_port, nginx_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "DEBUG": "false",
        "STATIC_ROOT": str(static_root),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # A real hostname over plain HTTP, as on a first run before TLS (allowed: SITE_URL's).
        "SITE_URL": f"http://{SITE_HOST}:{nginx_port}",
        "TRUSTED_PROXY_COUNT": "1",
    }
    env.pop("STATICFILES_STORAGE", None)
    access_log = tmp / "gunicorn-access.log"
    gunicorn = [
        sys.executable,
        "-m",
        "gunicorn",
        "jobboard.wsgi",
        f"--bind=127.0.0.1:{gunicorn_port}",
        "-w",
        "2",
        f"--access-logfile={access_log}",
    ]
    (tmp / "conf.d").mkdir()
    (tmp / "conf.d" / "default.conf").write_text(
        render(
            TEMPLATE.read_text(),
            JOBBOARD_UPSTREAM=f"127.0.0.1:{gunicorn_port}",
            JOBBOARD_LISTEN=f"127.0.0.1:{nginx_port}",
        )
    )
    # As root, nginx's workers would run as nobody, who cannot enter pytest's private tmp dirs.
    user = "user root;" if os.geteuid() == 0 else ""
    (tmp / "nginx.conf").write_text(MAIN_CONF.format(tmp=tmp, user=user))
    nginx_command = [nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "e.log")]
    with (
        running(gunicorn, gunicorn_port, tmp / "gunicorn.log", cwd=ROOT, env=env),
        running(nginx_command, nginx_port, tmp / "nginx.log"),
    ):
        yield Stack(nginx_port, gunicorn_port, static_root, access_log)


def get(port: int, path: str, timeout: float = 5, **headers: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def warm_up(port: int) -> None:
    """A first page from each worker (its first render loads what later ones reuse)."""
    with ThreadPoolExecutor(2) as pool:
        for response in pool.map(lambda _: get(port, "/jobs/", timeout=60), range(4)):
            assert response.status == 200


class SlowClients:
    """Sockets that send a request's header lines one at a time, never finishing the request."""

    def __init__(self, port: int, count: int, every: float = 2.0) -> None:
        self.sockets = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /jobs/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            self.sockets.append(sock)
        self.every = every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        while not self.stop.wait(self.every):
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")

    def still_waiting(self) -> int:
        """How many are still open with no answer: the server is still reading their request."""
        waiting = 0
        for sock in self.sockets:
            sock.setblocking(False)
            try:
                sock.recv(1, socket.MSG_PEEK)  # an answer, or b"" when closed
            except BlockingIOError:
                waiting += 1
            except OSError:
                pass
        return waiting

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[98]


@pytest.mark.django_db(transaction=True)
def test_fifty_slow_clients_do_not_hold_up_a_page_through_nginx(stack):
    PublishedPostingFactory.create_batch(20)
    warm_up(stack.nginx_port)

    slow = SlowClients(stack.nginx_port, 50)
    try:
        latencies, statuses = [], []
        deadline = time.monotonic() + 6  # three header lines from each slow client
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = get(stack.nginx_port, "/jobs/", timeout=5)
            latencies.append(time.perf_counter() - started)
            statuses.append(response.status)
        waiting = slow.still_waiting()
    finally:
        slow.close()

    print(
        f"through nginx, 50 slow clients: {len(latencies)} pages, "
        f"median {statistics.median(latencies) * 1000:.1f} ms, p99 {p99(latencies) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    assert set(statuses) == {200}
    assert len(latencies) >= 20
    assert p99(latencies) < 0.2
    # nginx is still patiently reading all fifty; none of them reached gunicorn.
    assert waiting == 50


@pytest.mark.django_db(transaction=True)
def test_two_slow_clients_straight_to_gunicorn_hold_up_every_page(stack, tmp_path):
    """The contrast: without nginx, two slow clients occupy both sync workers."""
    PublishedPostingFactory.create_batch(3)
    warm_up(stack.gunicorn_port)

    slow = SlowClients(stack.gunicorn_port, 2)
    try:
        time.sleep(0.3)  # both workers have taken one each
        answered = 0
        for _ in range(3):
            with contextlib.suppress(OSError):
                answered += get(stack.gunicorn_port, "/jobs/", timeout=1).status == 200
    finally:
        slow.close()
    print(f"straight to gunicorn, 2 slow clients: {answered} of 3 pages answered within 1 s")
    assert answered == 0
    # Once the slow clients hang up, the workers are free again.
    assert get(stack.gunicorn_port, "/jobs/", timeout=10).status == 200


def test_a_50_mib_upload_is_refused_by_nginx_before_any_worker_reads_it(stack):
    with socket.create_connection(("127.0.0.1", stack.nginx_port), timeout=10) as sock:
        sock.sendall(
            b"POST /jobs/1/apply/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            + f"Content-Length: {50 * MIB}\r\n\r\n".encode()
        )
        with contextlib.suppress(OSError):  # nginx may close before it has all of these
            sock.sendall(b"x" * (256 * 1024))
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert "POST" not in stack.access_log.read_text()


def test_a_cv_sized_body_is_passed_on(stack):
    """Just under the cap reaches the app (which answers for itself: here 403, no CSRF token)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.nginx_port, timeout=30)
    connection.request(
        "POST", "/jobs/1/apply/", body=b"x" * (5 * MIB), headers={"Content-Type": "x"}
    )
    status = connection.getresponse().status
    connection.close()
    assert status != 413
    assert "POST /jobs/1/apply/" in stack.access_log.read_text()


@pytest.mark.django_db(transaction=True)
def test_pages_are_gzipped_by_nginx(stack):
    PublishedPostingFactory.create_batch(5)
    warm_up(stack.nginx_port)
    response = get(stack.nginx_port, "/jobs/", **{"Accept-Encoding": "gzip"})
    assert response.status == 200
    assert response.getheader("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in response.getheader("Vary")
    page = gzip.decompress(response.body)
    assert page.rstrip().endswith(b"</html>")
    assert len(response.body) < len(page) / 3

    plain = get(stack.nginx_port, "/jobs/")
    assert plain.getheader("Content-Encoding") is None


def test_static_files_are_served_brotli_compressed(stack):
    """collectstatic wrote a .br next to each file (Brotli installed); WhiteNoise serves it."""
    manifest = json.loads((stack.static_root / "staticfiles.json").read_text())["paths"]
    css = next(name for name in manifest.values() if name.endswith(".css"))
    assert (stack.static_root / f"{css}.br").is_file()

    response = get(stack.nginx_port, f"/static/{css}", **{"Accept-Encoding": "gzip, br"})
    assert response.status == 200
    assert response.getheader("Content-Encoding") == "br"
    assert brotli.decompress(response.body) == (stack.static_root / css).read_bytes()


@pytest.mark.django_db(transaction=True)  # the failed log-in's records are cleared afterwards
def test_forms_work_on_a_first_run_over_plain_http_on_a_real_hostname(stack):
    """A browser never sends a Secure cookie back over http://, so every form would fail CSRF."""
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("JOBBOARD_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed; bin/test installs Debian's chromium package")
        pytest.skip("chromium is not installed (bin/test installs it)")
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {SITE_HOST} 127.0.0.1"],
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"http://{SITE_HOST}:{stack.nginx_port}/accounts/login/")
            page.fill("input[name=username]", "nobody@example.com")
            page.fill("input[name=password]", "not-the-password")
            page.click("button[type=submit]")
            page.wait_for_load_state()
            text = page.inner_text("body")
        finally:
            browser.close()
    assert "CSRF" not in text
    assert "That email and password do not match an account" in text
