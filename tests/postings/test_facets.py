"""The counts snapshot's sums: read from per-dimension indexes rather than by scanning every cell,
and exactly the numbers the scan gave, over many random filter combinations."""

from __future__ import annotations

import pickle
import random
import time

import numpy as np
import pytest

from postings import facets
from postings.filters import POSTED_CHOICES, country_codes, location_parts

pytestmark = pytest.mark.django_db  # the places' capitals are PostgreSQL's

COUNTRIES = ["DE", "FR", "US", "GB", "NL", "CH"]
PLACES = ["Berlin", "berlin", "Bavaria", "Paris", "New York", "Amsterdam", "Holland", ""]
FACET_VALUES = {name: [v for v, _l in choices] for name, _c, choices in facets.FACETS}


def generated_cube(rng: random.Random, cells: int) -> facets.Cube:
    """A snapshot of random cells, made as ``build_cube`` makes one from its rows; a few stored
    values that no choice names among them."""
    rows = []
    for _ in range(cells):
        rows.append(
            (
                rng.random() < 0.7,
                rng.randrange(4),
                rng.choice(COUNTRIES),
                rng.choice(PLACES),
                rng.choice(PLACES),
                *(rng.choice([*values, "retired_choice"]) for values in FACET_VALUES.values()),
                rng.randrange(1, 50),
            )
        )
    return facets._cube_of(rows, time.time())


def random_filters(rng: random.Random) -> dict[str, object]:
    filters: dict[str, object] = {}
    for name, values in FACET_VALUES.items():
        if rng.random() < 0.3:
            filters[name] = rng.sample(values, rng.randrange(1, min(4, len(values)) + 1))
    if rng.random() < 0.3:
        filters["country"] = rng.choice([*COUNTRIES, "ZW"])  # ZW: no listing there
    if rng.random() < 0.3:
        filters["posted"] = rng.choice(POSTED_CHOICES)[0]
    if rng.random() < 0.3:
        parts = ["berlin", "BAVARIA", "Germany", "de", "usa", "New York", "Nowhere", "Holland"]
        filters["location"] = ", ".join(rng.sample(parts, rng.randrange(1, 4)))
    if rng.random() < 0.3:
        filters["include_closed"] = True
    return filters


# The sums as they were made before the indexes: a mask over every cell, per choice list.


def scanned_mask(cube: facets.Cube, filters: dict[str, object], skip: str = "") -> np.ndarray:
    mask = np.ones(len(cube.counts), dtype=bool)
    if not filters.get("include_closed"):
        mask &= cube.columns["open"] == 1
    for name, value in filters.items():
        if name == skip or name == "include_closed":
            continue
        if name == "location":
            for part in location_parts(str(value)):
                spellings = cube.places.get(part.upper(), [])
                place = np.isin(cube.columns["city"], spellings) | np.isin(
                    cube.columns["region"], spellings
                )
                known = cube.countries
                codes = [known.index(c) for c in country_codes(part) if c in known]
                if codes:
                    place |= np.isin(cube.columns["country"], codes)
                mask &= place
            continue
        column = cube.columns[name]
        if name == "posted":
            mask &= column <= facets._BUCKET_OF_CHOICE[str(value)]
        elif name == "country":
            if value not in cube.countries:
                return np.zeros(len(cube.counts), dtype=bool)
            mask &= column == cube.countries.index(str(value))
        else:
            mask &= np.isin(column, [facets._code(name, v) for v in value])
    return mask


def scanned_counts(cube: facets.Cube, filters: dict[str, object]) -> dict[str, dict[str, int]]:
    result = {}
    for name, _column, choices in facets.FACETS:
        mask = scanned_mask(cube, filters, skip=name)
        sums = np.bincount(cube.columns[name][mask], weights=cube.counts[mask], minlength=256)
        result[name] = {value: int(sums[i]) for i, (value, _l) in enumerate(choices)}
    mask = scanned_mask(cube, filters, skip="posted")
    per_bucket = np.bincount(cube.columns["posted"][mask], weights=cube.counts[mask], minlength=4)
    result["posted"] = {
        value: int(per_bucket[: bucket + 1].sum())
        for value, bucket in facets._BUCKET_OF_CHOICE.items()
    }
    return result


