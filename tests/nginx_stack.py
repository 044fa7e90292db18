"""nginx in front of gunicorn, as in the production shape, against the test database.

A test that asks for ``nginx_stack`` gets, once per session, gunicorn serving this checkout as
compose runs it (two sync workers, DEBUG off, static files collected as the Dockerfile collects
them) on the test database, and Debian's nginx in front running the repository's own config
(deploy/nginx/jobboard.conf.template), rendered as the official image renders it (its two
${JOBBOARD_...} names filled in) inside a minimal main config like the image's. Data a test
creates must be committed for gunicorn to see it (``transactional_db``). SITE_URL is a real
hostname over plain HTTP, as on a first run before TLS. Needs Debian's nginx package (bin/test
installs it when run as root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_production_shape
from tests.worker import worker_database_url

__all__ = ["SITE_HOST", "Stack"]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "jobboard.conf.template"
# The site's name; browsers map it to 127.0.0.1 (tests/e2e/test_first_run.py), and treat
# it as any other site on the internet (unlike localhost, never a secure context over http).
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


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory) -> Path:
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


@pytest.fixture(scope="session")
def nginx_stack(tmp_path_factory, collected_static, django_db_setup) -> Iterator[Stack]:
    """gunicorn (2 sync workers) on the test database, and nginx with the repository's config."""
    nginx = nginx_binary()
    tmp = tmp_path_factory.mktemp("nginx")
    gunicorn_port, nginx_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "DEBUG": "false",
        "STATIC_ROOT": str(collected_static),
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
        yield Stack(nginx_port, gunicorn_port, collected_static, access_log)
