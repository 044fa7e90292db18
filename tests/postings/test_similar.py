"""Similar jobs on a listing's page: which, in what order, cached but never stale about closing."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from postings import changes, similar
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


def test_a_listing_closed_after_caching_is_not_shown(
    posting, redis_client, django_assert_num_queries
):
    first = job(days_ago=1, title="Senior Platform Engineer")
    second = job(days_ago=2, title="Senior Mobile Engineer")
    assert similar_postings(posting) == [first, second]

    Posting.objects.filter(pk=first.pk).update(
        status=Posting.Status.CLOSED, closed_at=timezone.now()
    )
    with django_assert_num_queries(1):  # the cached ids, fetched afresh
        assert similar_postings(posting) == [second]


def test_a_redis_that_is_down_means_asking_the_database(posting, redis_client, monkeypatch, caplog):
    alike = job(title="Senior Platform Engineer")

    def down(*args, **kwargs):
        raise redis.ConnectionError("Redis is down")

    for name in ("read_kept", "current", "keep"):
        monkeypatch.setattr(changes, name, down)
    assert similar_postings(posting) == [alike]
    assert similar_postings(posting) == [alike]
    assert "similar jobs cache unavailable" in caplog.text


def test_without_redis_nothing_is_kept(posting, without_redis, django_assert_num_queries):
    alike = job(title="Senior Platform Engineer")
    assert similar_postings(posting) == [alike]
    with django_assert_num_queries(2):  # the group, its cards: every time
        assert similar_postings(posting) == [alike]


def test_the_group_is_one_query(posting, django_assert_num_queries):
    job()
    with django_assert_num_queries(1):
        similar._query(posting, similar.GROUP_ROWS)


# --- One group, many listings: kept once, never stale ------------------------------------------


def test_listings_of_one_group_share_it_and_read_no_similar_jobs_from_the_database(
    posting, redis_client, django_assert_num_queries
):
    first = job(days_ago=1, title="Senior Platform Engineer")
    second = job(days_ago=2, title="Senior Mobile Engineer")
    assert similar_postings(posting) == [first, second]
    with django_assert_num_queries(0):  # the same group, kept with its cards
        assert similar_postings(first) == [second, posting]  # never the listing itself
        assert similar_postings(second) == [first, posting]


def test_a_similar_job_closed_since_its_group_was_kept_is_not_shown(posting):
    first = job(days_ago=1, title="Senior Platform Engineer")
    second = job(days_ago=2, title="Senior Mobile Engineer")
    third = job(days_ago=3, title="Senior Data Engineer")
    assert similar_postings(posting) == [first, second, third]

    first.status = Posting.Status.CLOSED
    first.closed_at = timezone.now()
    first.save()
    Posting.objects.filter(pk=second.pk).update(status=Posting.Status.EXPIRED)
    assert similar_postings(third) == [posting]  # another listing of the group
    assert similar_postings(posting) == [third]


def test_a_change_to_the_whole_board_leaves_no_kept_group_in_use(posting):
    first = job(days_ago=1, title="Senior Platform Engineer")
    second = job(days_ago=2, title="Senior Mobile Engineer")
    assert similar_postings(posting) == [first, second]
    with connection.cursor() as cursor:  # rows changed whose marks are not known (a migration)
        cursor.execute(
            "UPDATE postings_posting SET status = %s WHERE id = %s",
            [Posting.Status.CLOSED, first.pk],
        )
    changes.everything_changed()
    assert similar_postings(posting) == [second]


def test_a_similar_job_past_its_deadline_since_its_group_was_kept_is_not_shown(posting):
    first = job(days_ago=1, title="Senior Platform Engineer")
    ending = job(
        days_ago=2, title="Senior Mobile Engineer", deadline=timezone.now() + timedelta(seconds=1)
    )
    assert similar_postings(posting) == [first, ending]
    time.sleep(1.1)  # nothing written: only the clock says it ended
    assert similar_postings(posting) == [first]


def test_a_similar_job_moved_to_another_city_since_its_group_was_kept_moves_with_it(
    posting, redis_client
):
    moving = job(days_ago=1, title="Senior Platform Engineer")
    staying = job(days_ago=2, title="Senior Mobile Engineer")
    assert similar_postings(posting) == [moving, staying]

    Posting.objects.filter(pk=moving.pk).update(city="Munich", region="Bavaria")
    assert similar_postings(posting) == [staying]  # until the group is read again
    similar.forget_kept_groups()
    assert similar_postings(posting) == [staying, moving]  # the same country, after the city


def test_a_similar_jobs_company_renamed_since_its_group_was_kept_shows_its_new_name(posting):
    alike = job(title="Senior Platform Engineer")
    assert similar_postings(posting)[0].company.name == alike.company.name

    alike.company.name = "Renamed Ltd"
    alike.company.save()
    assert similar_postings(posting)[0].company.name == "Renamed Ltd"


def test_a_group_kept_by_another_version_or_unreadable_is_read_again(posting, redis_client):
    alike = job(title="Senior Platform Engineer")
    redis_client.set(similar.group_key(posting), b"not a kept group")
    assert similar_postings(posting) == [alike]
    marks = changes.current([], [])
    changes.keep(similar.group_key(posting), b"\x80garbage", marks, 60)
    assert similar_postings(posting) == [alike]


def test_when_those_like_it_fill_a_kept_branch_the_listings_own_statement_runs(posting):
    # The same description as the listing: the same job listed again, never "similar".
    for n in range(similar.GROUP_ROWS):
        job(days_ago=1 + n / 100, title=f"Senior Engineer {n}", description=posting.description)
    older = job(days_ago=4, title="Senior Platform Engineer")
    assert similar_postings(posting) == [older]
    assert similar_postings(posting) == [older]  # from a kept group too


def test_a_listing_picked_further_on_than_the_kept_cards_is_read_afresh(posting):
    repeated = "The same role, listed again: " + " ".join(f"duty{n}" for n in range(40)) + "."
    viewed = job(days_ago=0.5, title="Senior Engineer", description=repeated)
    for n in range(4):  # like it: left out of its similar jobs
        job(days_ago=1 + n / 10, title=f"Senior Engineer ({n})", description=repeated)
    berlin = [job(days_ago=2 + n / 10, title=f"Senior Platform Engineer {n}") for n in range(5)]
    munich = [
        job(days_ago=0.1 * (1 + n), city="Munich", region="Bavaria", title=f"Senior SRE {n}")
        for n in range(3)
    ]
    # Kept: the cards of the city's 11 listings and of the first in Munich; this listing's page
    # picks six in the city, so the next two in Munich are read afresh.
    expected = [*berlin, posting, *munich[:2]]
    assert similar_postings(viewed, limit=8) == expected
    assert similar_postings(viewed, limit=8) == expected


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
