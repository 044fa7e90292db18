"""The job list as a candidate asks for it: filters, sort, page, counts, all from GET parameters.

Pages deep into the results stay fast because "Next" carries a keyset cursor (the last row's sort
value and id) instead of an OFFSET. Small page numbers typed by hand still work by OFFSET, up to
``POSTINGS_MAX_OFFSET_PAGE``. Counts are capped: "1,000+ jobs" costs a LIMIT, not a full COUNT(*).
Every bad parameter becomes a notice on the page, never an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F, Lookup, Q, Value
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import facets
from .filters import POSTED_CHOICES, PostingFilter
from .models import Posting, PostingQuerySet, deadline_key
from .search import newest_match_ids, with_rank

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SortOrder:
    label: str
    field: str | None  # None: relevance, paged by OFFSET only
    descending: bool = True
    nullable: bool = False


SORTS: dict[str, SortOrder] = {
    "newest": SortOrder("Newest", "posted_at"),
    # On the deadline, no deadline last (models.deadline_key): a key with no NULLs.
    "deadline": SortOrder("Deadline soonest", "deadline_key", descending=False),
    "views": SortOrder("Most viewed", "view_count"),
    "relevance": SortOrder("Relevance", None),
}
DATETIME_SORT_FIELDS = {"posted_at", "deadline_key"}

# Parameters that are not filters but belong to the list's address.
LIST_PARAMS = ("sort", "page", "after", "before")


class BadCursor(ValueError):
    pass


# A real cursor (an ISO datetime or a count, and an id) is under 100 characters.
MAX_CURSOR_LENGTH = 200


def encode_cursor(value: Any, pk: int) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([value, pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, sort: SortOrder) -> tuple[Any, int]:
    if len(token) > MAX_CURSOR_LENGTH:  # junk, and deeply nested JSON would exhaust the stack
        raise BadCursor(token[:MAX_CURSOR_LENGTH])
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value, pk = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, RecursionError) as exc:
        raise BadCursor(token) from exc
    if not isinstance(pk, int) or isinstance(pk, bool) or not (0 < pk < 2**63):
        raise BadCursor(token)
    if value is None:
        if not sort.nullable:
            raise BadCursor(token)
    elif sort.field in DATETIME_SORT_FIELDS:
        try:
            parsed = parse_datetime(value) if isinstance(value, str) else None
            if parsed is not None and timezone.is_aware(parsed):
                # In UTC, as the database compares: years 1 to 9999 only, and PostgreSQL takes
                # no offset of 16 hours or more, which Python's parser does.
                parsed = parsed.astimezone(UTC)
        except (ValueError, OverflowError) as exc:  # "2024-13-01", "+99:00", "0001-01-01+14:00"
            raise BadCursor(token) from exc
        if parsed is None or timezone.is_naive(parsed):
            raise BadCursor(token)
        value = parsed
    elif not isinstance(value, int) or isinstance(value, bool) or not (0 <= value < 2**63):
        raise BadCursor(token)
    return value, pk


def _keyset(sort: SortOrder, value: Any, pk: int, *, forward: bool) -> Q:
    """Rows after (forward) or before the cursor, in an order whose NULLs come last."""
    name = sort.field
    later = "lt" if sort.descending else "gt"  # "comes after" for the sort's own direction
    earlier = "gt" if sort.descending else "lt"
    op = later if forward else earlier
    if value is None:  # inside the trailing block of NULLs, ordered by id alone
        same = Q(**{f"{name}__isnull": True, f"pk__{op}": pk})
        return same if forward else same | Q(**{f"{name}__isnull": False})
    after = Q(**{f"{name}__{op}": value}) | Q(**{name: value, f"pk__{op}": pk})
    if forward and sort.nullable:
        after |= Q(**{f"{name}__isnull": True})
    elif not sort.nullable:
        # The same rows, plus a plain bound PostgreSQL can start the index walk at: without it
        # the OR above is only a filter, and page 500 walks the 10,000 rows before it.
        after &= Q(**{f"{name}__{op}e": value})
    return after


def _ordering(sort: SortOrder, *, forward: bool, few: bool = False) -> list:
    """ORDER BY for walking forward or back; a nullable column keeps its NULLs at the end.

    Non-nullable columns get plain ASC/DESC so PostgreSQL walks the matching index. With
    ``few`` (the counts snapshot says few listings match), the same order in a form no index
    has, so that PostgreSQL finds the matches first and sorts them: a walk in the index's order
    would read most of the index before it found a page of them.
    """
    descending = sort.descending == forward  # walking back flips the direction
    column, pk = F(sort.field), F("pk")
    if few and not sort.nullable:  # "+ 0" changes no value, and so no order
        zero = Value(timedelta(0)) if sort.field in DATETIME_SORT_FIELDS else Value(0)
        column, pk = column + zero, pk + Value(0)
    order = column.desc if descending else column.asc
    if sort.nullable:
        ordered = order(nulls_last=True) if forward else order(nulls_first=True)
    else:
        ordered = order()
    return [ordered, pk.desc() if descending else pk.asc()]


@dataclass
class Facet:
    name: str
    label: str
    options: list[tuple[str, str, int, bool]]  # value, label, count, selected


@dataclass
class JobList:
    filterset: PostingFilter
    postings: list[Posting]
    sort: str
    sort_choices: list[tuple[str, str]]
    page_number: int | None
    count: int
    count_is_capped: bool
    next_query: str | None = None
    prev_query: str | None = None
    notices: list[str] = field(default_factory=list)
    facets: list[Facet] = field(default_factory=list)
    filter_query: str = ""
    searching: bool = False
    # Set when relevance ranks only the newest this many matches, there being more.
    ranked_among: int | None = None
    # When the counts snapshot shown was counted (time.time()), if the page shows one.
    counted_at: float | None = None
    # Counts above this read "N+" (keyword searches count less far than other lists).
    count_cap: int = 0

    @property
    def is_empty(self) -> bool:
        return not self.postings

    @property
    def facets_uncounted(self) -> bool:
        """Some choice lists show no numbers: too many jobs match to count them on a page."""
        return any(count is None for f in self.facets for _v, _l, count, _s in f.options)

    @property
    def fresh_for(self) -> float:
        """Seconds this page's counts stay within their promised age (``pagecache``)."""
        if self.counted_at is None:
            return float(settings.PAGE_CACHE_SECONDS)
        return settings.FACET_CACHE_SECONDS - (time.time() - self.counted_at)


