"""The numbers beside the filter panel's choices, and the list's count, without counting a
million rows per request.

Each choice's number is how many jobs the list would show with that choice ticked, given every
*other* filter that is on. Counted live, that is six ``GROUP BY`` statements over most of the
table for every combination of filters: seconds at a million listings. Instead:

- **The snapshot** (``Cube``): once a minute one statement counts the public listings per cell
  of open or ended, age (a day, a week, a month, older), country, city, region, workplace,
  employment type, seniority, practice area and company type. The counts for any combination of
  those filters (the place filter's names of a city, a region or a country among them)
  are sums over the cells (numpy, a millisecond or two: each process indexes the snapshot's
  cells by each dimension's value, so a sum reads the cells of the narrowest filter rather
  than every cell, and sums the filters that name no place over the cells added up across
  places, an eighth as many), so they and the list's count are at most
  ``FACET_CACHE_SECONDS`` old, as the panel says. Beat refreshes it
  (``postings.tasks.refresh_facet_counts``); without beat, the first request after it has gone
  stale does, while the others keep using the previous one.
- **Other filters** (keywords, company, salary; a place spelled with letters beyond ASCII, whose
  capitals Python and PostgreSQL may write differently) are not in the snapshot. When the jobs
  they match are few (``POSTINGS_COUNT_CAP`` at most), one statement reads those jobs' cells
  into a small cube of their own, and the numbers are summed from it as from the snapshot. Past
  that the choices show no number (the panel says why) rather than a guess.
"""

from __future__ import annotations

import logging
import time
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import BooleanField, Case, Count, IntegerField, Q, Value, When
from django.http import QueryDict
from django.utils import timezone

from .filters import POSTED_CHOICES, POSTED_WITHIN, PostingFilter, country_codes, location_parts
from .models import Company, Posting

logger = logging.getLogger(__name__)

# The choice lists shown with numbers, and the column each counts.
FACETS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("workplace", "workplace", Posting.Workplace.choices),
    ("employment_type", "employment_type", Posting.EmploymentType.choices),
    ("seniority", "seniority", Posting.Seniority.choices),
    ("practice_area", "practice_area", Posting.PracticeArea.choices),
    ("company_type", "company__company_type", Company.CompanyType.choices),
]
# The snapshot's dimensions: the filters it can answer for, beside "include closed".
CUBE_FILTERS = frozenset({name for name, _c, _o in FACETS} | {"posted", "country", "location"})
SNAPSHOT_FILTERS = CUBE_FILTERS | {"include_closed"}

# Age buckets: 0 = the last day, 1 = the last week, 2 = the last month, 3 = older.
_WINDOWS = [POSTED_WITHIN[value] for value, _label in POSTED_CHOICES]
_BUCKET_OF_CHOICE = {value: bucket for bucket, (value, _label) in enumerate(POSTED_CHOICES)}
UNKNOWN = 255  # a stored value no choice names (it still counts when that filter is off)

CUBE_KEY = "facets:cube:v2"
STAMP_KEY = "facets:cube:v2:stamp"
LOCK_KEY = "facets:cube:v2:lock"


