"""The candidate-facing views: who may open them, what they show, and how they treat bad input."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html import unescape
from urllib.parse import urlencode

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.http import QueryDict
from django.test.signals import template_rendered
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

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
from postings.filters import PostingFilter
from postings.forms import end_of_day
from postings.models import Posting

pytestmark = pytest.mark.django_db

BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
LIST_URL = reverse("postings:list")


@pytest.fixture(params=["anonymous", "candidate", "staff"])
def visitor(request, client):
    """Every public page is the same for anyone: no account, a plain account, or staff."""
    if request.param != "anonymous":
        user = get_user_model().objects.create_user(
            email=f"{request.param}@example.com",
            password="a long enough password",
            is_staff=request.param == "staff",
        )
        client.force_login(user)
    return client


def titles(response) -> list[str]:
    return [p.title for p in response.context["jobs"].postings]


# --- The list -------------------------------------------------------------------------------


def test_list_page_is_public_and_shows_only_open_listings(visitor):
    open_one = PublishedPostingFactory(title="Open Role")
    PastDeadlinePostingFactory(title="Past Deadline Role")
    ExpiredPostingFactory(title="Expired Role")
    ClosedPostingFactory(title="Closed Role")
    DraftPostingFactory(title="Draft Role")
    PendingReviewPostingFactory(title="Pending Role")
    RemovedPostingFactory(title="Removed Role")

    response = visitor.get(LIST_URL)

    assert response.status_code == 200
    assert "postings/posting_list.html" in [t.name for t in response.templates]
    assert titles(response) == [open_one.title]
    assert "Past Deadline Role" not in response.content.decode()
    assert "1 job" in response.content.decode()


def test_include_closed_shows_ended_listings_marked_closed_never_open(client):
    PublishedPostingFactory(title="Open Role")
    PastDeadlinePostingFactory(title="Past Deadline Role")
    ExpiredPostingFactory(title="Expired Role")
    ClosedPostingFactory(title="Closed Role")
    DraftPostingFactory(title="Draft Role")
    RemovedPostingFactory(title="Removed Role")

    response = client.get(LIST_URL, {"include_closed": "on"})

    assert sorted(titles(response)) == [
        "Closed Role", "Expired Role", "Open Role", "Past Deadline Role",
    ]  # fmt: skip
    html = response.content.decode()
    past_card = html[html.index("Past Deadline Role") :].split("</article>")[0]
    assert "closed on" in past_card
    assert "closes in" not in past_card


def test_root_redirects_to_the_job_list_keeping_the_filters(client):
    response = client.get("/?workplace=remote")
    assert response.status_code == 302
    assert response["Location"] == LIST_URL + "?workplace=remote"


def test_list_shows_a_clear_empty_state(client):
    response = client.get(LIST_URL, {"q": "nothing matches this"})
    assert response.status_code == 200
    assert "No jobs match these filters" in response.content.decode()


def test_facet_counts_ignore_their_own_filter_but_apply_the_others(client):
    PublishedPostingFactory.create_batch(2, workplace="remote", seniority="senior")
    PublishedPostingFactory(workplace="onsite", seniority="senior", city="Berlin", country="DE")
    PublishedPostingFactory(workplace="onsite", seniority="junior", city="Berlin", country="DE")

    response = client.get(LIST_URL, {"workplace": "remote"})

    facets = {
        f.name: {o[0]: (o[2], o[3]) for o in f.options} for f in response.context["jobs"].facets
    }
    # Workplace counts are over every workplace, so the other choices stay visible.
    assert facets["workplace"]["remote"] == (2, True)
    assert facets["workplace"]["onsite"] == (2, False)
    # Seniority counts follow the workplace filter.
    assert facets["seniority"]["senior"] == (2, False)
    assert facets["seniority"]["junior"] == (0, False)


def test_counts_above_the_cap_read_as_a_floor(client, settings):
    settings.POSTINGS_SEARCH_COUNT_CAP = 3
    settings.POSTINGS_PER_PAGE = 2  # more than one page: the count is not simply what is shown
    PublishedPostingFactory.create_batch(5, title="Backend Engineer")
    response = client.get(LIST_URL, {"q": "engineer"})  # keywords: counted live, up to the cap
    assert response.context["jobs"].count_is_capped
    page = response.content.decode()
    assert "3+ jobs" in page
    # Too many to count per choice: the choices show no numbers, and the panel says why.
    assert 'class="count"' not in page
    assert "keywords, company and salary match 3 or fewer" in page


def test_whole_lists_count_every_job_from_the_snapshot(client, settings):
    settings.POSTINGS_COUNT_CAP = 3
    PublishedPostingFactory.create_batch(5, workplace="remote")
    page = client.get(LIST_URL).content.decode()
    assert "5 jobs" in page
    assert '<span class="count">5</span>' in page
    assert "may be up to a minute old" in page


HOSTILE_PARAMS = [
    {"page": "-3"},
    {"page": "abc"},
    {"page": "0"},
    {"page": "9" * 40},
    {"posted": "abc"},
    {"salary_min": "1e999"},
    {"salary_min": "-5"},
    {"salary_min": "12.5"},
    {"sort": "'; DROP TABLE postings_posting; --"},
    {"sort": "relevance"},
    {"workplace": "moon"},
    {"country": "XX"},
    {"employment_type": ["full_time", "<script>alert(1)</script>"]},
    {"q": "x" * 10_000},
    {"q": "nul\x00byte"},
    {"location": "Ber\x00lin"},
    {"company": "\x00"},
    {"q": '"unclosed phrase -'},
    {"q": "!!! & | <-> :*"},
    {"after": "not-a-cursor"},
    {"after": "WzEsMl0"},  # [1,2]: a cursor of the wrong shape
    {"after": "WyJub3QgYSBkYXRlIiwxXQ"},  # ["not a date",1]
    {"before": "W251bGwsLTFd"},  # [null,-1]
    {"sort": "deadline", "after": "W251bGwsOTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTld"},
    {"include_closed": "maybe"},
    {"back": "https://evil.example/"},
]


@pytest.mark.parametrize("params", HOSTILE_PARAMS, ids=lambda p: repr(p)[:40])
def test_bad_parameters_give_the_page_back_with_a_message_never_an_error(client, params):
    PublishedPostingFactory.create_batch(3)
    response = client.get(LIST_URL, params)
    assert response.status_code == 200
    assert len(response.context["jobs"].postings) >= 1 or params.get("q") or params.get("company")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"page": "-3"}, "is not a page number"),
        ({"posted": "abc"}, "Date posted"),
        ({"salary_min": "1e999"}, "Enter a whole number"),
        ({"sort": "bogus"}, "Unknown sort"),
        ({"after": "garbage"}, "no longer valid"),
        ({"q": "nul\x00byte"}, "Null characters are not allowed"),
        ({"workplace": "moon"}, "Select a valid choice"),
    ],
)
def test_each_bad_parameter_is_named_in_a_clear_message(client, params, message):
    PublishedPostingFactory()
    response = client.get(LIST_URL, params)
    notices = " ".join(response.context["jobs"].notices)
    assert message in notices
    assert message in unescape(response.content.decode())


@pytest.mark.parametrize(
    "params",
    [{}, {"country": ""}, {"country": "DE"}, {"country": "AX"}, {"country": "de"},
     {"country": "XX"}, {"country": '"><script>'}, {"country": "FR", "workplace": "remote"}],
    ids=lambda p: repr(p)[:40],
)  # fmt: skip
def test_the_country_select_is_the_html_djangos_select_gives(client, params):
    PublishedPostingFactory(country="DE")
    page = client.get(LIST_URL, params).content.decode()

    filterset = PostingFilter(QueryDict(urlencode(params)), queryset=Posting.objects.none())
    field = filterset.form.fields["country"]
    field.widget = forms.Select(choices=field.choices)  # rendered by Django's own templates
    expected = str(filterset.form["country"])

    assert expected.count("<option") == 250
    assert expected in page


def test_the_country_options_are_rendered_once_not_on_every_page(client):
    client.get(LIST_URL, {"country": "DE"})
    rendered = []

    def note(sender, template, **kwargs):
        rendered.append(template.name)

    template_rendered.connect(note)
    try:
        page = client.get(LIST_URL, {"country": "FR"}).content.decode()
    finally:
        template_rendered.disconnect(note)
    assert '<option value="FR" selected>France</option>' in page
    assert "django/forms/widgets/select_option.html" not in rendered


def test_list_page_query_count_does_not_grow_with_the_data(client, django_assert_max_num_queries):
    PublishedPostingFactory.create_batch(3)
    with CaptureQueriesContext(connection) as small:
        client.get(LIST_URL, {"sort": "deadline", "workplace": ["remote", "onsite"]})
    PublishedPostingFactory.create_batch(40)
    from django.core.cache import cache

    cache.clear()  # facet counts are cached; count them again
    with CaptureQueriesContext(connection) as large:
        client.get(LIST_URL, {"sort": "deadline", "workplace": ["remote", "onsite"]})
    assert len(large) == len(small)
    assert len(large) <= 10


@pytest.mark.parametrize(
    "params",
    [{}, {"sort": "deadline"}, {"sort": "views", "include_closed": "1"}, {"company": "acme"},
     {"salary_min": "1000", "sort": "views"},
     pytest.param({"q": "lighthouse"}, marks=pytest.mark.postgres),
     pytest.param({"q": "lighthouse", "sort": "newest"}, marks=pytest.mark.postgres)],
    ids=lambda p: repr(p)[:40],
)  # fmt: skip
def test_the_cards_cost_no_query_of_their_own(client, settings, params):
    """The list reads only some of a listing's columns: a card reading another would cost a
    query of its own, and a page of one card as many queries as a page of seven."""
    from django.core.cache import cache

    settings.PAGE_CACHE_SECONDS = 0
    company = CompanyFactory(name="Acme", slug="acme")

    def cards(factories) -> int:
        for make in factories:
            make(
                company=company,
                title="Lighthouse keeper",
                salary_min=20_000,
                salary_max=30_000,
                salary_currency="EUR",
                salary_period="year",
                view_count=5,
            )
        cache.clear()  # facet counts, counted again
        with CaptureQueriesContext(connection) as queries:
            response = client.get(LIST_URL, params)
        page = response.content.decode()
        assert page.count('<article class="card') == len(response.context["jobs"].postings)
        assert "Lighthouse keeper" in page and "EUR 20,000–30,000" in page
        return len(queries)

    client.get(LIST_URL, params)  # what a process looks up once (which words are searchable)
    one = cards([PublishedPostingFactory])
    ended = [ClosedPostingFactory, ExpiredPostingFactory, PastDeadlinePostingFactory]
    seven = cards(
        [*ended, PublishedPostingFactory, PublishedPostingFactory, PublishedPostingFactory]
    )
    assert seven == one


def test_next_and_previous_links_walk_every_listing_once(client, settings):
    settings.POSTINGS_PER_PAGE = 4
    made = PublishedPostingFactory.create_batch(10)
    seen: list[int] = []
    response = client.get(LIST_URL)
    pages = 0
    while True:
        pages += 1
        seen += [p.pk for p in response.context["jobs"].postings]
        next_query = response.context["jobs"].next_query
        if not next_query:
            break
        response = client.get(LIST_URL + "?" + next_query)
    assert pages == 3
    assert sorted(seen) == sorted(p.pk for p in made)
    prev_query = response.context["jobs"].prev_query
    back = client.get(LIST_URL + "?" + prev_query)
    assert back.context["jobs"].page_number == 2
    assert [p.pk for p in back.context["jobs"].postings] == seen[4:8]


# --- The detail page ------------------------------------------------------------------------


def test_detail_page_shows_every_fact(visitor):
    now = timezone.now()
    posting = PublishedPostingFactory(
        title="Search Backend Engineer",
        seniority="mid",
        employment_type="full_time",
        practice_area="engineering",
        workplace="onsite",
        city="Belgrade",
        region="",
        country="RS",
        posted_at=now - timedelta(days=59),
        updated_at=now - timedelta(minutes=29),
        last_checked_at=now - timedelta(minutes=3),
        deadline=end_of_day(timezone.localdate() + timedelta(days=3)),
        view_count=15,
        applicant_count=2,
        applies_on_board=True,  # "applicants" are applications here; elsewhere, apply clicks
    )
    response = visitor.get(posting.get_absolute_url())
    html = response.content.decode()
    assert response.status_code == 200
    assert "postings/posting_detail.html" in [t.name for t in response.templates]
    for fact in (
        "Search Backend Engineer", posting.company.name, "Belgrade, Serbia", "On-site",
        "Mid", "Full time", "Engineering", "2 applicants", "Posted <time", "59 days ago",
        "29 minutes ago", "3 minutes ago", "in 3 days", "Apply for this job",
        "Report this job", "Back to jobs", "Share",
    ):  # fmt: skip
        assert fact in html, fact
    assert 'datetime="' in html


def test_detail_page_of_a_listing_past_its_deadline_reads_closed_without_apply(client):
    posting = PastDeadlinePostingFactory()
    assert posting.status == Posting.Status.PUBLISHED  # no worker has expired it yet
    html = client.get(posting.get_absolute_url()).content.decode()
    assert "This job is closed" in html
    assert "Apply for this job" not in html
    assert "closes in" not in html


@pytest.mark.parametrize("factory", [ClosedPostingFactory, ExpiredPostingFactory])
def test_ended_listings_stay_reachable_and_marked_closed(client, factory):
    posting = factory()
    response = client.get(posting.get_absolute_url())
    assert response.status_code == 200
    assert "This job is closed" in response.content.decode()
    assert "Apply for this job" not in response.content.decode()


@pytest.mark.parametrize("factory", [DraftPostingFactory, PendingReviewPostingFactory])
def test_unpublished_listings_are_not_found_for_anyone(visitor, factory):
    posting = factory()
    assert visitor.get(posting.get_absolute_url()).status_code == 404


def test_removed_listing_says_it_is_gone(client):
    posting = RemovedPostingFactory()
    response = client.get(posting.get_absolute_url())
    assert response.status_code == 410
    assert "This job was removed" in response.content.decode()


def test_unknown_listing_is_a_friendly_404(client):
    response = client.get(reverse("postings:detail", kwargs={"pk": 999999, "slug": "nope"}))
    assert response.status_code == 404


@pytest.mark.parametrize("pk", [0, 2**63, 10**20])
def test_an_id_no_listing_can_have_is_a_404_not_an_error(client, pk):
    """The address takes any digits; the listing is read by plain SQL, and SQLite (the embedded
    default) refuses an id past a 64-bit integer instead of finding nothing."""
    assert client.get(f"/jobs/{pk}-nope/").status_code == 404


def test_a_stale_slug_redirects_permanently_to_the_canonical_address(client):
    posting = PublishedPostingFactory(title="Data Engineer", slug="data-engineer")
    response = client.get(f"/jobs/{posting.pk}-old-title/?back=page%3D2")
    assert response.status_code == 301
    assert response["Location"] == posting.get_absolute_url() + "?back=page%3D2"
    short = client.get(f"/jobs/{posting.pk}/")
    assert short.status_code == 302 and short["Location"] == posting.get_absolute_url()


def test_description_markup_cannot_run_script(client):
    posting = PublishedPostingFactory()
    posting.set_description(
        'Hi <script>alert(1)</script><img src=x onerror="alert(2)">'
        '<a href="javascript:alert(3)">x</a> [y](javascript:alert(4))'
    )
    posting.save()
    html = client.get(posting.get_absolute_url()).content.decode()
    body = html[html.index('class="prose"') :].split("</section>")[0]
    assert "<script" not in body
    assert "onerror" not in body
    assert "javascript:" not in body


def test_back_link_returns_to_the_filtered_list_and_only_to_it(client):
    posting = PublishedPostingFactory()
    url = posting.get_absolute_url()
    html = client.get(url, {"back": "workplace=remote&sort=deadline&evil=1"}).content.decode()
    assert f'href="{LIST_URL}?workplace=remote&amp;sort=deadline"' in html
    html = client.get(url, {"back": "//evil.example/"}).content.decode()
    assert f'href="{LIST_URL}"' in html
    assert "evil.example" not in html.split("Back to jobs")[0].rsplit("<a", 1)[-1]


def test_detail_page_query_count_is_constant(client, redis_client):
    posting = PublishedPostingFactory()
    group = {
        name: getattr(posting, name)
        for name in ("practice_area", "seniority", "country", "city", "region", "workplace")
    }
    neighbour, *_others = PublishedPostingFactory.create_batch(6, **group)
    with CaptureQueriesContext(connection) as first:
        client.get(posting.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
    # The listing; its similar jobs' group and their cards; the kept page's check of what it shows.
    assert len(first) <= 4
    with CaptureQueriesContext(connection) as second:
        response = client.get(neighbour.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
    assert len(response.context["similar_postings"]) == 4
    assert len(second) <= 2  # the group is kept: the listing, and the kept page's check


def test_a_listing_listed_again_points_to_the_open_one_in_one_more_query(client):
    original = PublishedPostingFactory(title="Harbour Pilot")
    repeat = PublishedPostingFactory(status=Posting.Status.CLOSED, duplicate_of=original)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(repeat.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
    html = page.content.decode()
    assert "This job is listed again." in html and original.get_absolute_url() in html
    # As a listing's first visit, and the listing it repeats with its company: nothing deferred.
    assert len(queries) <= 5


# --- What crawlers and link previews read ------------------------------------------------------


def meta_content(html: str, attribute: str, name: str) -> str | None:
    found = re.search(rf'<meta {attribute}="{re.escape(name)}" content="([^"]*)"', html)
    return found[1] if found else None


@pytest.mark.parametrize(
    "factory", [ClosedPostingFactory, ExpiredPostingFactory, PastDeadlinePostingFactory]
)
def test_a_listing_that_is_not_open_is_marked_noindex_even_when_kept(client, factory):
    posting = factory()
    rendered = client.get(posting.get_absolute_url())
    kept = client.get(posting.get_absolute_url())  # served from the kept page

    for response in (rendered, kept):
        assert response.status_code == 200
        assert meta_content(response.content.decode(), "name", "robots") == "noindex"
        assert response["X-Robots-Tag"] == "noindex"


def test_an_open_listing_may_be_indexed(client):
    response = client.get(PublishedPostingFactory().get_absolute_url())

    assert meta_content(response.content.decode(), "name", "robots") is None
    assert "X-Robots-Tag" not in response


def test_a_listing_shows_the_sites_own_image_in_link_previews_without_a_logo(client):
    html = client.get(PublishedPostingFactory().get_absolute_url()).content.decode()

    image = meta_content(html, "property", "og:image")
    assert image == "http://testserver/static/img/og-default.png"
    with Image.open(finders.find("img/og-default.png")) as default:
        assert (default.format, default.size) == ("PNG", (1200, 630))
    assert meta_content(html, "property", "og:image:width") == "1200"


def test_a_listing_shows_its_companys_logo_in_link_previews(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buffer, format="PNG")
    company = CompanyFactory(logo=SimpleUploadedFile("logo.png", buffer.getvalue()))
    html = client.get(PublishedPostingFactory(company=company).get_absolute_url()).content.decode()

    image = meta_content(html, "property", "og:image")
    logo = reverse("accounts:company_logo", args=[company.slug])
    assert image.startswith(f"http://testserver{logo}?v=")
    assert b"".join(client.get(image).streaming_content) == buffer.getvalue()
    assert meta_content(html, "property", "og:image:alt") == f"{company.name} logo"


# --- Times in the markup ---------------------------------------------------------------------

# HTML's "valid global date and time string" allows at most three fraction digits; we give none.
WHOLE_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)")


def datetime_attributes(html: str) -> list[str]:
    return re.findall(r'<time[^>]* datetime="([^"]*)"', html)


def test_time_attributes_on_the_list_and_listing_pages_are_whole_seconds(client):
    now = timezone.now().replace(microsecond=904538)
    open_one = PublishedPostingFactory(
        posted_at=now - timedelta(days=2),
        updated_at=now - timedelta(hours=1),
        last_checked_at=now,
        deadline=now + timedelta(days=3),
    )
    closed = ClosedPostingFactory(closed_at=now)
    for url in (LIST_URL, open_one.get_absolute_url(), closed.get_absolute_url()):
        found = datetime_attributes(client.get(url).content.decode())

        assert found, url
        for value in found:
            assert WHOLE_SECONDS.fullmatch(value), (url, value)


# --- Counting views and apply clicks ---------------------------------------------------------


def test_a_visitor_is_counted_once_per_day_however_often_they_reload(client):
    posting = PublishedPostingFactory(view_count=0)
    for _ in range(5):
        client.get(posting.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
    client.get(posting.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="10.0.0.9")
    client.get(posting.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
    # Counted on every request, kept pages included (the page shows the count a bit later).
    assert views_of(posting) == 2


def test_bots_do_not_count_as_views(client):
    posting = PublishedPostingFactory(view_count=0)
    for agent in ("Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.5.0", ""):
        client.get(posting.get_absolute_url(), HTTP_USER_AGENT=agent)
    client.get(posting.get_absolute_url(), HTTP_USER_AGENT="curl/8.5.0")
    assert views_of(posting) == 0


def views_of(posting) -> int:
    from postings import counters

    posting.refresh_from_db()
    return posting.view_count + counters.pending_counts([posting.pk], "views").get(posting.pk, 0)


def test_apply_sends_the_candidate_to_the_employer_and_counts_the_click(client):
    posting = PublishedPostingFactory(apply_url="https://careers.example/apply/42")
    response = client.get(reverse("postings:apply", args=[posting.pk]), HTTP_USER_AGENT=BROWSER_UA)
    assert response.status_code == 302
    assert response["Location"] == "https://careers.example/apply/42"
    from postings import counters

    counters.flush("applies")
    posting.refresh_from_db()
    assert posting.apply_click_count == 1


@pytest.mark.parametrize("factory", [PastDeadlinePostingFactory, ClosedPostingFactory])
def test_apply_to_an_ended_listing_goes_back_to_the_listing(client, factory):
    posting = factory()
    response = client.get(reverse("postings:apply", args=[posting.pk]), follow=True)
    assert response.redirect_chain[-1][0] == posting.get_absolute_url()
    assert "no longer takes applications" in response.content.decode()


@pytest.mark.parametrize("factory", [DraftPostingFactory, RemovedPostingFactory])
def test_apply_to_an_unpublished_listing_is_not_found(client, factory):
    posting = factory()
    assert client.get(reverse("postings:apply", args=[posting.pk])).status_code == 404


def test_company_link_filters_the_list_to_that_company(client):
    acme = CompanyFactory(slug="acme")
    PublishedPostingFactory(company=acme, title="Acme Role")
    PublishedPostingFactory(title="Other Role")
    response = client.get(LIST_URL, {"company": "acme"})
    assert titles(response) == ["Acme Role"]


def test_admin_publishing_stamps_posted_at_and_renders_the_description(admin_client):
    posting = DraftPostingFactory(description="")
    data = {
        "company": posting.company.pk, "title": "Edited Title", "slug": posting.slug,
        "description": "## Role\n\nWork on **things**.", "city": "Berlin", "region": "",
        "country": "DE", "workplace": "onsite", "employment_type": "full_time",
        "seniority": "mid", "practice_area": "engineering", "salary_min": "", "salary_max": "",
        "salary_currency": "", "salary_period": "", "status": "published", "source_url": "",
        "apply_url": "https://careers.example/x", "closed_reason": "",
        **{f"{name}_{part}": "" for name in ("posted_at", "updated_at", "last_checked_at",
                                             "deadline", "closed_at") for part in (0, 1)},
    }  # fmt: skip
    response = admin_client.post(reverse("admin:postings_posting_change", args=[posting.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    posting.refresh_from_db()
    assert posting.status == "published" and posting.posted_at is not None
    assert "<strong>things</strong>" in posting.description_html


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        ("Austin", ["Austin Role"]),
        ("austin, texas", ["Austin Role"]),
        ("Texas", ["Austin Role"]),
        ("Germany", ["Berlin Role"]),
        ("DE", ["Berlin Role"]),
        ("Austin, Germany", []),
    ],
)
def test_place_matches_city_region_or_country_in_any_combination(client, place, expected):
    PublishedPostingFactory(title="Austin Role", city="Austin", region="Texas", country="US")
    PublishedPostingFactory(title="Berlin Role", city="Berlin", region="Berlin", country="DE")
    assert titles(client.get(LIST_URL, {"location": place})) == expected


def test_company_filter_takes_the_name_a_person_types(client):
    acme = CompanyFactory(name="Acme Robotics", slug="acme-robotics")
    PublishedPostingFactory(company=acme, title="Acme Role")
    PublishedPostingFactory(title="Other Role")
    assert titles(client.get(LIST_URL, {"company": "acme robotics"})) == ["Acme Role"]


@pytest.mark.parametrize("factory", [DraftPostingFactory, PendingReviewPostingFactory])
def test_the_short_link_of_an_unpublished_listing_reveals_nothing(client, factory):
    posting = factory(title="Secret Project Falcon Lead")
    response = client.get(f"/jobs/{posting.pk}/")
    assert response.status_code == 404
    assert "falcon" not in response.get("Location", "")


def test_apply_clicks_are_counted_on_get_only(client):
    posting = PublishedPostingFactory(apply_url="https://careers.example/apply/1")
    url = reverse("postings:apply", args=[posting.pk])
    client.head(url, HTTP_USER_AGENT=BROWSER_UA)
    client.options(url, HTTP_USER_AGENT=BROWSER_UA)
    from postings import counters

    counters.flush("applies")
    posting.refresh_from_db()
    assert posting.apply_click_count == 0


def test_junk_parameters_and_letter_case_share_one_facet_count(client, monkeypatch):
    from postings import facets

    PublishedPostingFactory.create_batch(3)
    calls = []
    real = facets.count_few
    monkeypatch.setattr(facets, "count_few", lambda *a: calls.append(1) or real(*a))
    for params in ({"q": "Engineer"}, {"q": " engineer ", "utm_source": "a"},
                   {"q": "ENGINEER", "fbclid": "123"}, {"q": "engineer", "page": "2"}):  # fmt: skip
        assert client.get(LIST_URL, params).status_code == 200
    assert len(calls) == 1


def test_the_list_and_detail_pages_work_while_the_cache_is_down(client, monkeypatch):
    from django.core.cache import cache

    posting = PublishedPostingFactory()

    def down(*args, **kwargs):
        raise ConnectionError("cache unreachable")

    for name in ("get", "set", "add", "incr", "delete"):
        monkeypatch.setattr(cache, name, down)
    assert client.get(LIST_URL).status_code == 200
    assert client.get(posting.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA).status_code == 200
