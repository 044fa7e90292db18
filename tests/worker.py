"""Real Celery worker processes for end-to-end tests, against the test's PostgreSQL and Redis.

A test that asks for ``start_worker`` (or ``celery_worker_process``) gets committed data
(``transactional_db``), a Redis queue of its own (``celery_queue``), and an in-process Celery app
that sends tasks to that queue instead of running them eagerly::

    def test_a_flush_runs_in_the_worker(start_worker):
        posting = PublishedPostingFactory(view_count=0)
        ...  # buffer some views
        worker = start_worker(concurrency=2, SOURCE_READ_TIMEOUT="0.5")
        flush_view_counts.delay()
        wait_for(lambda: Posting.objects.get(pk=posting.pk).view_count == 3)

A worker reads its settings from its environment only: a change through the ``settings`` fixture
does not reach it, so pass overrides to ``start_worker``. Without PostgreSQL and Redis these tests
are skipped (they fail under JOBBOARD_REQUIRE_POSTGRES=1). A failed test prints the end of each
worker's log. Timing worth knowing: after ``kill_child()`` the main process notices the lost
child within ~5 s and requeues its task; after ``kill()`` a message stays unacknowledged until
the visibility timeout (``wait_visibility_timeout()``, then ``restart()``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import pytest
import redis
from celery.utils.nodenames import host_format
from django.conf import settings
from django.db import connection

from jobboard.celery import app
from tests.conftest import on_postgres, require_production_shape

__all__ = ["WorkerProcess", "wait_for", "worker_database_url"]

ROOT = Path(__file__).resolve().parents[1]
WORKER_SKIP_REASON = "needs PostgreSQL and Redis (set DATABASE_URL and REDIS_URL) for a real worker"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
LOG_TAIL_LINES = 80

_names = itertools.count(1)
_reports = pytest.StashKey[dict[str, pytest.TestReport]]()
T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T], timeout: float = 20, interval: float = 0.1, message: str = ""
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Raises AssertionError after ``timeout`` seconds, naming ``message`` and the last value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def worker_database_url() -> str:
    """A DATABASE_URL for the database this test runs on (pytest-django's ``test_...`` one)."""
    db = connection.settings_dict
    user = quote(str(db.get("USER") or ""), safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = quote(str(db.get("HOST") or ""), safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    options = {k: v for k, v in (db.get("OPTIONS") or {}).items() if isinstance(v, str | int)}
    query = f"?{urlencode(options)}" if options else ""
    return f"postgres://{credentials}{host}{port}/{quote(str(db['NAME']), safe='')}{query}"


def _process_state(pid: int) -> str | None:
    """The /proc state letter of a process (R, S, Z, ...), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def pid_alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting to be reaped counts as dead)."""
    return _process_state(pid) not in (None, "Z", "X")


def _processes() -> Iterator[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every live process, read from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # ended while we looked
        if state not in ("Z", "X"):
            yield int(stat.parent.name), int(ppid), int(pgrp)


def child_pids(pid: int) -> list[int]:
    """The live child processes of ``pid`` (for a worker: its pool processes)."""
    return sorted(child for child, parent, _ in _processes() if parent == pid)


def _group_members(pgid: int) -> list[int]:
    return [pid for pid, _, group in _processes() if group == pgid]


class WorkerProcess:
    """One ``celery worker`` subprocess in a process group of its own."""

    def __init__(
        self,
        *,
        name: str,
        queue: str,
        env: dict[str, str],
        log_path: Path,
        concurrency: int = 2,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.nodename = host_format(f"{name}@%h")
        self.queue = queue
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.killed_at: float | None = None  # time.monotonic() of the last kill()

    def __repr__(self) -> str:
        return f"<WorkerProcess {self.nodename} pid={self.pid} queue={self.queue}>"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "celery", "-A", "jobboard", "worker", "--loglevel=INFO"),
            *("--pool=prefork", f"--concurrency={self.concurrency}"),
            *("--without-heartbeat", "--without-mingle", "--without-gossip"),
            *("-n", f"{self.name}@%h", "-Q", self.queue, *self.extra_args),
        ]

    def start(self, wait: bool = True, timeout: float = READY_TIMEOUT) -> WorkerProcess:
        """Start the process (appending to its log) and, by default, wait until it answers."""
        if self.is_alive():
            raise RuntimeError(f"{self!r} is already running")
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() reaches the pool too
            )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the worker consumes its queue and answers a ping."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_alive():
                raise AssertionError(
                    f"worker {self.nodename} exited with {self.process and self.process.poll()} "
                    f"before it was ready:\n{self.log_tail()}"
                )
            this_start = self.log_text().rsplit("\n=== start #", 1)[-1]
            if " ready." in this_start and self.ping(timeout=1.0):
                return
            time.sleep(0.1)
        raise AssertionError(
            f"worker {self.nodename} not ready after {timeout}s:\n{self.log_tail()}"
        )

    def ping(self, timeout: float = 1.0) -> bool:
        replies = app.control.ping(destination=[self.nodename], timeout=timeout, limit=1)
        return any(self.nodename in reply for reply in replies or [])

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def children(self) -> list[int]:
        """The pool processes (prefork children) alive now."""
        return [] if self.pid is None else child_pids(self.pid)

    def active_tasks(self, timeout: float = 1.0) -> list[dict[str, Any]]:
        """The tasks running now (``id``, ``name``, ``args``, ``worker_pid``, ...)."""
        inspect = app.control.inspect(destination=[self.nodename], timeout=timeout, limit=1)
        return (inspect.active() or {}).get(self.nodename) or []

    def kill_child(self, task_name: str | None = None, timeout: float = 10.0) -> int:
        """SIGKILL the pool process running a task (of ``task_name``, if given); returns its pid.

        The main process sees its child lost and, with ``task_acks_late`` and
        ``task_reject_on_worker_lost``, puts the message back on the queue.
        """

        def busy_child() -> int | None:
            for task in self.active_tasks():
                pid = task.get("worker_pid")
                if (task_name is None or task["name"] == task_name) and pid in self.children():
                    return pid
            return None

        what = f"a pool process of {self.nodename} running {task_name or 'a task'}"
        pid = wait_for(busy_child, timeout=timeout, interval=0.2, message=what)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), timeout=5, message=f"pool process {pid} to die")
        return pid

    def kill(self) -> None:
        """SIGKILL the main process and every pool process at once: the machine died."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        self.killed_at = time.monotonic()
        self.process.wait(timeout=10)
        self._wait_group_gone(timeout=5)

    @property
    def visibility_timeout(self) -> float:
        return float(self.env.get("CELERY_VISIBILITY_TIMEOUT") or 900)

    def wait_visibility_timeout(self) -> None:
        """After ``kill()``: sleep until the messages it held are past the visibility timeout.

        A worker restores such messages when it starts; a running one only every ~100 s (kombu's
        restore sweep), so ``kill()``, this, then ``restart()`` redelivers at once.
        """
        assert self.killed_at is not None, "kill() the worker first"
        remaining = self.killed_at + self.visibility_timeout + 0.5 - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def terminate(self) -> None:
        """Ask for a warm shutdown (SIGTERM to the group) without waiting for it."""
        if self.is_alive():
            self._signal_group(signal.SIGTERM)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Warm shutdown (SIGTERM); SIGKILL the whole group if it takes longer than ``timeout``."""
        self.terminate()
        self.wait_stopped(timeout)

    def wait_stopped(self, timeout: float = STOP_TIMEOUT) -> None:
        """Wait for the process to end; SIGKILL the whole group after ``timeout`` seconds."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=10)
        if _group_members(self.process.pid):  # pool processes that outlived their parent
            self._signal_group(signal.SIGKILL)
        self._wait_group_gone(timeout=5)

    def restart(self, wait: bool = True, **env: str) -> WorkerProcess:
        """Stop (if running) and start again with the same name and queue; ``env`` adds to it."""
        self.stop()
        self.env = {**self.env, **{k: str(v) for k, v in env.items()}}
        return self.start(wait=wait)

    def log_text(self) -> str:
        """Everything the worker wrote so far (all its starts)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 20) -> None:
        """Wait until ``text`` appears ``count`` times in the log."""
        wait_for(
            lambda: self.log_text().count(text) >= count,
            timeout=timeout,
            message=f"{count}x {text!r} in the log of {self.nodename}",
        )

    def _signal_group(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
            os.killpg(self.process.pid, signum)

    def _wait_group_gone(self, timeout: float) -> None:
        assert self.process is not None
        pgid = self.process.pid
        wait_for(
            lambda: not _group_members(pgid),
            timeout=timeout,
            interval=0.05,
            message=f"the processes of worker {self.nodename} to end",
        )


def stop_workers(workers: list[WorkerProcess], timeout: float = STOP_TIMEOUT) -> None:
    """Stop several workers at once: SIGTERM to all, then SIGKILL whoever is still there."""
    for worker in workers:
        worker.terminate()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.wait_stopped(max(0.0, deadline - time.monotonic()))


def require_worker_shape() -> None:
    """Skip (or fail, under JOBBOARD_REQUIRE_POSTGRES=1) without PostgreSQL and a Redis broker."""
    if on_postgres() and settings.REDIS_URL and not app.conf.broker_url.startswith("memory"):
        return
    if require_production_shape():
        pytest.fail(f"{WORKER_SKIP_REASON}, and JOBBOARD_REQUIRE_POSTGRES=1", pytrace=False)
    pytest.skip(WORKER_SKIP_REASON)


def _broker() -> redis.Redis:
    return redis.Redis.from_url(app.conf.broker_url, socket_timeout=5)


def purge_queue(queue: str) -> None:
    """Drop the queue's waiting messages, and the unacknowledged ones a killed worker left."""
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)
    client = _broker()
    try:
        for tag, raw in client.hgetall("unacked").items():
            try:
                _message, _exchange, routing_key = json.loads(raw)
            except ValueError:
                continue
            if routing_key == queue:
                client.pipeline().zrem("unacked_index", tag).hdel("unacked", tag).execute()
        client.delete(f"_kombu.binding.{queue}")
    finally:
        client.close()