@dataclass(frozen=True)
class Cube:
    """Public listings counted per cell; one array per dimension, one entry per cell."""

    stamp: str
    counted_at: float  # time.time()
    countries: tuple[str, ...]
    # A city's or region's name in capitals -> the codes, in both columns, of its spellings.
    places: dict[str, list[int]]
    columns: dict[str, np.ndarray]
    counts: np.ndarray

    @property
    def age(self) -> float:
        return time.time() - self.counted_at

    def __getstate__(self) -> dict:
        # The indexes are rebuilt by each process that uses the snapshot, not shipped with it.
        return {k: v for k, v in self.__dict__.items() if k not in _DERIVED}

    def _for(self, filters: dict[str, object]) -> Cube:
        """The cube to sum for these filters: this one, or when they name no place (the whole
        list, and most lists), the same counts without the place dimensions."""
        if filters.keys() & PLACE_FILTERS or len(self.counts) < WITHOUT_PLACES_FROM_CELLS:
            return self
        if "_without_places" not in self.__dict__:
            self.__dict__["_without_places"] = self._without_places()  # frozen: kept beside
        return self.__dict__["_without_places"]

    def _without_places(self) -> Cube:
        """The cells summed over their country, city and region: the snapshot's 240,000 cells
        of a million listings are 30,000 without them, and each sum reads them all."""
        kept = [name for name in self.columns if name not in PLACE_DIMENSIONS]
        key = np.zeros(len(self.counts), dtype=np.int64)
        for name in kept:  # each a code under 256: one byte of the key each
            key = (key << 8) | self.columns[name]
        cells, inverse = np.unique(key, return_inverse=True)
        # Whole numbers below 2**53 are summed exactly in floating point.
        counts = np.bincount(inverse, weights=self.counts, minlength=len(cells)).astype(np.int64)
        columns = {}
        for name in reversed(kept):
            columns[name] = (cells & 0xFF).astype(np.uint8)
            cells = cells >> 8
        return Cube(self.stamp, self.counted_at, (), {}, columns, counts)

    def _index(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The cells ordered by this dimension's code, and where each code's run starts: the
        cells holding code ``c`` are ``order[starts[c]:starts[c + 1]]``, found without a scan."""
        indexes = self.__dict__.setdefault("_indexes", {})  # frozen: kept beside the fields
        if name not in indexes:
            column = self.columns[name]
            order = np.argsort(column, kind="stable").astype(np.int32)
            starts = np.zeros(int(column.max(initial=0)) + 2, dtype=np.int64)
            np.cumsum(np.bincount(column, minlength=len(starts) - 1), out=starts[1:])
            indexes[name] = (order, starts)
        return indexes[name]

    def _conditions(self, filters: dict[str, object], skip: str = "") -> list[Condition]:
        """The filters as conditions on the cells, each met when any of its (dimension, codes)
        holds; all of them must be met."""
        conditions: list[Condition] = []
        if not filters.get("include_closed"):
            conditions.append([("open", [1])])
        for name, value in filters.items():
            if name == skip or name == "include_closed":
                continue
            if name == "location":
                conditions.extend(self._place(part) for part in location_parts(str(value)))
            elif name == "posted":
                conditions.append([("posted", list(range(_BUCKET_OF_CHOICE[str(value)] + 1)))])
            elif name == "country":
                code = str(value)
                known = code in self.countries
                conditions.append([("country", [self.countries.index(code)] if known else [])])
            else:
                conditions.append([(name, [_code(name, v) for v in value])])  # type: ignore[union-attr]
        return conditions

    def _place(self, part: str) -> Condition:
        """The cells whose city or region is this name (as ``iexact``), or whose country it
        names (as ``filters.country_codes``)."""
        spellings = self.places.get(part.upper(), [])
        countries = [self.countries.index(c) for c in country_codes(part) if c in self.countries]
        return [("city", spellings), ("region", spellings), ("country", countries)]

    def _cells_of(self, condition: Condition) -> np.ndarray:
        """The cells meeting a condition, each once, read from the indexes."""
        found: list[np.ndarray] = []
        for i, (name, codes) in enumerate(condition):
            order, starts = self._index(name)
            runs = [order[starts[c] : starts[c + 1]] for c in codes if c + 1 < len(starts)]
            cells = np.concatenate(runs) if runs else np.empty(0, dtype=np.int32)
            if i:  # not those an earlier alternative already found
                cells = cells[~self._meets(condition[:i], cells)]
            found.append(cells)
        return np.concatenate(found) if found else np.empty(0, dtype=np.int32)

    def _meets(self, condition: Condition, cells: np.ndarray) -> np.ndarray:
        """Which of these cells meet the condition: a table lookup per cell, no scan."""
        met = np.zeros(len(cells), dtype=bool)
        for name, codes in condition:
            _order, starts = self._index(name)
            wanted = np.zeros(len(starts), dtype=bool)  # one entry per code, and one spare
            wanted[[c for c in codes if c + 1 < len(starts)]] = True
            met |= wanted[self.columns[name][cells]]
        return met

    def _size(self, condition: Condition) -> int:
        size = 0
        for name, codes in condition:
            _order, starts = self._index(name)
            size += sum(int(starts[c + 1] - starts[c]) for c in codes if c + 1 < len(starts))
        return size

    def _matching(self, conditions: list[Condition]) -> np.ndarray | slice:
        """The cells meeting every condition: those of the narrowest one, kept when they meet
        the others. Work in proportion to the narrowest condition's cells, not the snapshot's."""
        if not conditions:
            return slice(None)
        narrowest = min(conditions, key=self._size)
        cells = self._cells_of(narrowest)
        for condition in conditions:
            if condition is not narrowest:
                cells = cells[self._meets(condition, cells)]
        return cells

    def total(self, filters: dict[str, object]) -> int:
        cube = self._for(filters)
        return int(cube.counts[cube._matching(cube._conditions(filters))].sum())

    def facet_counts(self, filters: dict[str, object]) -> dict[str, dict[str, int]]:
        """Per choice list, per choice: the jobs matching it and every other filter."""
        return self._for(filters)._facet_counts(filters)

    def _facet_counts(self, filters: dict[str, object]) -> dict[str, dict[str, int]]:
        # The lists whose own filter is off share one set of cells: found once.
        found: dict[bool, tuple[np.ndarray | slice, np.ndarray]] = {}

        def sums(name: str, minlength: int) -> np.ndarray:
            shared = name not in filters
            if not shared or shared not in found:
                cells = self._matching(self._conditions(filters, skip=name))
                found[shared] = (cells, self.counts[cells])
            cells, counts = found[shared]
            return np.bincount(self.columns[name][cells], weights=counts, minlength=minlength)

        result: dict[str, dict[str, int]] = {}
        for name, _column, choices in FACETS:
            per_code = sums(name, UNKNOWN + 1)
            result[name] = {value: int(per_code[i]) for i, (value, _l) in enumerate(choices)}
        per_bucket = sums("posted", len(_WINDOWS) + 1)
        result["posted"] = {
            value: int(per_bucket[: bucket + 1].sum())
            for value, bucket in _BUCKET_OF_CHOICE.items()
        }
        return result


# A condition on the cells: met when any of its dimensions holds one of its codes.
Condition = list[tuple[str, list[int]]]
# The filters that read the place dimensions, and those dimensions.
PLACE_FILTERS = frozenset({"country", "location"})
PLACE_DIMENSIONS = frozenset({"country", "city", "region"})
# Smaller cubes (a live count's of a few jobs) are summed as they are: deriving would cost more.
WITHOUT_PLACES_FROM_CELLS = 4096
# What a process works out from a snapshot for itself (``Cube._index``, ``Cube._for``).
_DERIVED = frozenset({"_indexes", "_without_places"})

_CODES: dict[str, dict[str, int]] = {
    name: {value: i for i, (value, _label) in enumerate(choices)} for name, _c, choices in FACETS
}


def _code(name: str, value: object) -> int:
    return _CODES[name].get(str(value), UNKNOWN)


def build_cube(now: datetime | None = None) -> Cube:
    """Count the public listings per cell: one ``GROUP BY`` over the table."""
    now = now or timezone.now()
    started = time.time()  # the counts are as of the statement's start
    rows = _cells(Posting.objects.public(), now).annotate(n=Count("pk"))
    return _cube_of(_fetched(rows), started)


def _cells(queryset, now: datetime):
    """(open, age bucket, country, city, region, each facet's column) of the queryset's
    listings. (Names as written: their capitals, for ``iexact``, are worked out per name in
    ``_capitals``, not per row.)"""
    is_open = Case(
        When(
            Q(status=Posting.Status.PUBLISHED) & (Q(deadline__isnull=True) | Q(deadline__gt=now)),
            then=Value(True),
        ),
        default=Value(False),
        output_field=BooleanField(),
    )
    bucket = Case(
        *[
            When(posted_at__gte=now - window, then=Value(i))
            for i, window in enumerate(sorted(_WINDOWS))
        ],
        default=Value(len(_WINDOWS)),
        output_field=IntegerField(),
    )
    columns = [column for _name, column, _choices in FACETS]
    return (
        queryset.annotate(cell_open=is_open, cell_age=bucket)
        .order_by()
        .values_list("cell_open", "cell_age", "country", "city", "region", *columns)
    )


def _cube_of(rows: Iterable[tuple], started: float) -> Cube:
    """A cube of (open, age, country, city, region, facet values..., count) rows."""
    # Streamed into compact arrays: a cell is a few bytes here, a few hundred as a row tuple.
    codes = {name: array("B") for name in ("open", "posted", *(n for n, _c, _o in FACETS))}
    country_column, city_column, region_column = array("H"), array("I"), array("I")
    counts_list = array("q")
    country_index: dict[str, int] = {}
    names: dict[str, int] = {}
    for row in rows:
        codes["open"].append(1 if row[0] else 0)
        codes["posted"].append(row[1])
        country_column.append(country_index.setdefault(str(row[2]), len(country_index)))
        city_column.append(names.setdefault(row[3] or "", len(names)))
        region_column.append(names.setdefault(row[4] or "", len(names)))
        for offset, (name, _column, _choices) in enumerate(FACETS, start=5):
            codes[name].append(_code(name, row[offset]))
        counts_list.append(row[-1])
    countries = tuple(country_index)  # in order of their index
    arrays = {name: np.frombuffer(values, dtype=np.uint8).copy() for name, values in codes.items()}
    arrays["country"] = np.frombuffer(country_column, dtype=np.uint16).copy()
    arrays["city"] = np.frombuffer(city_column, dtype=np.uint32).copy()
    arrays["region"] = np.frombuffer(region_column, dtype=np.uint32).copy()
    counts = np.frombuffer(counts_list, dtype=np.int64).copy()
    places: dict[str, list[int]] = {}
    for name, capitals in _capitals([name for name in names if name]).items():
        places.setdefault(capitals, []).append(names[name])
    return Cube(uuid.uuid4().hex, started, countries, places, arrays, counts)


def _capitals(names: list[str]) -> dict[str, str]:
    """Each name in capitals as the place filter's ``iexact`` compares it: PostgreSQL's
    UPPER() (asked once for all the names), or on SQLite, whose LIKE folds ASCII letters only,
    the ASCII names' capitals (the others match no place the snapshot answers for)."""
    if connection.vendor != "postgresql":
        return {name: name.upper() for name in names if name.isascii()}
    if not names:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, upper(name) FROM unnest(%s::text[]) AS name", [names])
        return dict(cursor.fetchall())


def _fetched(queryset, batch: int = 10_000) -> Iterator[tuple]:
    """The rows of a ``values_list`` queryset, turned into tuples a batch at a time. (Not
    ``.iterator()``: its server-side cursor makes PostgreSQL plan for the first rows, which
    turned this aggregate from 4 seconds into 13 to 29.)"""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(batch):
            yield from rows


def refresh_cube() -> Cube:
    """Count afresh and share the snapshot with every process through the cache."""
    cube = build_cube()
    try:
        cache.set(CUBE_KEY, cube, settings.FACET_CACHE_SECONDS * 10)
        cache.set(STAMP_KEY, cube.stamp, settings.FACET_CACHE_SECONDS * 10)
    except Exception:
        logger.exception("facet cache unavailable")
    finally:
        _forget_lock()
    _memo["cube"] = cube
    return cube


_memo: dict[str, Cube | None] = {"cube": None}


def current_cube() -> Cube:
    """This process's copy of the snapshot, fetched again when another process counted anew,
    and counted here when it is older than ``FACET_CACHE_SECONDS`` and no one else is at it."""
    cube = _memo["cube"]
    try:
        stamp = cache.get(STAMP_KEY)
        if stamp is None:  # gone from the cache (or never there): count afresh
            cube = None
        elif cube is None or cube.stamp != stamp:
            cube = cache.get(CUBE_KEY) or None
    except Exception:
        logger.exception("facet cache unavailable")
    if cube is None or (cube.age >= settings.FACET_CACHE_SECONDS and _take_lock()):
        cube = refresh_cube()
    _memo["cube"] = cube
    return cube


def _take_lock() -> bool:
    try:
        return bool(cache.add(LOCK_KEY, 1, 60))
    except Exception:
        return True


def _forget_lock() -> None:
    try:
        cache.delete(LOCK_KEY)
    except Exception:
        logger.exception("facet cache unavailable")


def covers(filters: dict[str, object]) -> bool:
    """Whether the snapshot can answer for these (valid, active) filters. A place only when
    spelled in ASCII: the snapshot's names are PostgreSQL's capitals (``iexact``), which are
    Python's only there (PostgreSQL keeps "ß", Python writes "SS")."""
    return set(filters) <= SNAPSHOT_FILTERS and str(filters.get("location", "")).isascii()


# --- Counted live, when the snapshot cannot answer -----------------------------------------------


def count_few(params: QueryDict, cap: int) -> dict[str, dict[str, int] | None]:
    """Per choice list, per choice, the jobs matching it and every other filter, when the filters
    the snapshot cannot answer for (keywords, company, salary, a place beyond ASCII) match at
    most ``cap`` jobs; else None for every list (too many to count on a page).

    One statement reads those jobs' cells, at most ``cap`` + 1 rows, into a cube of their own;
    the snapshot's filters (and their numbers) are then applied to it as to the snapshot."""
    filterset = PostingFilter(params, queryset=Posting.objects.all())
    filterset.is_valid()  # cleans the filters, for active_filters
    active = filterset.active_filters
    in_cube = (
        CUBE_FILTERS
        if covers({"location": active.get("location", "")})
        else (CUBE_FILTERS - {"location"})
    )
    base = QueryDict(mutable=True)
    for name in params:
        if name not in in_cube:  # "include closed" stays: it says which jobs to read
            base.setlist(name, params.getlist(name))
    queryset = PostingFilter(base, queryset=Posting.objects.all()).qs
    now = timezone.now()
    rows = list(_cells(queryset, now).annotate(n=Value(1, IntegerField()))[: cap + 1])
    if len(rows) > cap:
        return {name: None for name, _column, _choices in FACETS} | {"posted": None}
    cube = _cube_of(rows, time.time())
    return cube.facet_counts(
        {k: v for k, v in active.items() if k in in_cube or k == "include_closed"}
    )


# A process keeps the sums of its recent filter combinations for the snapshot they came from.
_sums: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
MAX_REMEMBERED = 512


def snapshot_counts(cube: Cube, key: str, filters: dict[str, object]) -> dict[str, dict[str, int]]:
    remembered = _sums.get((cube.stamp, key))
    if remembered is None:
        if len(_sums) >= MAX_REMEMBERED:
            _sums.clear()
        remembered = _sums[(cube.stamp, key)] = cube.facet_counts(filters)
    return remembered


def cached(key: str, compute: Callable[[], dict]) -> dict:
    """Live counts, kept ``FACET_CACHE_SECONDS`` per combination of filters. A cache that is
    down means counting every time, never an error."""
    try:
        entry = cache.get(key)
    except Exception:
        logger.exception("facet cache unavailable")
        return compute()
    if entry is not None:
        return entry
    counts = compute()
    try:
        cache.set(key, counts, settings.FACET_CACHE_SECONDS)
    except Exception:
        logger.exception("facet cache unavailable")
    return counts