def browse(params: QueryDict) -> JobList:
    notices: list[str] = []
    filterset = PostingFilter(params, queryset=Posting.objects.for_job_list())
    for name, errors in filterset.errors.items():
        label = filterset.filters[name].label or name.replace("_", " ").capitalize()
        notices.append(f"{label}: {' '.join(errors)} This filter was ignored.")
    queryset = filterset.qs
    keywords = (filterset.form.cleaned_data.get("q") or "").strip()
    if filterset.ignored_keywords:
        notices.append(
            f"“{keywords[:60]}” has only words too common to search for; showing every job."
        )
        keywords = ""
    searching = bool(keywords)

    sort_choices = [(k, s.label) for k, s in SORTS.items() if k != "relevance" or searching]
    default_sort = "relevance" if searching else "newest"
    sort_key = params.get("sort") or default_sort
    if sort_key not in SORTS or (sort_key == "relevance" and not searching):
        if sort_key != "relevance":
            notices.append(
                f'Unknown sort "{sort_key[:40]}"; sorted by {SORTS[default_sort].label.lower()}.'
            )
        sort_key = default_sort
    sort = SORTS[sort_key]
    if sort.field == "deadline_key":
        queryset = queryset.annotate(deadline_key=deadline_key())
        if not filterset.form.cleaned_data.get("include_closed"):
            # Open listings only: the same bound on the key, for the index walk to start at.
            queryset = queryset.filter(deadline_key__gt=timezone.now())

    per_page = settings.POSTINGS_PER_PAGE
    cap = settings.POSTINGS_COUNT_CAP
    active = filterset.active_filters
    # The snapshot counts these filters' jobs (at most a minute old); others cost a capped count.
    cube = facets.current_cube() if facets.covers(active) else None
    few = _few_match(active, cube, searching)
    newest_ids: list[int] = []
    # Counted live (not from the minute-old snapshot): no match then means no rows to look for.
    counted_live = cube is None
    if cube is not None:
        count = cube.total(active)
        capped = False
    elif few:  # at most FEW_MATCHES by the snapshot: counted whole, matches first
        count = queryset.order_by().count()
        capped = False
    elif searching:
        # The newest matches' ids, newest first: the count, and what relevance ranks (found in
        # two steps: see search.newest_match_ids).
        cap = settings.POSTINGS_SEARCH_COUNT_CAP
        newest_ids = newest_match_ids(queryset, cap + 1)
        count = len(newest_ids)
        capped = count > cap
    else:  # a company, a salary: index-only over posting_pub_recent, or their own indexes
        count = queryset.order_by().values("pk")[: cap + 1].count()
        capped = count > cap
    if (
        active.get("posted")
        and not active.get("include_closed")
        and sort.field not in (None, "posted_at")
        and connection.vendor == "postgresql"
    ):
        # The listings of the last days, most viewed or closing soonest: the newest have the
        # fewest views and the latest deadlines, so a walk in that order meets them last (the
        # last week, most viewed: 67,000 entries). The days' listings are few: found first.
        few = True

    page_number = _page_number(params.get("page"), notices)
    filter_query = _encode(params, exclude=LIST_PARAMS)
    base_query = _encode(params, exclude=("page", "after", "before"))

    result = JobList(
        filterset=filterset,
        postings=[],
        sort=sort_key,
        sort_choices=sort_choices,
        page_number=page_number,
        count=min(count, cap) if capped else count,
        count_is_capped=capped,
        notices=notices,
        count_cap=cap,
        filter_query=filter_query,
        searching=searching,
    )

    if counted_live and count == 0:
        # The statement that counted found none a moment ago: the pages' queries would walk
        # the same index entries again (twice for a page past the first) to find none.
        queryset = queryset.none()
    if sort.field is None and connection.vendor != "postgresql":
        # Without PostgreSQL there is no ranking: best effort is newest first.
        queryset = queryset.order_by("-posted_at", "-pk")
        _page_by_offset(result, queryset, per_page, base_query, with_cursor=None)
    elif sort.field is None:
        # Ranking every match of a common word costs seconds: rank the newest matches only, as
        # many as relevance pages go (the page says so when there are more).
        window = min(settings.POSTINGS_MAX_OFFSET_PAGE * per_page, cap)
        result.ranked_among = window if capped or count > window else None
        ranked = RankedMatches(newest_ids[:window], keywords)
        _page_by_offset(result, ranked, per_page, base_query, with_cursor=None)
    else:
        after, before = params.get("after"), params.get("before")
        if after or before:
            try:
                value, pk = decode_cursor(after or before, sort)
            except BadCursor:
                notices.append("That page link is no longer valid; here is the first page.")
                result.page_number = 1
                _page_by_offset(
                    result,
                    IdsFirst(queryset.order_by(*_ordering(sort, forward=True, few=few))),
                    per_page,
                    base_query,
                    with_cursor=sort,
                )
            else:
                _page_by_cursor(
                    result, queryset, sort, value, pk, bool(after), per_page, base_query, few
                )
        else:
            _page_by_offset(
                result,
                IdsFirst(queryset.order_by(*_ordering(sort, forward=True, few=few))),
                per_page,
                base_query,
                with_cursor=sort,
            )

    if cube is not None:
        result.counted_at = cube.counted_at
    if result.page_number == 1 and result.next_query is None:  # every match is on this page
        result.count, result.count_is_capped = len(result.postings), False
    result.facets = facets_for(params, filterset, cube, result.count_is_capped, cap)
    return result