def build_worker_env(queue: str, **overrides: Any) -> dict[str, str]:
    """The environment of a worker: this test's database, broker, queue and secret."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "jobboard.settings"),
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": app.conf.broker_url,
        "CELERY_QUEUE": queue,
        "CELERY_TASK_ALWAYS_EAGER": "0",  # tasks a task sends go to the queue too
        "SECRET_KEY": settings.SECRET_KEY,
        "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so a fixture's teardown knows the test failed."""
    report = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "start_worker" in fixtures or "celery_worker_process" in fixtures:
            item.add_marker(pytest.mark.worker)


@pytest.fixture
def celery_queue(settings) -> Iterator[str]:
    """A Redis queue for this test only; the in-process app sends tasks there, never eagerly."""
    require_worker_shape()
    queue = f"jobboard-test-{os.getpid()}-{next(_names)}"
    saved = {k: app.conf[k] for k in ("task_default_queue", "task_always_eager")}
    app.conf.task_default_queue = queue
    app.conf.task_always_eager = False
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    purge_queue(queue)
    try:
        yield queue
    finally:
        app.conf.update(saved)
        purge_queue(queue)


@pytest.fixture
def start_worker(
    request: pytest.FixtureRequest, celery_queue: str, transactional_db, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a worker on this test's queue: ``start_worker(concurrency=2, wait=True, **env)``.

    Call it again for a second worker. All of them stop (SIGTERM, then SIGKILL) at teardown,
    before the test's data is flushed.
    """
    if connection.in_atomic_block:
        pytest.fail("a worker can't see uncommitted data: use transactional_db", pytrace=False)
    workers: list[WorkerProcess] = []

    def start(
        concurrency: int = 2,
        wait: bool = True,
        extra_args: tuple[str, ...] = (),
        **env: Any,
    ) -> WorkerProcess:
        name = f"test-{os.getpid()}-{next(_names)}"
        worker = WorkerProcess(
            name=name,
            queue=celery_queue,
            env=build_worker_env(celery_queue, **env),
            log_path=tmp_path / f"{name}.log",
            concurrency=concurrency,
            extra_args=extra_args,
        )
        workers.append(worker)
        return worker.start(wait=wait)

    try:
        yield start
    finally:
        stop_workers(workers)
        reports = request.node.stash.get(_reports, {})
        if any(report.failed for report in reports.values()):
            for worker in workers:
                print(f"\n----- log of {worker.nodename} ({worker.log_path}) -----")
                print(worker.log_tail())


@pytest.fixture
def worker_env_overrides() -> dict[str, str]:
    """Environment for ``celery_worker_process``; override this fixture in a module or test."""
    return {}


@pytest.fixture
def celery_worker_process(
    start_worker: Callable[..., WorkerProcess], worker_env_overrides: dict[str, str]
) -> WorkerProcess:
    """One started worker (two pool processes) with ``worker_env_overrides``."""
    return start_worker(**worker_env_overrides)
