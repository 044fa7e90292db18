"""Similar jobs on a listing's page: which, in what order, cached but never stale about closing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from postings import similar
from postings.factories import (
    ClosedPostingFactory,
    ExpiredPostingFactory,
    PastDeadlinePostingFactory,
    PendingReviewPostingFactory,
    PublishedPostingFactory,
)
from postings.models import Posting
from postings.similar import similar_postings

pytestmark = pytest.mark.django_db

ALIKE = {"practice_area": "engineering", "seniority": "senior"}


def job(days_ago: float = 1, factory=PublishedPostingFactory, **fields) -> Posting:
    place = {"city": "Berlin", "region": "Berlin", "country": "DE", "workplace": "onsite"}
    return factory(
        **{**ALIKE, **place, "posted_at": timezone.now() - timedelta(days=days_ago), **fields}
    )


@pytest.fixture
def posting():
    return job(days_ago=5, title="Senior Backend Engineer")


def test_open_listings_of_the_same_area_and_seniority_are_similar(posting):
    alike = job(title="Senior Platform Engineer")
    job(seniority="junior", title="Junior Platform Engineer")
    job(practice_area="data", title="Senior Data Engineer")
    assert similar_postings(posting) == [alike]


def test_only_open_listings_are_shown(posting):
    alike = job(title="Senior Platform Engineer")
    for factory in (
        ClosedPostingFactory,
        ExpiredPostingFactory,
        PastDeadlinePostingFactory,
        PendingReviewPostingFactory,
    ):
        job(factory=factory, title="Senior Mobile Engineer")
    assert similar_postings(posting) == [alike]


def test_the_listing_itself_and_its_duplicates_are_left_out(posting):
    ClosedPostingFactory(duplicate_of=posting, **ALIKE)
    job(company=posting.company, title="Backend Engineer, Senior (m/w/d)")  # the same role again
    alike = job(company=posting.company, title="Senior Frontend Engineer")
    assert similar_postings(posting) == [alike]


def test_a_listing_marked_a_duplicate_does_not_offer_the_one_it_repeats():
    original = job(title="Senior Backend Engineer")
    repeat = job(
        factory=ClosedPostingFactory, duplicate_of=original, title="Senior Backend Engineer (m/w/d)"
    )
    alike = job(title="Senior Platform Engineer")
    assert similar_postings(repeat) == [alike]


def test_the_same_city_comes_first_then_the_country_then_remote_each_newest_first(posting):
    remote_elsewhere = job(days_ago=0.1, workplace="remote", city="", region="", country="PT")
    same_country = job(days_ago=0.2, city="Munich", region="Bavaria")
    same_city_old = job(days_ago=9)
    same_city_new = job(days_ago=2)
    job(days_ago=0.1, city="Paris", region="", country="FR")  # on-site, far away
    assert similar_postings(posting, limit=5) == [
        same_city_new,
        same_city_old,
        same_country,
        remote_elsewhere,
    ]


def test_a_remote_listing_offers_its_country_then_remote_ones():
    home = job(workplace="remote", city="", region="", country="PT")
    portugal = job(days_ago=3, city="Lisbon", region="", country="PT")
    remote = job(days_ago=0.5, workplace="remote", city="", region="", country="NL")
    job(days_ago=0.5, city="Amsterdam", region="", country="NL")
    # No city of its own: the whole country is "nearby", then remote roles elsewhere.
    assert similar_postings(home) == [portugal, remote]


def test_at_most_limit_are_shown(posting):
    for n in range(6):
        job(days_ago=n, title=f"Senior Engineer {n}")
    assert len(similar_postings(posting)) == 4
    assert len(similar_postings(posting, limit=5)) == 5


def test_a_listing_closed_after_caching_is_not_shown(posting, django_assert_num_queries):
    first = job(days_ago=1, title="Senior Platform Engineer")
    second = job(days_ago=2, title="Senior Mobile Engineer")
    assert similar_postings(posting) == [first, second]

    Posting.objects.filter(pk=first.pk).update(
        status=Posting.Status.CLOSED, closed_at=timezone.now()
    )
    with django_assert_num_queries(1):  # the cached ids, fetched afresh
        assert similar_postings(posting) == [second]


def test_a_cache_that_is_down_means_asking_the_database(posting, monkeypatch, caplog):
    alike = job(title="Senior Platform Engineer")

    def down(*args, **kwargs):
        raise ConnectionError("cache is down")

    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)
    assert similar_postings(posting) == [alike]
    assert "similar jobs cache unavailable" in caplog.text


def test_similar_ids_is_one_query(posting, django_assert_num_queries):
    job()
    with django_assert_num_queries(1):
        similar.similar_ids(posting, 8)


# --- On the page ----------------------------------------------------------------------------


def test_the_page_shows_similar_jobs_as_cards_with_titles_escaped(client, posting):
    job(title="<script>alert('x')</script> Senior Engineer")
    page = client.get(posting.get_absolute_url()).content.decode()
    assert 'id="similar-heading"' in page and "Similar jobs" in page
    # Escaped as MarkupSafe does (&#39;, where Django wrote &#x27;).
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Senior Engineer" in page
    assert "<script>alert('x')" not in page


def test_a_closed_listing_shows_similar_open_jobs_too(client):
    closed = job(factory=ClosedPostingFactory, title="Senior Backend Engineer")
    alike = job(title="Senior Platform Engineer")
    page = client.get(closed.get_absolute_url()).content.decode()
    assert "This job is closed" in page and "Similar jobs" in page
    assert alike.get_absolute_url() in page


def test_no_section_without_similar_jobs(client, posting):
    page = client.get(posting.get_absolute_url()).content.decode()
    assert "Similar jobs" not in page


def test_the_page_query_count_does_not_grow_with_similar_jobs(client, posting):
    job(title="Senior Platform Engineer")
    with CaptureQueriesContext(connection) as one:
        client.get(posting.get_absolute_url())
    for n in range(4):
        job(title=f"Senior Engineer {n}")
    cache.clear()
    with CaptureQueriesContext(connection) as four:
        response = client.get(posting.get_absolute_url())
    assert len(response.context["similar_postings"]) == 4
    assert len(four) == len(one)
