"""Similar jobs on a listing's page: open listings of the same practice area and seniority, in the
same city, then the same country, then remote ones anywhere; newest first in each.

Every listing of one area, seniority, country and city (a *group*: some four thousand at a million
listings) has the same similar jobs but for itself and the few like it (the same job listed
again). So a group's newest open listings of each branch are found once (one statement, ``UNION
ALL`` of the branches, each walking a partial index of open listings newest first,
``posting_pub_similar_city``, ``_place``, ``_remote``, with its own ``LIMIT``), their cards read,
and kept in Redis for ``CACHE_SECONDS`` with the change marks (``changes``) of those listings and
their companies, read before the cards were. A listing's page picks its own from the group,
leaving out itself and those like it (``_same_job``), and shows the kept cards only while their
marks are unchanged: if a listing it would show was closed or edited since, or its company
changed, the cards are read afresh (open only, and only where they still belong); one whose
deadline passed since is left out. So a closed listing is never shown as open, and a page whose
group is kept reads nothing of its similar jobs from the database. New listings join a kept group
within ``CACHE_SECONDS``. When leaving out those like it empties a branch that had more, the
listing's own statement runs instead. Without Redis nothing is kept.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from . import changes
from .models import Company, Posting
from .rows import Columns, literal, prepared_cursor

logger = logging.getLogger(__name__)

CACHE_SECONDS = 5 * 60
# Cards looked for beyond those shown: spares for listings that closed since the group was kept.
SPARE = 4
# A group's listings kept per branch: enough for a page's cards and spares after leaving out the
# listing itself and a few like it.
GROUP_ROWS = 12
# The group's first listings (over its branches, nearest first) whose cards are read and kept:
# those a page shows, its spares, and a few for those left out as like it. Picking one further
# on means reading the cards afresh.
GROUP_CARDS = 12

# What a card shows, what keeping the page checks (``pagecache.fingerprint``), and what tells a
# listing apart from the one whose page it is on.
CARD = Columns(
    Posting,
    [
        "company", "title", "slug", "summary", "city", "region", "country", "workplace",
        "employment_type", "seniority", "practice_area", "salary_min", "salary_max",
        "salary_currency", "salary_period", "status", "posted_at", "updated_at", "deadline",
        "closed_at", "closed_reason", "duplicate_of", "title_key", "description_key",
        "modified_at",
    ],
)  # fmt: skip
CARD_COMPANY = Columns(
    Company, ["name", "slug", "company_type", "website", "is_verified", "logo", "modified_at"]
)
_AREA, _LEVEL, _COUNTRY, _CITY, _WORKPLACE = (
    CARD.index(name) for name in ("practice_area", "seniority", "country", "city", "workplace")
)
_ENTRY = [
    CARD.pk_index,
    *(CARD.index(name) for name in ("company", "title_key", "description_key", "duplicate_of")),
]

# A listing of a group: its id, company id, title key, description key, and the listing it repeats.
Entry = tuple[int, int, str, str, int | None]


@dataclass(frozen=True)
class _Group:
    branches: list[list[Entry]]  # each branch's newest open listings, newest first
    read: frozenset[int]  # the first few of them, whose cards were read
    rows: dict[int, tuple]  # the cards (CARD then CARD_COMPANY columns) of those still open, by id
    changed: frozenset[str]  # the marks of those that changed since (``changes``)


class _Unread:
    pass


UNREAD = _Unread()  # the kept group has not been looked for yet


def group_key(posting: Posting) -> str:
    """Where the group of ``posting`` is kept."""
    place = f"{posting.country.code}:{posting.city.upper()}"
    group = f"{posting.practice_area}:{posting.seniority}:{place}"
    return f"{settings.REDIS_KEY_PREFIX}:similar:v3:{GROUP_ROWS}:{GROUP_CARDS}:{group}"


def forget_kept_groups() -> int:
    """Drop every kept group (the benchmark's SQL capture reads them as a first visit does)."""
    client = changes.client()
    if client is None:
        return 0
    pattern = f"{settings.REDIS_KEY_PREFIX}:similar:*"
    keys = list(client.scan_iter(match=pattern, count=1000))
    return client.delete(*keys) if keys else 0


def similar_postings(
    posting: Posting, limit: int = 4, *, kept: changes.Kept | _Unread | None = UNREAD
) -> list[Posting]:
    """Up to ``limit`` open listings like this one, for cards. ``kept`` is what is kept at
    ``group_key`` (``changes.read_kept``), when the page read it with its other reads. Redis
    away means asking the database every time, never an error."""
    key = group_key(posting)
    group = _kept_group(posting, key, kept)
    if group is None:
        group = _read_group(posting, key)
    picked = _pick(posting, group.branches, limit + SPARE)
    if picked is None:  # those like it emptied a branch that had more: its own statement
        picked = [(tuple(e), rank) for rank, *e in _query(posting, limit + SPARE, alike=True)]
        return _cards(posting, picked)[:limit]
    cards = []
    for entry, _rank in picked:
        listing_mark = changes.mark_key(changes.LISTING, entry[0])
        changed = {listing_mark, changes.mark_key(changes.COMPANY, entry[1])} & group.changed
        if changed or entry[0] not in group.read:
            return _cards(posting, picked)[:limit]  # changed since it was kept, or not read
        row = group.rows.get(entry[0])
        card = _card(row) if row is not None else None  # None: closed when its card was read
        if card is not None and card.is_open:  # not past a deadline since
            cards.append(card)
            if len(cards) == limit:
                break
    return cards


def _kept_group(posting: Posting, key: str, kept: changes.Kept | _Unread | None) -> _Group | None:
    if isinstance(kept, _Unread):
        if changes.client() is None:
            return None
        try:
            kept = changes.read_kept(key)
        except redis.RedisError:
            logger.exception("similar jobs cache unavailable")
            return None
    if kept is None:
        return None
    value, changed = kept
    if changes.mark_key(changes.BOARD) in changed:
        return None  # everything may have changed
    try:
        branches, read, rows = pickle.loads(value)  # noqa: S301 (ours, as Django's cache's)
    except (pickle.UnpicklingError, ValueError, TypeError, EOFError):
        logger.warning("similar jobs: unreadable group at %s", key)
        return None
    if len(branches) != len(_branches(posting)):
        return None
    return _Group(branches, read, rows, changed)


def _read_group(posting: Posting, key: str) -> _Group:
    """The group's listings, their cards read after their marks, and kept (with Redis)."""
    branches: list[list[Entry]] = [[] for _ in _branches(posting)]
    for rank, *entry in _query(posting, GROUP_ROWS):
        branches[rank].append(tuple(entry))
    first = [(entry, rank) for rank, branch in enumerate(branches) for entry in branch]
    first = first[:GROUP_CARDS]
    marks = None
    if changes.client() is not None:
        try:  # read (or made) before the rows: a change after them deletes one
            marks = changes.current([e[0] for e, _ in first], [e[1] for e, _ in first])
        except redis.RedisError:
            logger.exception("similar jobs cache unavailable")
    found = _rows([entry[0] for entry, _rank in first])
    rows = {}
    for entry, rank in first:
        row = found.get(entry[0])
        # Closed, or changed so that it is not where it was found, in between: as if closed.
        if row is not None and _rank_of(posting, row) == rank and _entry(row) == entry:
            rows[entry[0]] = row
    read = frozenset(entry[0] for entry, _rank in first)
    if marks is not None:
        try:
            changes.keep(key, pickle.dumps((branches, read, rows)), marks, CACHE_SECONDS)
        except redis.RedisError:
            logger.exception("similar jobs cache unavailable")
    return _Group(branches, read, rows, frozenset())


def _entry(row: Sequence) -> Entry:
    return tuple(row[index] for index in _ENTRY)  # type: ignore[return-value]


def _same_job(posting: Posting, entry: Sequence) -> bool:
    """The listing itself, the listing it repeats, one repeating it, or one that looks like it
    (the same role of the same company, the same description): as ``_not_the_same_job``."""
    pk, company_id, title_key, description_key, duplicate_of_id = entry
    return (
        pk == posting.pk
        or duplicate_of_id == posting.pk
        or (posting.duplicate_of_id is not None and pk == posting.duplicate_of_id)
        or (
            bool(posting.title_key)
            and (company_id, title_key) == (posting.company_id, posting.title_key)
        )
        or (bool(posting.description_key) and description_key == posting.description_key)
    )


def _pick(posting: Posting, branches: list, want: int) -> list[tuple[Entry, int]] | None:
    """The first ``want`` (entry, branch) of the group's listings for this listing, nearest
    first; None when leaving out those like it leaves fewer in a branch that had more than was
    kept (its next listings are not known here)."""
    picked: list[tuple[Entry, int]] = []
    for rank, entries in enumerate(branches):
        others = [entry for entry in entries if not _same_job(posting, entry)]
        needed = want - len(picked)
        if len(others) < needed and len(entries) >= GROUP_ROWS:
            return None
        picked += [(entry, rank) for entry in others[:needed]]
        if len(picked) >= want:
            break
    return picked


def _cards(posting: Posting, picked: list[tuple[Entry, int]]) -> list[Posting]:
    """The picked listings' cards, read afresh (one statement): only those still open, still in
    the branch they were found in, and still not like this one."""
    found = _rows([entry[0] for entry, _rank in picked])
    cards = []
    for entry, rank in picked:
        row = found.get(entry[0])
        if row is None or _rank_of(posting, row) != rank or _same_job(posting, _entry(row)):
            continue  # closed, or moved away or made like this one since the group was read
        cards.append(_card(row))
    return cards


def _rows(ids: list[int]) -> dict[int, tuple]:
    """The cards' rows of those of these listings that are open, by id."""
    if not ids:
        return {}
    p, c = CARD.table(), CARD_COMPANY.table()
    if connection.vendor == "postgresql":  # one statement, whatever the number of ids
        where, params = f'{p}."id" = ANY(%s::bigint[])', [list(ids)]
    else:
        where, params = f'{p}."id" IN ({", ".join(["%s"] * len(ids))})', list(ids)
    with prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT {CARD.sql()}, {CARD_COMPANY.sql()} FROM {p}"  # noqa: S608 (names only)
            f" INNER JOIN {c} ON {c}.id = {p}.company_id"
            f" WHERE {where} AND {p}.status = {literal(Posting.Status.PUBLISHED)}"
            f" AND ({p}.deadline IS NULL OR {p}.deadline > %s)",
            [*params, _now()],
        )
        return {row[CARD.pk_index]: row for row in cursor.fetchall()}


