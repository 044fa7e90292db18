"""View and apply-click counters: one count per visitor, listing and day; nothing lost.

With Redis (production) a count is an ``HINCRBY`` into a pending hash, flushed to the database by a
periodic task, so a popular listing's row is never a hot lock. Without Redis (the embedded default)
it is one atomic ``UPDATE ... SET n = n + 1``.

While Redis is away (refused, timed out, paused by ``jobboard.redis_breaker``, or refusing
writes), a count goes straight to the row with that same atomic ``UPDATE``: an outage costs
speed, not counts, and the flush never sees these counts, so it cannot add them twice. The "seen
today" marks and the address's tally then live in each web process's memory (the
``counters_local`` cache, bounded): a visitor whose reloads reach two processes, or who comes
back after Redis does, may be counted once more that day. Counting a few views twice during an
outage is the honest trade for losing none.

A flush renames the pending hash to a batch key first (atomic: new counts go to a fresh hash), then
adds the batch to the rows and records the batch id in the same transaction. If the flush dies
before its commit, the batch is still in Redis and the next flush applies it; if it dies after
the commit, the next flush finds the batch id recorded and only deletes the key. So a flush that
dies halfway loses nothing and counts nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import redis
from crawlerdetect import CrawlerDetect
from django.conf import settings
from django.core.cache import BaseCache, caches
from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, When
from django.http import HttpRequest
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobboard import redis_breaker

from . import changes
from .models import Posting, ViewCountFlush

logger = logging.getLogger(__name__)

COUNTERS = {"views": "view_count", "applies": "apply_click_count"}
FLUSH_LOCK_SECONDS = 300
UPDATE_CHUNK = 500

# Turn the pending hash into a batch and register the batch, in one atomic step.
_SEAL_BATCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('SADD', KEYS[3], KEYS[2])
  return 1
end
return 0
"""


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis | None:
    if not settings.REDIS_URL:
        return None
    # One quick retry (a pooled connection that a Redis restart closed), never seconds of backoff:
    # the pages that use this client render without it rather than wait for it; and after a
    # timeout, none for a while (``redis_breaker``).
    return redis.Redis.from_url(
        settings.REDIS_URL,
        connection_class=redis_breaker.connection_class(settings.REDIS_URL),
        socket_timeout=settings.REDIS_TIMEOUT,
        socket_connect_timeout=settings.REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 1),
    )


def _key(*parts: str) -> str:
    return ":".join((settings.REDIS_KEY_PREFIX, "counters", *parts))


# One detector for the process: its check is a pure function with an LRU cache of user agents.
_crawlers = CrawlerDetect()
MAX_USER_AGENT = 512


def is_bot(user_agent: str) -> bool:
    user_agent = user_agent.strip()[:MAX_USER_AGENT]
    return not user_agent or _crawlers.is_crawler(user_agent)


def client_ip(request: HttpRequest) -> str:
    """The visitor's address, trusting X-Forwarded-For only as far as our own proxies."""
    hops = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops and forwarded:
        addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
        if len(addresses) >= hops:
            return addresses[-hops]
    return request.META.get("REMOTE_ADDR", "")


def visitor_fingerprint(request: HttpRequest) -> str:
    """A salted hash of address and browser: enough to count a visitor once, never stored raw."""
    return _hashed(f"{client_ip(request)}|{request.META.get('HTTP_USER_AGENT', '')}")


def count_once(request: HttpRequest, posting_id: int, counter: str = "views") -> bool:
    """Count this visitor for this listing today, unless a bot or counted already.

    Returns whether the count went up.
    """
    if counter not in COUNTERS:
        raise ValueError(f"unknown counter {counter!r}")
    if not _countable(request):
        return False
    try:
        return _count_once(request, posting_id, counter)
    except Exception:  # a counter must never take the page down with it (Redis away, ...)
        logger.exception("could not count a %s for posting %s", counter, posting_id)
        return False


def _countable(request: HttpRequest) -> bool:
    """A GET from a browser: a bot's or a form's request counts no view."""
    return request.method == "GET" and not is_bot(request.META.get("HTTP_USER_AGENT", ""))


def _marks(request: HttpRequest, posting_id: int, counter: str) -> tuple[str, str]:
    """The visitor's "seen today" mark and their address's tally for the day."""
    today = timezone.now().date().isoformat()
    seen_key = f"seen:{counter}:{posting_id}:{today}:{visitor_fingerprint(request)}"
    # One address changing its user agent is still one household or office, not a crowd.
    address_key = f"per-address:{counter}:{posting_id}:{today}:{_hashed(client_ip(request))}"
    return seen_key, address_key


