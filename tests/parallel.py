"""Parallel runs (pytest-xdist): each worker process gets a Redis database of its own.

The suite runs in two pytest-xdist worker processes (``-n 2`` in pyproject's ``addopts``).
pytest-django gives each its own PostgreSQL test database (``test_<name>_gw0``,
``test_<name>_gw1``), but Redis would be shared: the cache, the view counters' raw keys and the
Celery broker all live in ``REDIS_URL``'s database, and a test's clean slate clears the whole
cache database (``FLUSHDB``) while the other worker's test may be using it. So before Django reads
its settings, each worker's ``REDIS_URL`` (and ``CELERY_BROKER_URL``, when it names the same
Redis) is moved to a database of its own, counting down from the given one::

    REDIS_URL=redis://127.0.0.1:6379/14  ->  gw0: /14, gw1: /13 (bin/test's default)
    REDIS_URL=redis://127.0.0.1:6379/12  ->  gw0: /12, gw1: /11

(upwards instead when the given database is too low to count down: /0 -> /0, /1). A serial run
(``-n 0``) uses ``REDIS_URL`` as it is. A ``CELERY_BROKER_URL`` set to another Redis stays shared:
each test's worker queue is named after its process (tests/worker.py), so they do not mix.

Loaded early with ``-p tests.parallel`` (pyproject's ``addopts``): pytest-django imports the
settings while pytest loads its initial conftests, before ``tests/conftest.py`` runs at all.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

REDIS_DATABASES = 16  # Redis's default number of databases (0-15)


def redis_db(url: str) -> int:
    """The database number a redis:// (or rediss://, unix://) URL names; 0 when it names none."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if "db" in query:
        return int(query["db"])
    path = parts.path.strip("/")
    return int(path) if parts.scheme in ("redis", "rediss") and path.isdigit() else 0


def with_redis_db(url: str, db: int) -> str:
    """``url`` naming database ``db`` instead (in the place where it named its own)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    if parts.scheme == "unix" or any(key == "db" for key, _ in query):
        query = [(key, value) for key, value in query if key != "db"] + [("db", str(db))]
        # Built by hand: urlunsplit would drop a unix URL's empty host (unix:///path -> unix:/path).
        return f"{url.split('?', 1)[0]}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def worker_redis_db(base: int, index: int, count: int) -> int:
    """The database of worker ``index`` of ``count``: down from ``base``, or up when too low."""
    if count > REDIS_DATABASES:
        raise pytest.UsageError(
            f"{count} pytest-xdist workers need {count} Redis databases; Redis has "
            f"{REDIS_DATABASES}. Run with fewer (-n)."
        )
    if base - (count - 1) >= 0:
        return base - index
    if base + (count - 1) < REDIS_DATABASES:
        return base + index
    raise pytest.UsageError(f"REDIS_URL's database {base} leaves no room for {count} workers")


def worker_index() -> tuple[int, int] | None:
    """(index, count) of this xdist worker process; None in a serial run or the controller."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if worker.startswith("gw") and worker[2:].isdigit() and count.isdigit():
        return int(worker[2:]), int(count)
    return None


def give_this_worker_its_own_redis() -> None:
    placed = worker_index()
    redis_url = os.environ.get("REDIS_URL", "")
    if placed is None or not redis_url:
        return
    index, count = placed
    base = redis_db(redis_url)
    db = worker_redis_db(base, index, count)
    if db == base:
        return  # the first worker keeps REDIS_URL exactly as given
    os.environ["REDIS_URL"] = with_redis_db(redis_url, db)
    broker_url = os.environ.get("CELERY_BROKER_URL")
    if broker_url == redis_url:
        os.environ["CELERY_BROKER_URL"] = os.environ["REDIS_URL"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None]:
    # A wrapper runs before every plain implementation, so before pytest-django's settings import.
    give_this_worker_its_own_redis()
    return (yield)


def pytest_report_header(config: pytest.Config) -> list[str]:
    redis_url = os.environ.get("REDIS_URL", "")
    count = getattr(config.option, "numprocesses", None)
    if not redis_url or not isinstance(count, int) or count < 1 or worker_index() is not None:
        return []
    base = redis_db(redis_url)
    dbs = ", ".join(f"gw{index}: {worker_redis_db(base, index, count)}" for index in range(count))
    return [f"jobboard: {count} xdist workers, Redis database per worker ({dbs})"]
