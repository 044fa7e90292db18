"""Similar jobs on a listing's page: open listings of the same practice area and seniority, in the
same city, then the same country, then remote ones anywhere; newest first in each.

One query, three branches (``UNION ALL``), each walking a partial index of open listings by
area and level, newest first (``posting_pub_similar_city``, ``_place``, ``_remote``), with its own
``LIMIT``: the work is bounded by ``limit`` rows per branch, however many listings there are.
Only the ids are cached, for ``CACHE_SECONDS``; the cards are fetched afresh with ``.open()``,
so a listing closed since it was cached is never shown as open.
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from .models import Posting

logger = logging.getLogger(__name__)

CACHE_SECONDS = 5 * 60
# Ids kept per listing: spares for those that close within the cache's lifetime.
SPARE = 4


def _cache_key(posting: Posting, limit: int) -> str:
    return f"similar:v1:{posting.pk}:{limit}"


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


def similar_ids(posting: Posting, limit: int) -> list[int]:
    """Ids of similar open listings, nearest first, then newest (one query).

    Plain SQL: built with the ORM (three annotated branches and their union) the statement took
    several times longer to compile than to run. Each branch is a subquery with its own order
    and ``LIMIT``, as both PostgreSQL and SQLite allow, and walks its index newest first."""
    same_job, same_job_params = _not_the_same_job(posting)
    # Posting.objects.open(): published, and not past the deadline whether or not expired yet.
    alike = (
        f"status = %s AND (deadline IS NULL OR deadline > %s)"
        f" AND practice_area = %s AND seniority = %s AND {same_job}"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    alike_params = [
        Posting.Status.PUBLISHED,
        now,
        posting.practice_area,
        posting.seniority,
        *same_job_params,
    ]
    country = str(posting.country.code)  # a django-countries Country
    branches: list[tuple[str, list]] = []
    if posting.city:
        city = posting.city.upper()
        branches.append(("country = %s AND UPPER(city) = %s", [country, city]))
        branches.append(("country = %s AND UPPER(city) <> %s", [country, city]))
    else:
        branches.append(("country = %s", [country]))
    branches.append(("workplace = %s AND country <> %s", [Posting.Workplace.REMOTE, country]))
    table = Posting._meta.db_table
    parts, params = [], []
    for rank, (where, where_params) in enumerate(branches):
        parts.append(
            f"SELECT * FROM (SELECT id, {rank} AS rank, posted_at FROM {table}"  # noqa: S608
            f" WHERE {alike} AND {where} ORDER BY posted_at DESC, id DESC LIMIT %s) AS b{rank}"
        )
        params += [*alike_params, *where_params, limit]
    sql = " UNION ALL ".join(parts) + " ORDER BY rank, posted_at DESC, id DESC LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return [pk for pk, _rank, _posted_at in cursor.fetchall()]


def similar_postings(posting: Posting, limit: int = 4) -> list[Posting]:
    """Up to ``limit`` open listings like this one, for cards. A cache that is down means asking
    the database every time, never an error."""
    key = _cache_key(posting, limit)
    try:
        ids = cache.get(key)
    except Exception:
        logger.exception("similar jobs cache unavailable")
        ids = None
    if ids is None:
        ids = similar_ids(posting, limit + SPARE)
        try:
            cache.set(key, ids, CACHE_SECONDS)
        except Exception:
            logger.exception("similar jobs cache unavailable")
    if not ids:
        return []
    # Fetched afresh and open only: one closed since its id was cached is left out.
    found = Posting.objects.for_cards().open().in_bulk(ids)
    return [found[pk] for pk in ids if pk in found][:limit]