def _script_call(request: HttpRequest, posting_id: int, counter: str) -> tuple[list[str], list]:
    """The keys and arguments of ``_COUNT_ONCE`` for this visitor."""
    seen_key, address_key = _marks(request, posting_id, counter)
    return (
        [_key(seen_key), _key(address_key), _key("pending", counter)],
        [_DAY, settings.COUNTS_PER_ADDRESS_PER_DAY, posting_id],
    )


_DAY = int(timedelta(days=1).total_seconds())


def _count_once(request: HttpRequest, posting_id: int, counter: str) -> bool:
    client = get_redis()
    if client is None:
        return _count_in_database(request, posting_id, counter, caches["counters"])
    keys, args = _script_call(request, posting_id, counter)
    try:  # one round trip: the marks and the count in one script
        return bool(_count_script(client)(keys=keys, args=args))
    except redis.RedisError:
        # Redis cannot take the count (down, hung, paused, read-only): the row takes it instead.
        # A timeout may hide a script that ran after all; one view counted twice beats a lost one.
        logger.warning(
            "Redis unavailable: counting %s of posting %s straight into the database",
            counter,
            posting_id,
            exc_info=True,  # left out of the log while the breaker pauses Redis
        )
        return _count_in_database(request, posting_id, counter, caches["counters_local"])


def _count_in_database(
    request: HttpRequest, posting_id: int, counter: str, seen: BaseCache
) -> bool:
    """Count with one atomic ``UPDATE``, the visitor's marks kept in the cache ``seen``."""
    seen_key, address_key = _marks(request, posting_id, counter)
    day = _DAY
    # cache.add is atomic: of many concurrent reloads, exactly one wins.
    if not seen.add(seen_key, 1, timeout=day):
        return False
    seen.add(address_key, 0, timeout=day)
    if seen.incr(address_key) > settings.COUNTS_PER_ADDRESS_PER_DAY:
        return False
    Posting.objects.filter(pk=posting_id).update(**{COUNTERS[counter]: F(COUNTERS[counter]) + 1})
    return True


# Count a visitor once: the "seen today" mark (SET NX: of many concurrent reloads, exactly one
# wins), the address's tally for the day, then the buffered count (their keys from KEYS[first]
# on; ARGV: the mark's lifetime, the tally's limit, the listing). Atomic, in one round trip; also
# inside the script that serves a kept page (``pagecache``).
COUNT_FUNCTION = """
local function count_once(first)
  if not redis.call('SET', KEYS[first], 1, 'NX', 'EX', ARGV[1]) then
    return 0
  end
  local tally = redis.call('INCR', KEYS[first + 1])
  if tally == 1 then
    redis.call('EXPIRE', KEYS[first + 1], ARGV[1])
  end
  if tally > tonumber(ARGV[2]) then
    return 0
  end
  redis.call('HINCRBY', KEYS[first + 2], ARGV[3], 1)
  return 1
end
"""
_COUNT_ONCE = COUNT_FUNCTION + "return count_once(1)\n"


@lru_cache(maxsize=4)
def _count_script(client: redis.Redis):
    return client.register_script(_COUNT_ONCE)


@dataclass
class Visit:
    """A visitor asking for a listing's page, counted (as ``count_once`` does) by the script that
    serves the kept page (``pagecache``), in the same round trip: only when that page is served,
    so only a view of the listing's page counts. A page rendered afresh counts its own."""

    request: HttpRequest
    posting_id: int
    counter: str = "views"

    def script_call(self) -> tuple[list[str], list] | None:
        """The counting keys and arguments; None when there is nothing to count (not a GET, a
        bot) or the counts are not buffered in Redis."""
        if get_redis() is None or not _countable(self.request):
            return None
        return _script_call(self.request, self.posting_id, self.counter)


