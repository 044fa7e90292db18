"""How times read on the pages: the exact time beside each relative one is Django's format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone, translation
from django.utils.dateformat import format as date_format

from postings.templatetags.postings_tags import exact

MOMENTS = [
    datetime(2026, 8, 23, 14, 5, 59, 999999, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
    datetime(999, 5, 7, 3, 4, tzinfo=UTC),  # a year of three digits, written with four
    # New York's clocks: 2026-03-08 02:30 never happens, 2026-11-01 01:30 happens twice.
    datetime(2026, 3, 8, 7, 30, tzinfo=UTC),
    datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
    datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
    datetime(2026, 6, 15, 12, 0, tzinfo=ZoneInfo("Asia/Kolkata")),
]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata", "Europe/Berlin"])
@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_the_exact_time_is_djangos_format(zone, language):
    with timezone.override(ZoneInfo(zone)), translation.override(language):
        for moment in [*MOMENTS, *(m + timedelta(days=40 * i) for i, m in enumerate(MOMENTS))]:
            django = date_format(timezone.localtime(moment), "M j, Y, H:i T")
            assert exact(moment) == django, (moment, zone)


def test_a_time_the_clocks_make_ambiguous_has_no_zone_name_as_in_django():
    with timezone.override(ZoneInfo("America/New_York")):
        twice = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30, the first time
        assert exact(twice) == "Nov 1, 2026, 01:30 "
        assert exact(twice + timedelta(hours=2)) == "Nov 1, 2026, 02:30 EST"