# At most this many listings matching by the counts snapshot: found first, then sorted.
FEW_MATCHES = 1000


def _few_match(active: dict[str, object], cube: facets.Cube | None, searching: bool) -> bool:
    """Whether the snapshot says at most ``FEW_MATCHES`` listings match the filters it counts
    that the listings' own indexes can narrow down (the company type is the company's, and
    narrowed down by reading rows); not for keywords, which have a way of their own. The
    snapshot may be a minute old: it chooses how to find the listings, never which."""
    if searching or connection.vendor != "postgresql":
        return False
    counted = {
        name: value
        for name, value in active.items()
        if name in facets.SNAPSHOT_FILTERS
        and name != "company_type"
        and facets.covers({name: value})
    }
    if not set(counted) & facets.CUBE_FILTERS:  # no choice made that it counts
        return False
    return (cube or facets.current_cube()).total(counted) <= FEW_MATCHES


class RankedMatches:
    """Matches in relevance order (then newest), sliced like a queryset for the offset pages.

    The order is worked out from ids, ranks and dates alone (one query over at most a window of
    rows); only the page's own cards are then fetched with their companies. Ranking and joining
    in one statement made PostgreSQL hash every company for the sake of a 20-row page."""

    def __init__(self, ids: list[int], keywords: str) -> None:
        self.ids, self.keywords = ids, keywords  # newest first: by -posted_at, then -pk

    @cached_property
    def order(self) -> list[int]:
        if not self.ids:
            return []
        # The ids as one array, not a placeholder each: psycopg splits a statement of 500 of
        # them (too long for its cache) anew on every search, 2 ms of the request.
        matches = Posting.objects.filter(AnyOf(F("pk"), self.ids)).order_by()  # sorted here
        rows = with_rank(matches, self.keywords).values_list("pk", "rank")
        # The most relevant first, then the newest: the ids' own order, not their dates again.
        newest = {pk: position for position, pk in enumerate(self.ids)}
        return [pk for pk, _rank in sorted(rows, key=lambda row: (-row[1], newest[row[0]]))]

    def __getitem__(self, part: slice) -> list[Posting]:
        wanted = self.order[part]
        found = Posting.objects.for_job_list().in_bulk(wanted) if wanted else {}
        return [found[pk] for pk in wanted if pk in found]