# A listing's page's reads of Redis, in one round trip: the visitor counted (``count_once``) when
# their marks' keys come last in KEYS, then the listing's buffered counts of each counter asked
# for, pending and in batches not yet flushed, then values kept with change marks
# (``changes.KEPT_FUNCTION``). ARGV[1..3]: the count's (``COUNT_FUNCTION``); ARGV[4] the listing;
# ARGV[5] how many counters are read (n), KEYS[1..2n] their pending hash and batch set each;
# ARGV[6] how many kept values are read (g), KEYS[2n + 1..2n + g]. Returns {counted (1, 0, -1:
# not counted here), per counter {pending, batch key, count, batch key, count...}, per kept value
# what ``kept_value`` answers}. Batch keys are read from their set, and marks' keys from the kept
# values (fine on one Redis server, as ``pagecache``'s script).
_PAGE_READS = (
    COUNT_FUNCTION
    + changes.KEPT_FUNCTION
    + """
local n, g = tonumber(ARGV[5]), tonumber(ARGV[6])
local counted = -1
if #KEYS > 2 * n + g then
  counted = count_once(2 * n + g + 1)
end
local counts = {}
for i = 1, n do
  local found = {redis.call('HGET', KEYS[2 * i - 1], ARGV[4])}
  for _, batch in ipairs(redis.call('SMEMBERS', KEYS[2 * i])) do
    found[#found + 1] = batch
    found[#found + 1] = redis.call('HGET', batch, ARGV[4])
  end
  counts[i] = found
end
local kept = {}
for i = 1, g do
  kept[i] = kept_value(KEYS[2 * n + i])
end
return {counted, counts, kept}
"""
)


@lru_cache(maxsize=4)
def _page_reads_script(client: redis.Redis):
    return client.register_script(_PAGE_READS)


@dataclass
class PageReads:
    """What ``count_and_read`` found: each counter's buffered count to add to the stored one, and
    the values kept at the keys asked for (``changes.Kept``, None where nothing is kept), or None
    when Redis could not be asked."""

    pending: dict[str, int]
    kept: list[changes.Kept | None] | None


def count_and_read(
    request: HttpRequest,
    posting_id: int,
    *,
    count: str | None,
    read: Sequence[str] = (),
    kept: Sequence[str] = (),
) -> PageReads:
    """A listing's page's one round trip to Redis: count this visitor for ``count`` as
    ``count_once`` does (a browser's GET, once a day), then read the listing's buffered counts of
    ``read`` as ``pending_counts`` does, and the values kept at ``kept`` (``changes.keep``).

    Without Redis the count goes to the row (``count_once``) and nothing is buffered. With Redis
    away it does too, the buffered counts read as none and nothing as kept: the page shows the
    stored counts rather than failing."""
    if count is not None and count not in COUNTERS:
        raise ValueError(f"unknown counter {count!r}")
    countable = count is not None and _countable(request)
    client = get_redis()
    if client is None:
        if countable:
            count_once(request, posting_id, count)
        return PageReads({}, None)
    keys: list[str] = []
    for counter in read:
        keys += [_key("pending", counter), _key("batches", counter)]
    keys += kept
    args: list = [0, 0, 0]
    if countable:
        marks, args = _script_call(request, posting_id, count)
        keys += marks
    try:
        _counted, counts, values = _page_reads_script(client)(
            keys=keys, args=[*args, posting_id, len(read), len(kept)]
        )
    except redis.RedisError:
        logger.warning(
            "Redis unavailable: counting %s of posting %s straight into the database",
            count,
            posting_id,
            exc_info=True,  # left out of the log while the breaker pauses Redis
        )
        if countable:
            try:  # as ``_count_once``: a timeout may hide a count made; twice beats never
                _count_in_database(request, posting_id, count, caches["counters_local"])
            except Exception:
                logger.exception("could not count a %s for posting %s", count, posting_id)
        return PageReads({}, None)
    except Exception:  # as ``count_once``: the counter never takes the page down with it
        logger.exception("could not count a %s for posting %s", count, posting_id)
        return PageReads({}, None)
    pending = _buffered(dict(zip(read, counts, strict=True)))
    return PageReads(pending, [changes.kept_of(value) for value in values])


def _buffered(found: dict[str, list]) -> dict[str, int]:
    """Each counter's pending count plus those of its batches not yet in the rows."""
    batches = {
        (counter, key.decode()): int(value or 0)
        for counter, values in found.items()
        for key, value in zip(values[1::2], values[2::2], strict=True)
    }
    applied: set[str] = set()
    if batches:
        # A batch already added to the rows (between a flush's commit and its cleanup, or after a
        # flush died there) is in the stored counts: adding it again would show it twice.
        applied = set(
            ViewCountFlush.objects.filter(
                batch_id__in=[_batch_id(counter, key) for counter, key in batches]
            ).values_list("batch_id", flat=True)
        )
    totals = {counter: int(values[0] or 0) for counter, values in found.items()}
    for (counter, key), value in batches.items():
        if _batch_id(counter, key) not in applied:
            totals[counter] += value
    return totals


def address_hash(address: str) -> str:
    """A salted hash of an address: enough to tell visitors apart, never the address itself."""
    return _hashed(address)


