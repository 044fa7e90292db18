"""A Redis that hangs is left alone for a while after a call to it times out
(jobboard/redis_breaker.py), so that a page waits for it once, not on every call."""

from __future__ import annotations

import socket
import sys
import time

import pytest
import redis

from jobboard import redis_breaker
from tests.hung_redis import HungRedis


@pytest.fixture
def hung():
    server = HungRedis()
    yield server
    server.close()


def client_of(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        connection_class=redis_breaker.connection_class(url),
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
        retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
    )


def test_after_a_timeout_redis_is_not_asked_again_for_a_while(hung, settings):
    settings.REDIS_BACKOFF_SECONDS = 60
    client = client_of(hung.url)
    with pytest.raises(redis.TimeoutError):
        client.get("key")
    connections = len(hung.accepted)
    for _call in range(5):
        with pytest.raises(redis.ConnectionError, match="not asked"):
            client.get("key")
    fresh = client_of(hung.url)  # another client of the same server: paused too
    with pytest.raises(redis.ConnectionError, match="not asked"):
        fresh.set("key", 1)
    assert len(hung.accepted) == connections


def test_after_the_pause_redis_is_asked_again(hung, settings, monkeypatch):
    settings.REDIS_BACKOFF_SECONDS = 10
    client = client_of(hung.url)
    with pytest.raises(redis.TimeoutError):
        client.get("key")
    later = time.monotonic() + 11
    monkeypatch.setattr(redis_breaker.time, "monotonic", lambda: later)
    with pytest.raises(redis.TimeoutError):  # asked, and waited for, once more
        client.get("key")


def test_the_pause_is_per_server(hung, settings, redis_client):
    settings.REDIS_BACKOFF_SECONDS = 60
    with pytest.raises(redis.TimeoutError):
        client_of(hung.url).get("key")
    assert redis_client.ping()  # the project's own Redis, another server, still asked


def test_no_pause_when_turned_off(hung, settings):
    settings.REDIS_BACKOFF_SECONDS = 0
    client = client_of(hung.url)
    for _call in range(2):
        with pytest.raises(redis.TimeoutError):
            client.get("key")


def test_a_refused_connection_pauses_nothing(settings):
    settings.REDIS_BACKOFF_SECONDS = 60
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
    closed.close()  # nothing listens there: refused at once
    with pytest.raises(redis.ConnectionError) as refused:
        client_of(url).get("key")
    assert "not asked" not in str(refused.value)
    assert not redis_breaker.paused(f"127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://redis:6379/0", redis_breaker.Connection),
        ("rediss://redis:6380/0", redis_breaker.SSLConnection),
        ("unix:///run/redis.sock", redis_breaker.UnixDomainSocketConnection),
    ],
)
def test_each_kind_of_redis_url_keeps_its_connection_kind(url, expected):
    pool = redis.ConnectionPool.from_url(url, connection_class=redis_breaker.connection_class(url))
    assert pool.connection_class is expected
    assert issubclass(expected, redis.connection.AbstractConnection)


def test_calls_not_made_during_a_pause_are_left_out_of_the_log(hung, settings):
    import logging

    settings.REDIS_BACKOFF_SECONDS = 60
    client = client_of(hung.url)
    with pytest.raises(redis.TimeoutError):
        client.get("key")
    records = []
    for call in (client.get, client.delete):
        try:
            call("key")
        except redis.ConnectionError:
            records.append(
                logging.getLogger("postings").makeRecord(
                    "postings", logging.ERROR, __file__, 1, "unavailable", (), sys.exc_info()
                )
            )
    other = logging.getLogger("postings").makeRecord(
        "postings",
        logging.ERROR,
        __file__,
        1,
        "down",
        (),
        (redis.ConnectionError, redis.ConnectionError("refused"), None),
    )
    console = next(
        handler
        for handler in logging.getLogger().handlers
        if any(isinstance(f, redis_breaker.QuietWhilePaused) for f in handler.filters)
    )
    assert len(records) == 2 and not any(console.filter(record) for record in records)
    assert console.filter(other)  # a Redis that is down is still logged, call by call
