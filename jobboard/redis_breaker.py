"""Redis connections that stop asking a Redis that hangs.

A Redis that accepts connections but never answers (stopped, swapping, a stuck fork) costs every
call ``REDIS_TIMEOUT``, and a page makes several calls: with two sync workers that is a site
answering one page every few seconds. So once a call to a Redis server times out, this process
leaves that server alone for ``REDIS_BACKOFF_SECONDS``: every call to it fails at once with
``redis.ConnectionError``, which the pages already take as "Redis is away" (they render without
it, as with Redis down). The first call after the pause asks again, and pauses again if it times
out too. Each process keeps its own pause; one timeout costs it one wait, not one per call.
The calls not made are left out of the log (``QuietWhilePaused``, on the console handler).

A refused connection fails at once anyway and pauses nothing; neither do Redis's own errors.
Used by the Django cache (``jobboard/cache.py``) and the counters' client
(``postings.counters.get_redis``), not by Celery's broker connections, which have their own
retries.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

_paused_until: dict[str, float] = {}  # server -> time.monotonic() until which it is not asked
_lock = threading.Lock()


class Paused(redis.ConnectionError):
    """A call not made: its Redis timed out lately."""


class QuietWhilePaused(logging.Filter):
    """Leaves out the log records of calls not made during a pause (the pause itself was logged
    once): else every page would log each of its calls, with a traceback, for the whole pause."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], Paused))


def paused(server: str) -> bool:
    return time.monotonic() < _paused_until.get(server, 0.0)


def pause(server: str) -> None:
    seconds = settings.REDIS_BACKOFF_SECONDS
    with _lock:
        if paused(server) or seconds <= 0:
            return
        _paused_until[server] = time.monotonic() + seconds
    logger.warning("Redis at %s timed out: not asked again for %s s", server, seconds)


def resume_all() -> None:
    """Forget every pause (tests; a process that knows Redis is back)."""
    with _lock:
        _paused_until.clear()


class _Breaker:
    """Mixed into redis-py's connection classes: checks the pause before connecting or
    sending, and pauses on a timeout."""

    def _server(self) -> str:
        path = getattr(self, "path", "")
        return path or f"{getattr(self, 'host', '')}:{getattr(self, 'port', '')}"

    def _check(self) -> None:
        if paused(self._server()):
            raise Paused(f"Redis at {self._server()} timed out lately: not asked for a while")

    def connect(self) -> Any:
        self._check()
        try:
            return super().connect()  # type: ignore[misc]
        except redis.TimeoutError:
            pause(self._server())
            raise

    def send_packed_command(self, command: Any, check_health: bool = True) -> Any:
        self._check()
        try:
            return super().send_packed_command(command, check_health)  # type: ignore[misc]
        except redis.TimeoutError:
            pause(self._server())
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)  # type: ignore[misc]
        except redis.TimeoutError:
            pause(self._server())
            raise


class Connection(_Breaker, redis.Connection):
    pass


class SSLConnection(_Breaker, redis.SSLConnection):
    pass


class UnixDomainSocketConnection(_Breaker, redis.UnixDomainSocketConnection):
    pass


def connection_class(url: str) -> type[redis.connection.AbstractConnection]:
    """The connection class for a Redis URL, as redis-py would pick it, with the pause."""
    scheme = urlsplit(url).scheme
    if scheme == "rediss":
        return SSLConnection
    if scheme == "unix":
        return UnixDomainSocketConnection
    return Connection
