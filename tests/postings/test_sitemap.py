"""The sitemap of open listings and robots.txt, as a crawler reads them."""

from __future__ import annotations

import fnmatch
import xml.etree.ElementTree as ET
from datetime import timedelta
from urllib.robotparser import RobotFileParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date
from protego import Protego

from postings.factories import (
    ClosedPostingFactory,
    DraftPostingFactory,
    ExpiredPostingFactory,
    PastDeadlinePostingFactory,
    PendingReviewPostingFactory,
    PublishedPostingFactory,
    RemovedPostingFactory,
)
from postings.models import Posting
from postings.sitemaps import PostingSitemap

pytestmark = pytest.mark.django_db

NS = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}
ORIGIN = "http://testserver"
INDEX = reverse("sitemap")
SECTION = reverse("sitemap_section", kwargs={"section": "postings"})


def parse(response) -> ET.Element:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    return ET.fromstring(response.content)  # noqa: S314 (our own server's XML)


def entries(client, url: str = SECTION, **params) -> dict[str, str | None]:
    """Each <url>'s location and its lastmod."""
    root = parse(client.get(url, params))
    return {
        node.findtext("sm:loc", namespaces=NS): node.findtext("sm:lastmod", namespaces=NS)
        for node in root.findall("sm:url", NS)
    }


def index_locations(client, **extra) -> list[str]:
    root = parse(client.get(INDEX, **extra))
    return [node.findtext("sm:loc", namespaces=NS) for node in root.findall("sm:sitemap", NS)]


def day(moment) -> str:
    """A sitemap's <lastmod>: the date in the site's time zone."""
    return timezone.localdate(moment).isoformat()


def absolute(posting: Posting) -> str:
    return ORIGIN + posting.get_absolute_url()


def test_sitemap_lists_open_listings_only(client):
    open_ones = [PublishedPostingFactory(), PublishedPostingFactory(deadline=None)]
    for factory in (
        ClosedPostingFactory,
        ExpiredPostingFactory,
        PastDeadlinePostingFactory,  # still "published": no worker has expired it yet
        DraftPostingFactory,
        PendingReviewPostingFactory,
        RemovedPostingFactory,
    ):
        factory()

    assert list(entries(client)) == [absolute(p) for p in sorted(open_ones, key=lambda p: p.pk)]


def test_lastmod_is_the_date_of_the_last_change_or_of_posting(client):
    now = timezone.now()
    edited = PublishedPostingFactory(
        posted_at=now - timedelta(days=20), updated_at=now - timedelta(days=2)
    )
    never_edited = PublishedPostingFactory(posted_at=now - timedelta(days=5), updated_at=None)

    lastmods = entries(client)

    assert lastmods[absolute(edited)] == day(edited.updated_at)
    assert lastmods[absolute(never_edited)] == day(never_edited.posted_at)


def test_a_page_says_when_its_latest_listing_changed_and_asks_not_to_be_indexed(client):
    now = timezone.now().replace(microsecond=0)
    PublishedPostingFactory(posted_at=now - timedelta(days=9), updated_at=now - timedelta(days=3))
    PublishedPostingFactory(posted_at=now - timedelta(days=2), updated_at=None)
    response = client.get(SECTION)
    assert response["Last-Modified"] == http_date((now - timedelta(days=2)).timestamp())
    assert response["X-Robots-Tag"] == "noindex, noodp, noarchive"
    assert int(response["Content-Length"]) == len(response.content)


def test_a_page_holds_ten_thousand_ids():
    assert PostingSitemap.limit == 10_000  # as the sitemap protocol's readers were told


def test_a_listing_that_closes_leaves_the_sitemap(client):
    staying, closing = PublishedPostingFactory(), PublishedPostingFactory()
    assert set(entries(client)) == {absolute(staying), absolute(closing)}

    closing.status = Posting.Status.CLOSED
    closing.closed_at = timezone.now()
    closing.save()

    assert set(entries(client)) == {absolute(staying)}


