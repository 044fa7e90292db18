"""Keyword search: PostgreSQL full-text search over a stored, GIN-indexed vector; on the SQLite
default, a plain case-insensitive match of every word."""

from __future__ import annotations

import re
from functools import lru_cache

from django.contrib.postgres.search import SearchQuery, SearchRank
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
