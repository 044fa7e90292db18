"""RSS and Atom feeds of open listings, read back as a feed reader reads them (feedparser)."""

from __future__ import annotations

import calendar
import html
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import feedparser
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from postings import changes, feeds
from postings.factories import (
    ClosedPostingFactory,
    CompanyFactory,
    DraftPostingFactory,
    ExpiredPostingFactory,
    PastDeadlinePostingFactory,
    PendingReviewPostingFactory,
    PublishedPostingFactory,
    RemovedPostingFactory,
)
from postings.models import Posting

pytestmark = pytest.mark.django_db

RSS = reverse("postings:feed_rss")
ATOM = reverse("postings:feed_atom")
ORIGIN = "http://testserver"


@pytest.fixture(params=[RSS, ATOM], ids=["rss", "atom"])
def feed_url(request) -> str:
    return request.param


def read(client, url: str, query: str = "") -> feedparser.FeedParserDict:
    response = client.get(f"{url}?{query}" if query else url)
    assert response.status_code == 200
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")  # well-formed, as a reader needs
    return parsed


def text(node, key: str = "title") -> str:
    """What a reader shows: an HTML value is unescaped once, plain text is shown as it is."""
    value = node[key]
    return html.unescape(value) if node[f"{key}_detail"].type == "text/html" else value


def titles(parsed) -> list[str]:
    return [text(entry) for entry in parsed.entries]


def entry_title(posting: Posting) -> str:
    return f"{posting.title} at {posting.company.name}"


def timestamp(parsed_time) -> int:
    return calendar.timegm(parsed_time)


def whole_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


# --- What a feed lists ----------------------------------------------------------------------


def test_feeds_list_open_listings_only_newest_first(client, feed_url):
    now = timezone.now()
    older = PublishedPostingFactory(posted_at=now - timedelta(days=5))
    newer = PublishedPostingFactory(posted_at=now - timedelta(days=1))
    undated_deadline = PublishedPostingFactory(posted_at=now - timedelta(days=3), deadline=None)
    for factory in (
        ClosedPostingFactory,
        ExpiredPostingFactory,
        PastDeadlinePostingFactory,  # still "published": no worker has expired it yet
        DraftPostingFactory,
        PendingReviewPostingFactory,
        RemovedPostingFactory,
    ):
        factory()

    parsed = read(client, feed_url)

    assert titles(parsed) == [entry_title(p) for p in (newer, undated_deadline, older)]


def test_include_closed_is_ignored_a_feed_only_advertises_open_jobs(client, feed_url):
    open_one = PublishedPostingFactory()
    ClosedPostingFactory()
    ExpiredPostingFactory()

    parsed = read(client, feed_url, "include_closed=1")

    assert titles(parsed) == [entry_title(open_one)]
    assert "include_closed" not in parsed.feed.link


def test_feed_is_capped(client, feed_url, monkeypatch):
    monkeypatch.setattr(feeds, "FEED_ITEMS", 3)
    now = timezone.now()
    postings = [PublishedPostingFactory(posted_at=now - timedelta(hours=i)) for i in range(5)]

    parsed = read(client, feed_url)

    assert titles(parsed) == [entry_title(p) for p in postings[:3]]


def test_same_posted_at_is_ordered_by_newest_id(client, feed_url):
    moment = timezone.now() - timedelta(days=1)
    first = PublishedPostingFactory(posted_at=moment)
    second = PublishedPostingFactory(posted_at=moment)

    assert titles(read(client, feed_url)) == [entry_title(second), entry_title(first)]


# --- Filters --------------------------------------------------------------------------------


def test_workplace_and_seniority_filters_are_followed(client, feed_url):
    wanted = PublishedPostingFactory(workplace="remote", city="", seniority="senior")
    PublishedPostingFactory(workplace="onsite", seniority="senior")
    PublishedPostingFactory(workplace="remote", city="", seniority="junior")
    ClosedPostingFactory(workplace="remote", city="", seniority="senior")

    parsed = read(client, feed_url, "workplace=remote&seniority=senior")

    assert titles(parsed) == [entry_title(wanted)]
    assert parsed.feed.title == "Jobs · Remote · Senior · Jobboard"
    link = urlsplit(parsed.feed.link)
    assert link.path == reverse("postings:list")
    assert parse_qs(link.query) == {"workplace": ["remote"], "seniority": ["senior"]}


def test_several_values_of_one_filter_are_all_followed(client, feed_url):
    remote = PublishedPostingFactory(workplace="remote", city="")
    hybrid = PublishedPostingFactory(workplace="hybrid")
    PublishedPostingFactory(workplace="onsite")

    parsed = read(client, feed_url, "workplace=remote&workplace=hybrid")

    assert set(titles(parsed)) == {entry_title(remote), entry_title(hybrid)}
    assert parsed.feed.title == "Jobs · Hybrid or Remote · Jobboard"


