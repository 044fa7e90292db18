"""nginx in front of gunicorn (tests/nginx_stack.py): slow clients, upload sizes, compression.

The production shape's nginx with the repository's config, against gunicorn's two sync workers
on the test database; the contrast straight to gunicorn is measured too.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import brotli
import pytest

from postings.factories import PublishedPostingFactory
from tests.worker import wait_for

MIB = 1024 * 1024


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
def test_fifty_slow_clients_do_not_hold_up_a_page_through_nginx(nginx_stack):
    PublishedPostingFactory.create_batch(20)
    warm_up(nginx_stack.nginx_port)

    slow = SlowClients(nginx_stack.nginx_port, 50)
    try:
        latencies, statuses = [], []
        deadline = time.monotonic() + 6  # three header lines from each slow client
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = get(nginx_stack.nginx_port, "/jobs/", timeout=5)
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
def test_two_slow_clients_straight_to_gunicorn_hold_up_every_page(nginx_stack):
    """The contrast: without nginx, two slow clients occupy both sync workers."""
    PublishedPostingFactory.create_batch(3)
    warm_up(nginx_stack.gunicorn_port)

    slow = SlowClients(nginx_stack.gunicorn_port, 2)
    try:
        time.sleep(0.3)  # both workers have taken one each
        answered = 0
        for _ in range(3):
            with contextlib.suppress(OSError):
                answered += get(nginx_stack.gunicorn_port, "/jobs/", timeout=1).status == 200
    finally:
        slow.close()
    print(f"straight to gunicorn, 2 slow clients: {answered} of 3 pages answered within 1 s")
    assert answered == 0
    # Once the slow clients hang up, the workers are free again.
    assert get(nginx_stack.gunicorn_port, "/jobs/", timeout=10).status == 200


def test_a_50_mib_upload_is_refused_by_nginx_before_any_worker_reads_it(nginx_stack):
    with socket.create_connection(("127.0.0.1", nginx_stack.nginx_port), timeout=10) as sock:
        sock.sendall(
            b"POST /jobs/1/apply/?upload-of-50-mib HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            + f"Content-Length: {50 * MIB}\r\n\r\n".encode()
        )
        with contextlib.suppress(OSError):  # nginx may close before it has all of these
            sock.sendall(b"x" * (256 * 1024))
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    # No worker saw it: gunicorn's log has a later request, and not this one.
    # (Not a speed check: on a loaded machine the health check may take seconds.)
    assert get(nginx_stack.nginx_port, "/healthz/?after-the-upload", timeout=30).status == 200
    wait_for(lambda: "after-the-upload" in nginx_stack.access_log.read_text(), timeout=5)
    assert "upload-of-50-mib" not in nginx_stack.access_log.read_text()


def test_a_cv_sized_body_is_passed_on(nginx_stack):
    """Just under the cap reaches the app (which answers for itself: here 403, no CSRF token)."""
    connection = http.client.HTTPConnection("127.0.0.1", nginx_stack.nginx_port, timeout=30)
    connection.request(
        "POST", "/jobs/1/apply/", body=b"x" * (5 * MIB), headers={"Content-Type": "x"}
    )
    status = connection.getresponse().status
    connection.close()
    assert status != 413
    wait_for(lambda: "POST /jobs/1/apply/" in nginx_stack.access_log.read_text(), timeout=5)


@pytest.mark.django_db(transaction=True)
def test_pages_are_gzipped_by_nginx(nginx_stack):
    PublishedPostingFactory.create_batch(5)
    warm_up(nginx_stack.nginx_port)
    response = get(nginx_stack.nginx_port, "/jobs/", **{"Accept-Encoding": "gzip"})
    assert response.status == 200
    assert response.getheader("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in response.getheader("Vary")
    page = gzip.decompress(response.body)
    print(f"/jobs/ through nginx: {len(page):,} bytes, gzipped {len(response.body):,}")
    assert page.rstrip().endswith(b"</html>")
    assert len(response.body) < len(page) / 3

    plain = get(nginx_stack.nginx_port, "/jobs/")
    assert plain.getheader("Content-Encoding") is None


def test_static_files_are_served_brotli_compressed(nginx_stack):
    """collectstatic wrote a .br next to each file (Brotli installed); WhiteNoise serves it."""
    manifest = json.loads((nginx_stack.static_root / "staticfiles.json").read_text())["paths"]
    css = next(name for name in manifest.values() if name.endswith(".css"))
    assert (nginx_stack.static_root / f"{css}.br").is_file()

    response = get(nginx_stack.nginx_port, f"/static/{css}", **{"Accept-Encoding": "gzip, br"})
    assert response.status == 200
    assert response.getheader("Content-Encoding") == "br"
    assert brotli.decompress(response.body) == (nginx_stack.static_root / css).read_bytes()
