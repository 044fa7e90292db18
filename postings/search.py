"""Keyword search: PostgreSQL full-text search over a stored, GIN-indexed vector; on the SQLite
default, a plain case-insensitive match of every word. The newest matches are found in two steps
(``newest_match_ids``), since no one plan is cheap for both common and rare words."""

from __future__ import annotations

import re
import time
from datetime import datetime
from functools import lru_cache

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import F, Q

SEARCH_CONFIG = "english"
_TOKEN = re.compile(r'-?"[^"]*"|\S+')


@lru_cache(maxsize=1024)
def has_search_terms(text: str) -> bool:
    """False when PostgreSQL would drop every word ("the", "and"), which would match nothing."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT numnode(websearch_to_tsquery(%s::regconfig, %s))", [SEARCH_CONFIG, text]
        )
        return cursor.fetchone()[0] > 0


def keyword_filter(queryset, text: str, *, postgres: bool):
    text = text.strip()
    if not text:
        return queryset
    if postgres:
        query = SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)
        return queryset.filter(search_vector=query)
    return _plain_filter(queryset, text)


def with_rank(queryset, text: str):
    """Annotate ``rank`` for ordering by relevance (PostgreSQL only)."""
    query = SearchQuery(text.strip(), search_type="websearch", config=SEARCH_CONFIG)
    return queryset.annotate(rank=SearchRank(F("search_vector"), query))


def _plain_filter(queryset, text: str):
    for token in _TOKEN.findall(text):
        exclude = token.startswith("-") and len(token) > 1
        word = token.lstrip("-").strip('"').strip()
        if not word:
            continue
        match = (
            Q(title__icontains=word)
            | Q(company__name__icontains=word)
            | Q(city__icontains=word)
            | Q(region__icontains=word)
            | Q(description__icontains=word)
        )
        queryset = queryset.exclude(match) if exclude else queryset.filter(match)
    return queryset


# --- The newest matches (PostgreSQL) -------------------------------------------------------------

# How many of the newest open listings the first step walks (a few milliseconds).
RECENT_WINDOW = 2000
# Matches found there from which walking on is cheaper than the index (1 % of listings match).
DENSE_MATCHES = 20
_CUTOFF_SECONDS = 60
_cutoff: dict[str, tuple[float, datetime | None]] = {}
# Plans without a bitmap of every match or a scan of the table: the walk in the index's order.
WALK = ("bitmapscan", "seqscan")
# Plans without that walk: the GIN index, for matches it finds at once.
LOOK_UP = ("indexscan",)


def newest_match_ids(queryset, limit: int) -> list[int]:
    """The ids of the queryset's ``limit`` newest matches (``-posted_at``, ``-pk``), newest first.

    Walking the newest listings in order stops early for a common word, but reads every listing
    when the words seldom meet ("forecasting deploy": 760,000 rows, 1.4 s); the GIN index finds
    rare matches at once, but makes a common word a bitmap of every match, each row read (a
    second for "engineer"). The planner guesses which, and guesses wrong for words that seldom
    meet. So the newest ``RECENT_WINDOW`` open listings are walked first, which is all a common
    word needs; how many matched there says how to look among the older ones: none, in the
    index; many (``DENSE_MATCHES``), by walking on; a few, as the planner sees fit."""
    ordered = queryset.order_by("-posted_at", "-pk")
    cutoff = _recent_cutoff() if connection.vendor == "postgresql" else None
    if cutoff is None:  # few listings, or not PostgreSQL: one statement
        return list(ordered.values_list("pk", flat=True)[:limit])
    found = _ids_planned_without(WALK, ordered.filter(posted_at__gte=cutoff)[:limit])
    if len(found) >= limit:
        return found
    if not found:  # every match is older: the same statement, in the index
        return _ids_planned_without(LOOK_UP, ordered[:limit])
    rest = limit - len(found)
    if len(found) >= DENSE_MATCHES:  # walking on from the cutoff
        return found + _ids_planned_without(WALK, ordered.filter(posted_at__lt=cutoff)[:rest])
    # A few: the planner's choice, on the statement as it would be without the first step (a
    # bound on the date makes it AND a bitmap of nearly every listing to the index's).
    older = ordered.exclude(pk__in=found).values_list("pk", flat=True)
    return found + list(older[:rest])


def _ids_planned_without(methods: tuple[str, ...], queryset) -> list[int]:
    """The queryset's ids, planned without these kinds of scan: the settings, the statement and
    the settings back to their defaults in one round trip (a multi-statement query runs as one
    transaction, so an error undoes the settings too)."""
    try:
        sql, params = queryset.values_list("pk", flat=True).query.sql_with_params()
    except EmptyResultSet:  # a filter Django knows matches nothing (a company that is not there)
        return []
    off = "".join(f"SET enable_{method} = off; " for method in methods)
    back = "".join(f"; RESET enable_{method}" for method in methods)
    with connection.cursor() as cursor:
        cursor.execute(f"{off}{sql}{back}", params)
        raw = cursor.cursor  # psycopg's: each statement's result in turn
        while raw.description is None:  # the SETs
            if not raw.nextset():
                return []
        return [row[0] for row in raw.fetchall()]


def _recent_cutoff() -> datetime | None:
    """When the ``RECENT_WINDOW``-th newest open listing was posted (None: fewer listings), from
    the index alone; worked out again once a minute per process."""
    from .models import Posting

    checked, cutoff = _cutoff.get("open", (0.0, None))
    if time.monotonic() - checked >= _CUTOFF_SECONDS:
        cutoff = (
            Posting.objects.open()
            .order_by("-posted_at", "-pk")
            .values_list("posted_at", flat=True)[RECENT_WINDOW - 1 : RECENT_WINDOW]
            .first()
        )
        _cutoff["open"] = (time.monotonic(), cutoff)
    return cutoff