@pytest.mark.postgres
def test_keyword_search_is_followed(client, feed_url):
    python = PublishedPostingFactory(title="Python Developer", workplace="remote", city="")
    PublishedPostingFactory(title="Accountant", workplace="remote", city="")
    PublishedPostingFactory(title="Python Engineer", workplace="onsite")

    parsed = read(client, feed_url, "q=python&workplace=remote")

    assert titles(parsed) == [entry_title(python)]
    assert parsed.feed.title == "Jobs for “python” · Remote · Jobboard"


@pytest.mark.postgres
def test_keywords_too_common_to_search_for_are_not_claimed_in_the_title(client, feed_url):
    posting = PublishedPostingFactory()

    parsed = read(client, feed_url, "q=the")

    assert titles(parsed) == [entry_title(posting)]
    assert parsed.feed.title == "Jobs · Jobboard"


def test_feed_without_filters_is_titled_for_every_job(client, feed_url):
    parsed = read(client, feed_url)

    assert parsed.feed.title == "Jobs · Jobboard"
    assert parsed.feed.link == ORIGIN + reverse("postings:list")


# --- Each item ------------------------------------------------------------------------------


def test_items_carry_link_guid_dates_author_and_categories(client, feed_url):
    posting = PublishedPostingFactory(
        practice_area="data", seniority="lead", workplace="hybrid", city="Berlin", country="DE"
    )
    posting.refresh_from_db()

    [entry] = read(client, feed_url).entries

    assert text(entry) == entry_title(posting)
    assert entry.link == ORIGIN + posting.get_absolute_url()
    assert entry.id == ORIGIN + reverse("postings:short", args=[posting.pk])
    assert text(entry, "summary") == posting.summary
    assert timestamp(entry.published_parsed) == whole_seconds(posting.posted_at)
    assert entry.author == posting.company.name
    assert {tag.term for tag in entry.tags} == {"Data & analytics", "Lead", "Hybrid"}


def test_rss_guid_is_a_permalink_to_the_short_link(client):
    posting = PublishedPostingFactory()

    content = client.get(RSS).content.decode()

    short = ORIGIN + reverse("postings:short", args=[posting.pk])
    assert f'<guid isPermaLink="true">{short}</guid>' in content
    assert client.get(short).url == posting.get_absolute_url()  # it leads to the listing


def test_guid_stays_the_same_when_the_title_and_slug_change(client, feed_url):
    posting = PublishedPostingFactory(title="Data Analyst")
    [before] = read(client, feed_url).entries

    posting.title, posting.slug = "Senior Data Analyst", "senior-data-analyst"
    posting.updated_at = timezone.now()
    posting.save()
    [after] = read(client, feed_url).entries

    assert after.id == before.id
    assert after.link != before.link and after.link.endswith("-senior-data-analyst/")


def test_atom_updated_is_updated_at_or_posted_at_and_the_feed_takes_the_newest(client):
    now = timezone.now()
    edited = PublishedPostingFactory(
        posted_at=now - timedelta(days=9), updated_at=now - timedelta(hours=1)
    )
    never_edited = PublishedPostingFactory(posted_at=now - timedelta(days=2), updated_at=None)

    parsed = read(client, ATOM)

    by_id = {entry.id: entry for entry in parsed.entries}
    short = ORIGIN + reverse("postings:short", args=[edited.pk])
    assert timestamp(by_id[short].updated_parsed) == whole_seconds(edited.updated_at)
    assert timestamp(by_id[short].published_parsed) == whole_seconds(edited.posted_at)
    short = ORIGIN + reverse("postings:short", args=[never_edited.pk])
    assert timestamp(by_id[short].updated_parsed) == whole_seconds(never_edited.posted_at)
    # The feed changed when its most recently changed job did, not when the newest was posted.
    assert timestamp(parsed.feed.updated_parsed) == whole_seconds(edited.updated_at)


def test_rss_last_build_date_and_last_modified_are_the_newest_change(client):
    now = timezone.now()
    edited = PublishedPostingFactory(
        posted_at=now - timedelta(days=9), updated_at=now - timedelta(hours=1)
    )
    PublishedPostingFactory(posted_at=now - timedelta(days=2), updated_at=None)

    response = client.get(RSS)
    parsed = feedparser.parse(response.content)

    assert timestamp(parsed.feed.updated_parsed) == whole_seconds(edited.updated_at)
    assert response["Last-Modified"]
    assert "max-age=60" in response["Cache-Control"]


# --- Hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "workplace=<script>alert(1)</script>",
        "seniority=%3Cscript%3E&practice_area=nope",
        "salary_min=1e999",
        "salary_min=-5&posted=999&country=ZZ",
        "q=" + "python%20" * 500,
        "q=%00",
        "sort=<script>&page=-1&after=%7B%7D&before=junk",
        "company=" + "x" * 5000,
        "location=<script>alert(1)</script>",
    ],
)
def test_bad_parameters_are_ignored_and_never_reflected_unescaped(client, feed_url, query):
    posting = PublishedPostingFactory()

    response = client.get(f"{feed_url}?{query}")

    assert response.status_code == 200
    assert b"<script" not in response.content
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo
    if "location" not in query:  # a valid place that matches nothing is not ignored
        assert titles(parsed) == [entry_title(posting)]
        assert parsed.feed.title == "Jobs · Jobboard"