def _card(row: tuple) -> Posting:
    card = CARD.build(row)
    Posting.company.field.set_cached_value(card, CARD_COMPANY.build(row, CARD.width))
    return card


def _rank_of(posting: Posting, row: Sequence) -> int | None:
    """The branch (``_branches``) the listing of this card row belongs to for ``posting``."""
    if (row[_AREA], row[_LEVEL]) != (posting.practice_area, posting.seniority):
        return None
    country = posting.country.code
    rank = 0
    if posting.city:
        if row[_COUNTRY] == country and row[_CITY].upper() == posting.city.upper():
            return 0
        rank = 1
    if row[_COUNTRY] == country:
        return rank
    if row[_WORKPLACE] == Posting.Workplace.REMOTE:
        return rank + 1
    return None


def _branches(posting: Posting) -> list[tuple[str, list]]:
    """Where similar jobs are looked for, nearest first: SQL conditions and their parameters."""
    country = str(posting.country.code)  # a django-countries Country
    branches: list[tuple[str, list]] = []
    if posting.city:
        city = posting.city.upper()
        branches.append(("country = %s AND UPPER(city) = %s", [country, city]))
        branches.append(("country = %s AND UPPER(city) <> %s", [country, city]))
    else:
        branches.append(("country = %s", [country]))
    remote = literal(Posting.Workplace.REMOTE)  # written in: a partial index is built on it
    branches.append((f"workplace = {remote} AND country <> %s", [country]))
    return branches