def test_a_new_slug_is_the_new_location(client):
    posting = PublishedPostingFactory(title="Data Analyst")
    posting.title, posting.slug = "Senior Data Analyst", "senior-data-analyst"
    posting.save()

    assert list(entries(client)) == [ORIGIN + f"/jobs/{posting.pk}-senior-data-analyst/"]


def test_many_listings_are_split_into_pages_that_the_index_lists(client, monkeypatch):
    monkeypatch.setattr(PostingSitemap, "limit", 2)
    postings = PublishedPostingFactory.create_batch(5)

    locations = index_locations(client)

    # Pages are ranges of 2 ids from the lowest id rounded down to an even number: 3 pages for
    # 5 ids that start at an odd number, 3 for 5 that start at an even one (1 + 2 + 2).
    section = ORIGIN + SECTION
    assert locations == [section, f"{section}?p=2", f"{section}?p=3"]
    pages = [entries(client, p=page) for page in (1, 2, 3)]
    assert all(1 <= len(page) <= 2 for page in pages)
    listed = [loc for page in pages for loc in page]
    assert listed == [absolute(p) for p in sorted(postings, key=lambda p: p.pk)]  # by id, once


@pytest.mark.parametrize("page", ["abc", "0", "-1", "4", "2.5", "9" * 30])
def test_a_page_that_does_not_exist_is_not_found(client, monkeypatch, page):
    monkeypatch.setattr(PostingSitemap, "limit", 2)
    PublishedPostingFactory.create_batch(5)

    assert client.get(SECTION, {"p": page}).status_code == 404


def test_an_unknown_section_is_not_found(client):
    assert client.get(reverse("sitemap_section", kwargs={"section": "nope"})).status_code == 404


def test_an_empty_board_has_an_empty_first_page(client):
    assert entries(client) == {}
    assert index_locations(client) == [ORIGIN + SECTION]


def test_urls_follow_the_scheme_of_the_request(client):
    posting = PublishedPostingFactory()

    assert index_locations(client, secure=True) == ["https://testserver" + SECTION]
    root = parse(client.get(SECTION, secure=True))
    assert [n.text for n in root.iter(f"{{{NS['sm']}}}loc")] == [
        "https://testserver" + posting.get_absolute_url()
    ]


def test_the_index_costs_one_query_and_reads_no_listing(client):
    PublishedPostingFactory.create_batch(5)

    with CaptureQueriesContext(connection) as queries:
        root = parse(client.get(INDEX))

    assert [n.text for n in root.iter(f"{{{NS['sm']}}}loc")] == [ORIGIN + SECTION]
    assert root.find("sm:sitemap/sm:lastmod", NS) is None  # each page's entries have theirs
    assert len(queries) == 1  # the lowest and highest ids
    assert all("OFFSET" not in q["sql"] and "COUNT" not in q["sql"] for q in queries)


def test_a_sitemap_page_does_not_load_descriptions(client):
    PublishedPostingFactory.create_batch(3)

    with CaptureQueriesContext(connection) as queries:
        assert len(entries(client)) == 3

    assert len(queries) <= 2  # a count for the paginator, and the page
    assert all("description" not in q["sql"] for q in queries)


# --- robots.txt -----------------------------------------------------------------------------


