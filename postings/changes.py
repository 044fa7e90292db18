"""Change marks: how a kept page (``pagecache``) knows that nothing it shows has changed since it
was rendered, without asking the database.

Every listing a kept page shows has a mark in Redis, a random token, and so has its company, and
the board as a whole. A page is kept with the tokens it found and served again only while each of
them is still there, unchanged (checked inside Redis, in the same round trip that fetches the
page). Changing a listing or a company deletes its mark, and the pages showing it go; a change
whose rows are not known (a bulk update of very many, a migration) deletes the board's mark, and
every kept page goes.

Who deletes marks: ``Posting.save`` and ``delete`` and the same of ``Company`` (signals in
``postings/signals.py``), ``PostingQuerySet.update`` and ``CompanyQuerySet.update`` (and so
``bulk_update``), and ``migrate``. Changes to the columns in ``Posting.LAGGING_FIELDS`` (the
counts, the re-checker's bookkeeping) leave marks alone: a kept page shows those at most its keep
time late, as it says.

Why a kept page is never less true than the database: the writer deletes a mark when it writes
and again after its transaction commits; the keeper reads (or creates) the marks first, then reads
the listings back from the database and keeps the page only if they are as it rendered them
(``pagecache``). So either the keeper's read saw the change, or the mark it holds was deleted
after it read it. Without Redis nothing is kept, so there is nothing to mark.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet

logger = logging.getLogger(__name__)

# A mark outlives every page kept with it (at most ``PAGE_CACHE_SECONDS``); one that expires only
# means its pages are rendered again.
MARK_SECONDS = 3600
# Bulk updates of more listings than this take every kept page down instead of marking each one.
MARK_AT_MOST = 5000
_DELETE_CHUNK = 500

# Each key's token, made where there is none yet: KEYS the marks, ARGV[1] the mark's lifetime,
# ARGV[2] a fresh random prefix, made unique to KEYS[i] by i (one random draw, not one a key).
_CURRENT = """
local tokens = {}
for i, key in ipairs(KEYS) do
  local token = redis.call('GET', key)
  if not token then
    token = ARGV[2] .. '.' .. i
    redis.call('SET', key, token, 'EX', ARGV[1])
  end
  tokens[i] = token
end
return tokens
"""


# A value kept with the marks of the rows it was read from (``keep``), at KEYS[i]: a hash of m,
# "key token key token ...", and b, the value. Returns {value, the keys of the marks changed
# since}, or false when nothing is kept there. Also inside the script of a listing's page's one
# round trip (``counters.count_and_read``).
KEPT_FUNCTION = """
local function kept_value(key)
  local kept = redis.pcall('HMGET', key, 'm', 'b')
  if kept.err or not kept[1] then  -- nothing kept (or something else there: nothing of ours)
    return false
  end
  local changed = {}
  for mark, token in string.gmatch(kept[1], '(%S+) (%S+)') do
    if redis.call('GET', mark) ~= token then
      changed[#changed + 1] = mark
    end
  end
  return {kept[2], changed}
end
"""
_READ_KEPT = KEPT_FUNCTION + "return kept_value(KEYS[1])\n"

Kept = tuple[bytes, frozenset[str]]


def client() -> redis.Redis | None:
    from .counters import get_redis  # the one client of the process (counters imports models)

    return get_redis()


BOARD = "board"
LISTING = "listing"
COMPANY = "company"


def mark_key(kind: str, pk: int | None = None) -> str:
    """The mark of one listing or company, or of the whole board."""
    return f"{settings.REDIS_KEY_PREFIX}:mark:{kind}" + ("" if pk is None else f":{pk}")


def current(posting_ids: Sequence[int] = (), company_ids: Sequence[int] = ()) -> dict[str, str]:
    """The marks of the board and of these listings and companies (made where missing): mark key
    -> token. Read them before reading the rows they vouch for."""
    keys = [
        mark_key(BOARD),
        *(mark_key(LISTING, pk) for pk in posting_ids),
        *(mark_key(COMPANY, pk) for pk in dict.fromkeys(company_ids)),
    ]
    tokens = _current_script(client())(keys=keys, args=[MARK_SECONDS, secrets.token_hex(8)])
    return {key: token.decode() for key, token in zip(keys, tokens, strict=True)}


@lru_cache(maxsize=4)
def _current_script(redis_client: redis.Redis):
    return redis_client.register_script(_CURRENT)


def keep(key: str, value: bytes, marks: dict[str, str], seconds: int) -> None:
    """Keep ``value``, read from rows after their ``marks`` were (``current``), for ``seconds``."""
    pipe = client().pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(key, mapping={"m": " ".join(f"{k} {t}" for k, t in marks.items()), "b": value})
    pipe.expire(key, seconds)
    pipe.execute()


def read_kept(key: str) -> Kept | None:
    """The value kept at ``key`` and the marks changed since it was kept; None if none is."""
    return kept_of(_read_kept_script(client())(keys=[key]))


def kept_of(found: list | None) -> Kept | None:
    """``KEPT_FUNCTION``'s answer as (value, changed mark keys)."""
    if not found:
        return None
    value, changed_marks = found
    return value, frozenset(key.decode() for key in changed_marks)


@lru_cache(maxsize=4)
def _read_kept_script(redis_client: redis.Redis):
    return redis_client.register_script(_READ_KEPT)


def changed(kind: str, ids: Iterable[int]) -> None:
    """These listings or companies changed: the pages showing them go, now and after the
    commit."""
    keys = [mark_key(kind, pk) for pk in ids if pk is not None]
    if keys:
        _changed(keys)


def everything_changed() -> None:
    """Something every page may show changed: every kept page goes, now and after the commit."""
    _changed([mark_key(BOARD)])


def updated(queryset: QuerySet, kind: str, update: Callable[[], int]) -> int:
    """Run ``update`` (the queryset's own ``update``) and delete the marks of the rows it changed,
    found first; the board's instead when those are very many, or not the rows it found (rows
    that began or stopped matching meanwhile)."""
    found = queryset.order_by().values_list("pk", flat=True)
    found.query.select_for_update = False  # only ids: the update itself locks what it changes
    ids = list(found[: MARK_AT_MOST + 1])
    count = update()
    if count != len(ids) or len(ids) > MARK_AT_MOST:
        everything_changed()
    else:
        changed(kind, ids)
    return count


def _changed(keys: list[str]) -> None:
    if client() is None:
        return
    _forget(keys)  # what the writing transaction itself renders next
    if connection.in_atomic_block:  # what everyone renders once the change is visible
        transaction.on_commit(lambda: _forget(keys))


def _forget(keys: list[str]) -> None:
    redis_client = client()
    if redis_client is None:
        return
    try:
        for start in range(0, len(keys), _DELETE_CHUNK):
            redis_client.delete(*keys[start : start + _DELETE_CHUNK])
    except redis.RedisError:
        # The kept pages live in this same Redis, so while it is away none is served; a page kept
        # before a blip that only this delete met is served at most its keep time.
        logger.exception("could not delete %d change mark(s)", len(keys))