def _not_the_same_job(posting: Posting) -> tuple[str, list]:
    """SQL (and its parameters) leaving out the listing itself, the listing it repeats, and
    listings that repeat it or look like it does."""
    conditions = ["id <> %s", "(duplicate_of_id IS NULL OR duplicate_of_id <> %s)"]
    params: list = [posting.pk, posting.pk]
    if posting.duplicate_of_id:
        conditions.append("id <> %s")
        params.append(posting.duplicate_of_id)
    if posting.title_key:
        conditions.append("NOT (company_id = %s AND title_key = %s)")
        params += [posting.company_id, posting.title_key]
    if posting.description_key:
        conditions.append("description_key <> %s")
        params.append(posting.description_key)
    return " AND ".join(conditions), params


def _query(posting: Posting, per_branch: int, *, alike: bool = False) -> list[tuple]:
    """The newest ``per_branch`` open listings of each branch of the group of ``posting``, as
    (branch, *``Entry``), nearest first; with ``alike``, leaving out those like it (then at most
    ``per_branch`` in all). One statement.

    Plain SQL: built with the ORM (three annotated branches and their union) the statement took
    several times longer to compile than to run. Each branch is a subquery with its own order
    and ``LIMIT``, as both PostgreSQL and SQLite allow, and walks its index newest first."""
    # Posting.objects.open(): published, and not past the deadline whether or not expired yet.
    # The status is written in: the indexes are built on it (``rows.prepared_cursor``).
    where = f"status = {literal(Posting.Status.PUBLISHED)} AND (deadline IS NULL OR deadline > %s)"
    where += " AND practice_area = %s AND seniority = %s"
    where_params = [_now(), posting.practice_area, posting.seniority]
    if alike:
        same_job, same_job_params = _not_the_same_job(posting)
        where += f" AND {same_job}"
        where_params += same_job_params
    table = Posting._meta.db_table
    columns = "id, company_id, title_key, description_key, duplicate_of_id, posted_at"
    parts, params = [], []
    for rank, (place, place_params) in enumerate(_branches(posting)):
        parts.append(
            f"SELECT * FROM (SELECT {rank} AS rank, {columns} FROM {table}"  # noqa: S608
            f" WHERE {where} AND {place} ORDER BY posted_at DESC, id DESC LIMIT {int(per_branch)})"
            f" AS b{rank}"
        )
        params += [*where_params, *place_params]
    # Sorted by posted_at without sending it: reading its text back cost more than the rest.
    sql = (
        f"SELECT rank, {columns.removesuffix(', posted_at')}"  # noqa: S608 (names only)
        f" FROM ({' UNION ALL '.join(parts)}) AS found ORDER BY rank, posted_at DESC, id DESC"
    )
    if alike:
        sql += f" LIMIT {int(per_branch)}"
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _now():
    return connection.ops.adapt_datetimefield_value(timezone.now())
