"""Django's Redis cache, with one client object per connection pool instead of one per call.

``django.core.cache.backends.redis.RedisCacheClient.get_client`` builds a new ``redis.Redis``
for every cache operation, and each one copies redis-py's table of ~170 response callbacks:
a quarter of a millisecond per ``cache.get``, paid several times on every page. The clients
are thread-safe and share their pool's connections, so keeping one per pool changes nothing
else. Its connections stop asking a Redis that hangs for a while (``jobboard/redis_breaker.py``).
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient

from jobboard import redis_breaker


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def _get_connection_pool(self, write: bool) -> Any:
        index = self._get_connection_pool_index(write)
        if index not in self._pools:  # connections that stop asking a Redis that hangs
            server = self._servers[index]
            options = {"connection_class": redis_breaker.connection_class(server)}
            self._pools[index] = self._pool_class.from_url(server, **options, **self._pool_options)
        return self._pools[index]

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