def robots_rules(client) -> tuple[list[str], list[str], list[str]]:
    response = client.get(reverse("robots_txt"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    lines = response.content.decode().splitlines()
    assert lines[0] == "User-agent: *"

    def values(field: str) -> list[str]:
        return [line.split(":", 1)[1].strip() for line in lines if line.startswith(f"{field}:")]

    return values("Allow"), values("Disallow"), values("Sitemap")


def blocked(path: str, disallowed: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, rule + "*") for rule in disallowed)


def test_robots_points_at_the_absolute_sitemap(client):
    _allow, _disallow, sitemaps = robots_rules(client)

    assert sitemaps == [ORIGIN + INDEX]


def test_robots_allows_listings_and_disallows_private_areas_and_actions(client):
    posting = PublishedPostingFactory()
    allow, disallow, _sitemaps = robots_rules(client)

    assert allow == ["/"]
    for path in (
        reverse("postings:apply", args=[posting.pk]),
        reverse("postings:apply_thanks", args=[posting.pk]),
        reverse("reporting:report", args=[posting.pk]),
        reverse("employer:dashboard"),
        reverse("employer:posting_edit", args=[posting.pk]),
        reverse("accounts:login"),
        reverse("moderation:queue"),
        reverse("admin:index"),
    ):
        assert blocked(path, disallow), path
    for path in (
        reverse("postings:list"),
        posting.get_absolute_url(),
        reverse("postings:short", args=[posting.pk]),
        reverse("postings:feed_rss"),
        reverse("postings:feed_atom"),
        INDEX,
        SECTION,
    ):
        assert not blocked(path, disallow), path


def private_and_public_paths(posting: Posting) -> tuple[list[str], list[str]]:
    private = [
        reverse("postings:apply", args=[posting.pk]),
        reverse("postings:apply_thanks", args=[posting.pk]),
        reverse("reporting:report", args=[posting.pk]),
        reverse("employer:dashboard"),
        reverse("employer:posting_edit", args=[posting.pk]),
        reverse("accounts:login"),
        reverse("alerts:subscribe"),
        reverse("moderation:queue"),
        reverse("admin:index"),
    ]
    public = [
        "/",
        reverse("postings:list"),
        posting.get_absolute_url(),
        reverse("postings:short", args=[posting.pk]),
        reverse("postings:feed_rss"),
        INDEX,
    ]
    return private, public


def test_robots_disallow_rules_come_before_the_allow_so_first_match_readers_agree(client):
    """Python's urllib.robotparser takes the first rule that matches: with "Allow: /" first it
    read every private path as allowed. It reads "*" literally, so the two rules with a wildcard
    are checked as written (a crawler asking for the rule's own address is refused)."""
    posting = PublishedPostingFactory()
    robots = RobotFileParser()
    robots.parse(client.get(reverse("robots_txt")).content.decode().splitlines())
    _allow, disallow, _sitemaps = robots_rules(client)
    private, public = private_and_public_paths(posting)

    for rule in disallow:
        assert not robots.can_fetch("AnyBot", ORIGIN + rule), rule
    for path in private:
        if not any("*" in rule and blocked(path, [rule]) for rule in disallow):
            assert not robots.can_fetch("AnyBot", ORIGIN + path), path
    for path in public:
        assert robots.can_fetch("AnyBot", ORIGIN + path), path


def test_the_pages_only_wildcard_rules_disallow_say_noindex_themselves(client):
    """urllib.robotparser (and crawlers like it) read "/jobs/*/apply/" literally and would fetch
    and index the apply and report forms; the pages themselves tell every crawler not to."""
    posting = PublishedPostingFactory(applies_on_board=True, apply_url="")
    robots = RobotFileParser()
    robots.parse(client.get(reverse("robots_txt")).content.decode().splitlines())
    for name in ("postings:apply", "reporting:report"):
        url = reverse(name, args=[posting.pk])
        assert robots.can_fetch("AnyBot", ORIGIN + url)  # what such a reader makes of the rules
        html = client.get(url).content.decode()
        assert '<meta name="robots" content="noindex">' in html, url


def test_robots_is_read_alike_by_a_longest_match_reader_with_wildcards(client):
    """Protego reads robots.txt as Google does: the longest matching rule wins, "*" matches
    anything."""
    posting = PublishedPostingFactory()
    robots = Protego.parse(client.get(reverse("robots_txt")).content.decode())
    private, public = private_and_public_paths(posting)

    for path in private:
        assert not robots.can_fetch(ORIGIN + path, "AnyBot"), path
    for path in public:
        assert robots.can_fetch(ORIGIN + path, "AnyBot"), path


def test_robots_follows_the_scheme_of_the_request(client):
    response = client.get(reverse("robots_txt"), secure=True)

    assert f"Sitemap: https://testserver{INDEX}" in response.content.decode()