def _hashed(value: str) -> str:
    return hashlib.sha256(f"{settings.SECRET_KEY}|{value}".encode()).hexdigest()[:32]


def pending_counts(posting_ids: Iterable[int], counter: str = "views") -> dict[int, int]:
    """Counts still buffered in Redis (pending and in-flight batches), to add to stored ones.

    With Redis away this is empty: the page shows the stored counts rather than failing.
    """
    try:
        return _pending_counts(posting_ids, counter)
    except redis.RedisError:
        logger.exception("could not read buffered %s counts", counter)
        return {}


def _pending_counts(posting_ids: Iterable[int], counter: str) -> dict[int, int]:
    client = get_redis()
    ids = [str(i) for i in posting_ids]
    if client is None or not ids:
        return {}
    totals: dict[int, int] = {}
    batches = [key.decode() for key in client.smembers(_key("batches", counter))]
    if batches:
        # A batch already added to the rows (between a flush's commit and its cleanup, or after a
        # flush died there) is in the stored counts: adding it again would show it twice.
        applied = set(
            ViewCountFlush.objects.filter(
                batch_id__in=[_batch_id(counter, key) for key in batches]
            ).values_list("batch_id", flat=True)
        )
        batches = [key for key in batches if _batch_id(counter, key) not in applied]
    keys = [_key("pending", counter), *batches]
    for key in keys:
        for posting_id, value in zip(ids, client.hmget(key, ids), strict=True):
            if value is not None:
                totals[int(posting_id)] = totals.get(int(posting_id), 0) + int(value)
    return totals


def flush(counter: str = "views") -> int:
    """Move buffered counts into the database; returns how many counts were added."""
    client = get_redis()
    if client is None:
        return 0
    lock = client.lock(_key("flush-lock", counter), timeout=FLUSH_LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        return 0  # another worker is flushing; its batch covers ours
    try:
        batches = _key("batches", counter)
        new_batch = _key("batch", counter, uuid.uuid4().hex)
        client.eval(_SEAL_BATCH, 3, _key("pending", counter), new_batch, batches)
        added = 0
        for batch_key in sorted(client.smembers(batches)):
            added += _apply_batch(client, counter, batch_key.decode())
        return added
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            logger.warning("counter flush outlived its lock")


def _batch_id(counter: str, batch_key: str) -> str:
    return f"{counter}:{batch_key.rsplit(':', 1)[-1]}"


def _apply_batch(client: redis.Redis, counter: str, batch_key: str) -> int:
    batch_id = _batch_id(counter, batch_key)
    counts = {int(k): int(v) for k, v in client.hgetall(batch_key).items() if int(v) > 0}
    if ViewCountFlush.objects.filter(batch_id=batch_id).exists():
        _forget_batch(client, counter, batch_key)  # applied before a crash kept us from deleting
        return 0
    field = COUNTERS[counter]
    try:
        with transaction.atomic():
            ViewCountFlush.objects.create(
                batch_id=batch_id, postings=len(counts), views=sum(counts.values())
            )
            items = sorted(
                counts.items()
            )  # a fixed row order, so concurrent flushes can't deadlock
            for start in range(0, len(items), UPDATE_CHUNK):
                chunk = dict(items[start : start + UPDATE_CHUNK])
                Posting.objects.filter(pk__in=chunk).update(
                    **{
                        field: F(field)
                        + Case(
                            *[When(pk=pk, then=n) for pk, n in chunk.items()],
                            default=0,
                            output_field=IntegerField(),
                        )
                    }
                )
    except IntegrityError:  # another flusher recorded it first
        return 0
    _forget_batch(client, counter, batch_key)
    logger.info("flushed %s %s on %s postings", sum(counts.values()), counter, len(counts))
    return sum(counts.values())


def _forget_batch(client: redis.Redis, counter: str, batch_key: str) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.delete(batch_key)
    pipe.srem(_key("batches", counter), batch_key)
    pipe.execute()


def forget_old_flushes(older_than: timedelta = timedelta(days=7)) -> int:
    """Batch ids only guard against a re-run within minutes; a week of them is plenty."""
    cutoff = timezone.now() - older_than
    old = ViewCountFlush.objects.filter(flushed_at__lt=cutoff)
    client = get_redis()
    if client is not None:
        # A batch still waiting in Redis keeps its id, however old, so it is never added twice.
        waiting = [
            f"{counter}:{key.decode().rsplit(':', 1)[-1]}"
            for counter in COUNTERS
            for key in client.smembers(_key("batches", counter))
        ]
        old = old.exclude(batch_id__in=waiting)
    deleted, _ = old.delete()
    return deleted