def test_script_in_keywords_is_escaped_in_the_feed_title(client, feed_url):
    response = client.get(feed_url, {"q": "<script>alert(1)</script>"})

    assert response.status_code == 200
    assert b"<script" not in response.content
    parsed = feedparser.parse(response.content)
    assert "<script>" in text(parsed.feed)  # shown as text, never run as markup
    if feed_url == RSS:
        assert parsed.feed.title_detail.type == "text/html"
        assert "<script" not in parsed.feed.title


def test_script_in_a_title_or_summary_comes_out_escaped(client, feed_url):
    company = CompanyFactory(name="Smith & <b>Sons</b>")
    posting = PublishedPostingFactory(
        company=company,
        title="<script>alert(1)</script> Engineer",
        summary='<img src=x onerror="alert(1)"> Join us & grow',
    )

    response = client.get(feed_url)

    assert b"<script" not in response.content and b"<img" not in response.content
    [entry] = feedparser.parse(response.content).entries
    assert text(entry) == entry_title(posting)  # the reader shows the characters typed
    assert text(entry, "summary") == posting.summary
    assert entry.summary_detail.type == "text/html"
    assert "<img" not in entry.summary  # as HTML it is text, not an element
    if feed_url == RSS:
        assert "<script" not in entry.title
    else:  # an Atom title is plain text: escaping it again would show "&lt;"
        assert entry.title_detail.type == "text/plain"


# --- The list page points at its own feed ---------------------------------------------------

ALTERNATE = re.compile(
    r'<link rel="alternate" type="application/(rss|atom)\+xml"[^>]*href="([^"]+)"'
)


def test_list_page_links_to_the_feeds_of_the_same_filters(client):
    wanted = PublishedPostingFactory(workplace="remote", city="", seniority="senior")
    PublishedPostingFactory(workplace="onsite", seniority="senior")

    page = client.get(
        reverse("postings:list"),
        {"workplace": "remote", "seniority": "senior", "sort": "views", "page": "1"},
    )

    body = page.content.decode()
    links = {kind: html.unescape(href) for kind, href in ALTERNATE.findall(body)}
    assert set(links) == {"rss", "atom"}
    for kind, href in links.items():
        url = urlsplit(href)
        assert url.path == (RSS if kind == "rss" else ATOM)
        assert parse_qs(url.query) == {"workplace": ["remote"], "seniority": ["senior"]}
        assert f'href="{html.escape(href)}"' in body.split("</head>", 1)[1]  # visible link too
        assert titles(read(client, url.path, url.query)) == [entry_title(wanted)]


def test_list_page_without_filters_links_to_the_plain_feeds(client):
    body = client.get(reverse("postings:list")).content.decode()

    assert dict(ALTERNATE.findall(body)) == {"rss": RSS, "atom": ATOM}


# --- Cost -----------------------------------------------------------------------------------


def test_feed_query_count_does_not_grow_with_the_number_of_postings(client, feed_url):
    PublishedPostingFactory.create_batch(2)
    with CaptureQueriesContext(connection) as few:
        read(client, feed_url, "workplace=remote&workplace=onsite&workplace=hybrid")

    PublishedPostingFactory.create_batch(12)  # each with a company of its own
    changes.everything_changed()  # else the feed kept a minute ago, new listings joining later
    with CaptureQueriesContext(connection) as many:
        parsed = read(client, feed_url, "workplace=remote&workplace=onsite&workplace=hybrid")

    assert len(parsed.entries) == 14
    assert len(many) == len(few) <= 2
    # Cards, not whole listings: the descriptions stay in the database.
    for column in ('"postings_posting"."description"', '"postings_posting"."description_html"'):
        assert all(column not in q["sql"] for q in many.captured_queries)


@pytest.mark.parametrize("query", ["q=%01python", "location=Berl%08in", "company=%1B", "q=%00"])
def test_control_characters_in_the_filters_never_break_a_feed(client, feed_url, query):
    PublishedPostingFactory()
    parsed = read(client, feed_url, query)
    assert not any(ord(c) < 32 for c in parsed.feed.title)


def test_control_characters_stored_in_a_listing_never_break_a_feed(client, feed_url):
    posting = PublishedPostingFactory(title="Welder\x0bSenior\x01", company__name="Acme\x02 Ltd")
    Posting.objects.filter(pk=posting.pk).update(summary="Weld\x07 things")
    parsed = read(client, feed_url)
    assert titles(parsed) == ["WelderSenior at Acme Ltd"]
    assert "Weld things" in parsed.entries[0].summary


def test_a_title_typed_with_control_characters_is_saved_without_them():
    from postings.forms import PostingForm

    form = PostingForm(data={"title": "Senior\x01 Welder\x0b"})
    form.is_valid()
    assert form.cleaned_data.get("title") == "Senior Welder"


@pytest.mark.parametrize("override", ["\u202e", "\u2066", "\u202a"])
def test_a_title_with_a_direction_override_is_refused(override):
    from postings.forms import PostingForm

    form = PostingForm(data={"title": f"Invoice clerk {override}fdp.exe"})
    form.is_valid()
    assert "reorders text" in " ".join(form.errors.get("title", []))
