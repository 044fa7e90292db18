"""Similar jobs on a listing's page: open listings of the same practice area and seniority, in the
same city, then the same country, then remote ones anywhere; newest first in each.

One query on PostgreSQL, three branches (``UNION ALL``), each walking the partial index
``posting_pub_area_level`` (area, level, newest first) with its own ``LIMIT``: the work is bounded
by ``limit`` rows per branch, however many listings there are. Only the ids are cached, for
``CACHE_SECONDS``; the cards are fetched afresh with ``.open()``, so a listing closed since it was
cached is never shown as open.
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import connection
from django.db.models import Q, Value

from .models import Posting

logger = logging.getLogger(__name__)

CACHE_SECONDS = 5 * 60
# Ids kept per listing: spares for those that close within the cache's lifetime.
SPARE = 4


def _cache_key(posting: Posting, limit: int) -> str:
    return f"similar:v1:{posting.pk}:{limit}"


def _not_the_same_job(posting: Posting) -> Q:
    """Itself, the listing it repeats, and listings that repeat it or look like it does."""
    same = Q(pk=posting.pk) | Q(duplicate_of=posting.pk)
    if posting.duplicate_of_id:
        same |= Q(pk=posting.duplicate_of_id)
    if posting.title_key:
        same |= Q(company_id=posting.company_id, title_key=posting.title_key)
    if posting.description_key:
        same |= Q(description_key=posting.description_key)
    return same


def similar_ids(posting: Posting, limit: int) -> list[int]:
    """Ids of similar open listings, nearest first, then newest (one query)."""
    alike = (
        Posting.objects.open()
        .filter(practice_area=posting.practice_area, seniority=posting.seniority)
        .exclude(_not_the_same_job(posting))
    )
    # Newest first within each branch (the index order), then by rank across branches.
    branches = []
    if posting.city:
        same_city = alike.filter(country=posting.country, city__iexact=posting.city)
        branches.append(same_city)
        same_country = alike.filter(country=posting.country).exclude(city__iexact=posting.city)
    else:
        same_country = alike.filter(country=posting.country)
    branches.append(same_country)
    branches.append(
        alike.filter(workplace=Posting.Workplace.REMOTE).exclude(country=posting.country)
    )
    ranked = [
        branch.annotate(rank=Value(rank))
        .order_by("-posted_at", "-pk")
        .values_list("pk", "rank", "posted_at")[:limit]
        for rank, branch in enumerate(branches)
    ]
    if connection.features.supports_slicing_ordering_in_compound:
        rows = ranked[0].union(*ranked[1:], all=True).order_by("rank", "-posted_at", "-pk")
    else:  # SQLite, the embedded shape: the same branches, one query each
        rows = [row for branch in ranked for row in branch]
    return [pk for pk, _rank, _posted_at in rows[:limit]]


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