class AnyOf(Lookup):
    """``column = ANY(%s)``, PostgreSQL's ``IN`` with the values in one array parameter."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self) -> list[int]:
        return [int(value) for value in self.rhs]

    def as_sql(self, compiler, connection) -> tuple[str, list]:
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*params, self.rhs]


def _page_number(raw: str | None, notices: list[str]) -> int:
    if raw in (None, ""):
        return 1
    try:
        number = int(raw)
    except ValueError:
        number = 0
    if number < 1:
        notices.append(f'"{raw[:20]}" is not a page number; here is the first page.')
        return 1
    return number


class IdsFirst:
    """An ordered list of postings, sliced like a queryset, whose rows are read by id.

    The page's ids are found by the filters and the order alone, in a subquery: PostgreSQL can
    answer that from the narrow index ``posting_pub_recent`` without reading a single row, so
    a filter that matches few of the newest listings costs a walk over index entries, not over
    rows. Only the page's own rows are then read, with their companies: still one statement."""

    def __init__(self, queryset: PostingQuerySet) -> None:
        self.queryset = queryset

    def __getitem__(self, part: slice) -> list[Posting]:
        ids = self.queryset.values("pk")[part]
        rows = Posting.objects.for_job_list()
        if "deadline_key" in self.queryset.query.annotations:  # the cursor reads it
            rows = rows.annotate(deadline_key=deadline_key())
        return list(rows.filter(pk__in=ids).order_by(*self.queryset.query.order_by))


