"""How times read on the pages: the exact time beside each relative one is Django's format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import NoReverseMatch, set_script_prefix
from django.utils import timezone, translation
from django.utils.dateformat import format as date_format

from postings.models import Posting
from postings.templatetags.postings_tags import (
    Rendering,
    deadline_state,
    exact,
    relative,
    timestamp,
)

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


def _closed_on(moment: datetime) -> str:
    """The closed card's text as Django's templates wrote it before: ``date_format`` "M j, Y"."""
    local = timezone.localtime(moment)
    return (
        f'closed on <time datetime="{local.isoformat(timespec="seconds")}" '
        f'title="{date_format(local, "M j, Y, H:i T")}">{date_format(local, "M j, Y")}</time>'
    )


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize("language", ["en", "de"])
def test_a_page_rendering_gives_the_cards_the_same_times_as_looking_them_up(zone, language):
    """The list looks the time, zone and month names up once (``Rendering``) for all its cards."""
    with timezone.override(ZoneInfo(zone)), translation.override(language):
        clock = Rendering.current()
        for moment in MOMENTS:
            # The time moved on a little between the page's rendering and this check: same words.
            fresh = timestamp(moment).replace(relative(moment, clock.now), "")
            assert (
                timestamp(moment, rendering=clock).replace(relative(moment, clock.now), "") == fresh
            )
            assert str(timestamp(moment, rendering=clock)).count('title="') == 1
            closed = Posting(status=Posting.Status.CLOSED, closed_at=moment)
            assert deadline_state(closed, rendering=clock) == deadline_state(closed)
            assert _closed_on(moment) in deadline_state(closed, rendering=clock)
        soon = Posting(status=Posting.Status.PUBLISHED, deadline=clock.now + timedelta(days=3))
        assert deadline_state(soon, rendering=clock) == deadline_state(soon)
        assert ">in 3 days</time>" in deadline_state(soon, rendering=clock)
        assert timestamp(None, rendering=clock) == '<span class="muted">not yet</span>'


def test_a_page_rendering_gives_the_cards_their_links_and_places_as_the_listing_does():
    """A card's link and place from the page's language and address prefix, looked up once."""
    posting = Posting(pk=41, slug="paralegal", city="Köln", region="", country="DE")
    for language in ("en", "de"):
        with translation.override(language):
            rendering = Rendering.current()
            assert rendering.url(posting) == posting.get_absolute_url() == "/jobs/41-paralegal/"
            assert rendering.place(posting) == posting.location_display
    with translation.override("de"):
        assert Rendering.current().place(posting) == "Köln, Deutschland"
    set_script_prefix("/board/")
    try:
        assert Rendering.current().url(posting) == "/board/jobs/41-paralegal/"
    finally:
        set_script_prefix("/")
    posting.slug = "not a slug"  # reversed, as Django would, and refused there
    with pytest.raises(NoReverseMatch):
        Rendering.current().url(posting)