@pytest.mark.parametrize("without_places_from", [0, facets.WITHOUT_PLACES_FROM_CELLS])
def test_the_indexed_sums_are_the_scanned_sums_for_many_random_filters(
    monkeypatch, without_places_from
):
    # 0: the filters naming no place are summed over the cube without the place dimensions.
    monkeypatch.setattr(facets, "WITHOUT_PLACES_FROM_CELLS", without_places_from)
    rng = random.Random(19)
    cube = generated_cube(rng, 3000)
    for _ in range(400):
        filters = random_filters(rng)
        assert cube.facet_counts(filters) == scanned_counts(cube, filters), filters
        assert cube.total(filters) == int(cube.counts[scanned_mask(cube, filters)].sum()), filters


def test_a_snapshot_of_no_cells_counts_nothing():
    cube = facets._cube_of([], time.time())
    assert cube.total({}) == 0
    assert cube.total({"workplace": ["remote"], "location": "Berlin"}) == 0
    assert all(n == 0 for counts in cube.facet_counts({}).values() for n in counts.values())


def test_a_narrow_filters_cells_come_from_its_index_alone():
    cube = generated_cube(random.Random(7), 2000)
    de = cube.countries.index("DE")
    conditions = cube._conditions({"country": "DE", "include_closed": True})

    cells = cube._matching(conditions)

    assert sorted(cells) == list(np.flatnonzero(cube.columns["country"] == de))
    assert cube._size(conditions[0]) == len(cells)


def test_the_indexes_stay_with_the_process_not_in_the_shared_snapshot(monkeypatch):
    monkeypatch.setattr(facets, "WITHOUT_PLACES_FROM_CELLS", 0)
    cube = generated_cube(random.Random(3), 500)
    counts = cube.facet_counts({"seniority": ["senior"], "location": "Berlin"})
    without_places = cube.facet_counts({"seniority": ["senior"]})
    assert cube.__dict__["_indexes"]  # built by the sums above
    assert cube.__dict__["_without_places"]

    shared = pickle.loads(pickle.dumps(cube))  # noqa: S301 - as the cache stores it

    assert "_indexes" not in shared.__dict__ and "_without_places" not in shared.__dict__
    assert shared.facet_counts({"seniority": ["senior"], "location": "Berlin"}) == counts
    assert shared.facet_counts({"seniority": ["senior"]}) == without_places


def test_filters_naming_no_place_sum_fewer_cells(monkeypatch):
    monkeypatch.setattr(facets, "WITHOUT_PLACES_FROM_CELLS", 0)
    rng = random.Random(5)
    # 30 kinds of job (open or not, age, each choice list's value), each in every place.
    kinds = [
        (rng.random() < 0.7, rng.randrange(4), *(rng.choice(v) for v in FACET_VALUES.values()))
        for _ in range(30)
    ]
    rows = [
        (*kind[:2], country, city, region, *kind[2:], rng.randrange(1, 50))
        for kind in kinds
        for country in COUNTRIES
        for city, region in [("Berlin", "Bavaria"), ("Paris", ""), ("", "Holland")]
    ]
    cube = facets._cube_of(rows, time.time())
    for filters in [{}, {"workplace": ["remote"], "posted": "7"}, {"include_closed": True}]:
        assert cube._for(filters) is cube.__dict__["_without_places"]
    assert cube._for({"country": "DE"}) is cube and cube._for({"location": "Berlin"}) is cube

    smaller = cube._for({})
    assert len(cube.counts) == len(set(rows)) and len(smaller.counts) == len(set(kinds))
    assert int(smaller.counts.sum()) == int(cube.counts.sum())
    assert "country" not in smaller.columns and "city" not in smaller.columns
    assert smaller.facet_counts({}) == scanned_counts(cube, {})


def test_a_small_cube_is_summed_as_it_is():
    cube = generated_cube(random.Random(5), 300)
    assert len(cube.counts) < facets.WITHOUT_PLACES_FROM_CELLS
    assert cube._for({}) is cube