def _page_by_offset(result: JobList, queryset, per_page: int, base_query: str, *, with_cursor):
    number = result.page_number or 1
    max_page = settings.POSTINGS_MAX_OFFSET_PAGE
    last_page = max(1, -(-result.count // per_page))
    if not result.count_is_capped and number > last_page:
        result.notices.append(
            f"There {'is only 1 page' if last_page == 1 else f'are only {last_page} pages'} "
            f"of jobs for these filters; here is page {last_page}."
        )
        number = last_page
    elif number > max_page:
        result.notices.append(
            f"Page {number} can't be opened directly (pages past {max_page} are reached with "
            f'"Next"); here is page {max_page}.'
        )
        number = max_page
    result.page_number = number
    start = (number - 1) * per_page
    rows = list(queryset[start : start + per_page + 1])
    if not rows and number > 1:
        result.notices.append(f"There is no page {number} for these filters; here is the first.")
        number = result.page_number = 1
        rows = list(queryset[: per_page + 1])
    has_next = len(rows) > per_page
    result.postings = rows[:per_page]
    if number > 1:
        result.prev_query = _join(base_query, page=number - 1)
    if has_next:
        if with_cursor is not None:
            last = result.postings[-1]
            cursor = encode_cursor(getattr(last, with_cursor.field), last.pk)
            result.next_query = _join(base_query, page=number + 1, after=cursor)
        elif number < max_page:
            result.next_query = _join(base_query, page=number + 1)
        else:
            result.notices.append(
                f"These are the {max_page * per_page:,} newest matches, most relevant first. Add "
                "words to your search, or sort by newest, to see more."
            )


def _page_by_cursor(result, queryset, sort, value, pk, forward, per_page, base_query, few):
    rows = IdsFirst(
        queryset.filter(_keyset(sort, value, pk, forward=forward)).order_by(
            *_ordering(sort, forward=forward, few=few)
        )
    )[: per_page + 1]
    more = len(rows) > per_page
    rows = rows[:per_page]
    if not rows:
        result.notices.append("There are no more jobs past this point; here is the first page.")
        result.page_number = 1
        ordered = IdsFirst(queryset.order_by(*_ordering(sort, forward=True, few=few)))
        _page_by_offset(result, ordered, per_page, base_query, with_cursor=sort)
        return
    if forward:
        has_prev, has_next = True, more
        number = max(result.page_number or 2, 2)
    else:
        rows.reverse()
        has_prev, has_next = more, True
        number = max(result.page_number or 1, 2) if more else 1
    result.postings = rows
    result.page_number = number

    def cursor_of(posting: Posting) -> str:
        return encode_cursor(getattr(posting, sort.field), posting.pk)

    if has_prev:
        result.prev_query = (
            base_query
            if number == 2
            else _join(base_query, page=number - 1, before=cursor_of(rows[0]))
        )
    if has_next:
        result.next_query = _join(base_query, page=number + 1, after=cursor_of(rows[-1]))


def _encode(params: QueryDict, exclude: tuple[str, ...]) -> str:
    kept = QueryDict(mutable=True)
    for key in params:
        if key not in exclude and any(v != "" for v in params.getlist(key)):
            kept.setlist(key, [v for v in params.getlist(key) if v != ""])
    return kept.urlencode()


def _join(base_query: str, **extra: object) -> str:
    tail = QueryDict(mutable=True)
    for key, value in extra.items():
        tail[key] = str(value)
    return "&".join(part for part in (base_query, tail.urlencode()) if part)


# --- Facet counts -------------------------------------------------------------------------------


def facets_for(
    params: QueryDict,
    filterset: PostingFilter,
    cube: facets.Cube | None,
    capped: bool,
    cap: int,
) -> list[Facet]:
    """The filter panel's choice lists, each choice with its count given every *other* filter:
    from the snapshot when it covers the filters, else counted live when few jobs match, else
    none (``None``). See ``postings/facets.py``."""
    canonical = canonical_filters(filterset)
    key = canonical.urlencode()
    counts: dict[str, dict[str, int] | None]
    if cube is not None:
        counts = dict(facets.snapshot_counts(cube, key, filterset.active_filters))
    elif capped:  # more matches than we count: so has every choice list's wider set
        counts = {name: None for name, _column, _choices in facets.FACETS} | {"posted": None}
    else:
        digest = hashlib.sha256(f"{cap}:{key}".encode()).hexdigest()
        counts = facets.cached(f"facets:few:{digest}", lambda: facets.count_few(canonical, cap))
    cleaned = filterset.form.cleaned_data
    result = []
    for name, _column, choices in facets.FACETS:
        selected = set(cleaned.get(name) or [])
        numbers = counts[name]
        result.append(
            Facet(
                name=name,
                label=str(filterset.filters[name].label or name.replace("_", " ").capitalize()),
                options=[
                    (value, str(label), _number(numbers, value), value in selected)
                    for value, label in choices
                ],
            )
        )
    chosen = cleaned.get("posted") or ""
    result.append(
        Facet(
            name="posted",
            label="Date posted",
            options=[
                (value, str(label), _number(counts["posted"], value), value == chosen)
                for value, label in POSTED_CHOICES
            ],
        )
    )
    return result


def _number(numbers: dict[str, int] | None, value: str) -> int | None:
    return None if numbers is None else numbers.get(value, 0)


FREE_TEXT_FILTERS = ("q", "location", "company")


def _ascii_lower(text: str) -> str:
    """Lower case for ASCII letters only: the database's UPPER() of the result is the original's
    (Python's casefold writes "ß" as "ss", which the database compares otherwise)."""
    return "".join(c.lower() if c.isascii() else c for c in text)


def canonical_filters(filterset: PostingFilter) -> QueryDict:
    """The valid filters only, normalized, so that "?q=Engineer&utm_source=x" and "?q=engineer"
    share one cache entry and junk parameters cannot force a recount."""
    canonical = QueryDict(mutable=True)
    for name, value in sorted(filterset.active_filters.items()):
        if isinstance(value, list | tuple):
            canonical.setlist(name, sorted(str(v) for v in value))
        elif isinstance(value, bool):
            canonical[name] = "1"
        elif name == "q":  # words: neither case nor spacing changes what they match
            canonical[name] = " ".join(str(value).lower().split())
        elif name in FREE_TEXT_FILTERS:  # names compared as iexact: ASCII case aside, exactly
            canonical[name] = _ascii_lower(str(value))
        elif isinstance(value, str):  # a choice such as a country code: its case is its value
            canonical[name] = value
        else:
            canonical[name] = str(value)
    return canonical
