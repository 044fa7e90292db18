"""PostingQuerySet: which listings are public, open and ended; and the search vector's upkeep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

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
from postings.search import keyword_filter

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_of_each():
    """One posting in every state, by name."""
    return {
        "draft": DraftPostingFactory(),
        "pending_review": PendingReviewPostingFactory(),
        "published": PublishedPostingFactory(),
        "published_no_deadline": PublishedPostingFactory(deadline=None),
        "past_deadline": PastDeadlinePostingFactory(),
        "expired": ExpiredPostingFactory(),
        "closed": ClosedPostingFactory(),
        "removed": RemovedPostingFactory(),
    }


def names(queryset, postings) -> set[str]:
    by_pk = {p.pk: name for name, p in postings.items()}
    return {by_pk[pk] for pk in queryset.values_list("pk", flat=True)}


def test_open_is_published_and_before_the_deadline_or_without_one(one_of_each):
    assert names(Posting.objects.open(), one_of_each) == {"published", "published_no_deadline"}


def test_ended_is_closed_expired_or_published_past_the_deadline(one_of_each):
    assert names(Posting.objects.ended(), one_of_each) == {"past_deadline", "expired", "closed"}


def test_public_is_open_and_ended_and_never_draft_pending_or_removed(one_of_each):
    public = names(Posting.objects.public(), one_of_each)
    assert public == {"published", "published_no_deadline", "past_deadline", "expired", "closed"}
    assert public.isdisjoint({"draft", "pending_review", "removed"})


def test_with_page_is_public_and_hidden_for_review_but_never_a_listing_never_published(
    one_of_each,
):
    hidden = PublishedPostingFactory(status=Posting.Status.PENDING_REVIEW)
    postings = {**one_of_each, "hidden": hidden}
    with_page = names(Posting.objects.with_page(), postings)
    assert with_page == names(Posting.objects.public(), postings) | {"hidden"}


def test_open_and_ended_split_the_public_listings_without_overlap(one_of_each):
    open_ = names(Posting.objects.open(), one_of_each)
    ended = names(Posting.objects.ended(), one_of_each)
    assert open_.isdisjoint(ended)
    assert open_ | ended == names(Posting.objects.public(), one_of_each)


def test_open_agrees_with_each_postings_is_open(one_of_each):
    open_pks = set(Posting.objects.open().values_list("pk", flat=True))
    for posting in Posting.objects.all():
        assert (posting.pk in open_pks) is posting.is_open, posting.state


def test_open_and_ended_take_the_moment_to_judge_at():
    posting = PublishedPostingFactory(deadline=timezone.now() + timedelta(days=10))
    later = timezone.now() + timedelta(days=11)
    assert posting in Posting.objects.open()
    assert posting not in Posting.objects.open(now=later)
    assert posting in Posting.objects.ended(now=later)


def test_a_deadline_exactly_now_is_no_longer_open():
    now = timezone.now()
    posting = PublishedPostingFactory(deadline=now)
    assert posting not in Posting.objects.open(now=now)
    assert posting in Posting.objects.ended(now=now)


def test_posted_since_keeps_listings_posted_at_or_after_the_moment():
    now = timezone.now()
    fresh = PublishedPostingFactory(posted_at=now - timedelta(hours=5))
    week_old = PublishedPostingFactory(
        posted_at=now - timedelta(days=7), updated_at=now - timedelta(days=7)
    )
    old = PublishedPostingFactory(posted_at=now - timedelta(days=40))
    assert set(Posting.objects.posted_since(now - timedelta(days=1))) == {fresh}
    assert set(Posting.objects.posted_since(now - timedelta(days=7))) == {fresh, week_old}
    assert old not in Posting.objects.posted_since(now - timedelta(days=30))


def test_by_company_keeps_only_that_companys_listings():
    acme = CompanyFactory(name="Acme")
    mine = PublishedPostingFactory.create_batch(2, company=acme)
    PublishedPostingFactory()
    assert set(Posting.objects.by_company(acme)) == set(mine)


def test_default_order_is_newest_first_with_the_id_breaking_ties():
    now = timezone.now()
    same = now - timedelta(days=1)
    older = PublishedPostingFactory(posted_at=now - timedelta(days=2))
    tie_a = PublishedPostingFactory(posted_at=same)
    tie_b = PublishedPostingFactory(posted_at=same)
    newest = PublishedPostingFactory(posted_at=now - timedelta(hours=1))
    assert list(Posting.objects.all()) == [newest, tie_b, tie_a, older]


def test_for_cards_leaves_out_the_long_text_and_brings_the_company_along(
    django_assert_num_queries,
):
    PublishedPostingFactory.create_batch(3)
    with django_assert_num_queries(1):
        cards = list(Posting.objects.for_cards())
        companies = [card.company.name for card in cards]
    assert len(companies) == 3
    assert {"description", "description_html", "search_vector"} <= cards[0].get_deferred_fields()
    assert "title" not in cards[0].get_deferred_fields()


# --- the search vector, kept by a trigger on PostgreSQL ---------------------------------------


def search(text: str) -> set[Posting]:
    queryset = Posting.objects.all()
    return set(keyword_filter(queryset, text, postgres=connection.vendor == "postgresql"))


@pytest.mark.postgres
def test_the_trigger_fills_the_search_vector_on_insert_with_title_company_place_and_description():
    posting = PublishedPostingFactory(
        title="Platform Engineer",
        company__name="Zyxwvut Analytics",
        city="Belgrade",
        region="",
        country="RS",
        description="You will tame our Kubernetes clusters.",
    )
    posting.refresh_from_db()
    vector = posting.search_vector
    assert vector is not None
    for lexeme in ("platform", "engin", "zyxwvut", "analyt", "belgrad", "kubernet", "cluster"):
        assert f"'{lexeme}'" in vector, lexeme


@pytest.mark.postgres
def test_the_trigger_weighs_the_title_above_the_company_above_the_place_above_the_description():
    posting = PublishedPostingFactory(
        title="Gardener",
        company__name="Quokka",
        city="Lisbon",
        region="",
        country="PT",
        workplace="onsite",
        description="Tulips.",
    )
    posting.refresh_from_db()
    vector = posting.search_vector
    assert "'garden':1A" in vector
    assert "'quokka':2B" in vector
    assert "'lisbon':3C" in vector
    assert "'tulip':4" in vector  # D, the default weight, is not printed


@pytest.mark.postgres
def test_a_listing_is_found_by_its_companys_name():
    posting = PublishedPostingFactory(title="Accountant", company__name="Zyxwvut Analytics")
    PublishedPostingFactory(title="Accountant")
    assert search("zyxwvut") == {posting}


@pytest.mark.postgres
def test_renaming_a_company_reindexes_its_listings():
    company = CompanyFactory(name="Zyxwvut Analytics")
    # (The factory's description names the company; these don't, so only the name can match.)
    postings = set(PublishedPostingFactory.create_batch(2, company=company, description="Join us."))
    other = PublishedPostingFactory(company__name="Someone Else")

    company.name = "Quokkaworks"
    company.save()

    assert search("quokkaworks") == postings
    assert search("zyxwvut") == set()
    assert other not in search("quokkaworks")


@pytest.mark.postgres
def test_editing_a_listing_reindexes_it_even_through_a_bulk_update():
    posting = PublishedPostingFactory(title="Accountant", description="Ledgers.")
    Posting.objects.filter(pk=posting.pk).update(
        title="Lighthouse Keeper", description="Lamps and foghorns."
    )
    assert search("lighthouse") == {posting}
    assert search("foghorn") == {posting}
    assert search("accountant") == set()
    assert search("ledgers") == set()


@pytest.mark.postgres
def test_moving_a_listing_to_another_company_reindexes_the_company_name():
    posting = PublishedPostingFactory(company__name="Zyxwvut Analytics", description="Join us.")
    Posting.objects.filter(pk=posting.pk).update(company=CompanyFactory(name="Quokkaworks"))
    assert search("quokkaworks") == {posting}
    assert search("zyxwvut") == set()


@pytest.mark.postgres
def test_changing_only_the_counters_leaves_the_search_vector_alone():
    posting = PublishedPostingFactory(title="Lighthouse Keeper")
    Posting.objects.filter(pk=posting.pk).update(search_vector=None)
    Posting.objects.filter(pk=posting.pk).update(view_count=7)
    posting.refresh_from_db()
    # The trigger fires only for the indexed columns, so a view count never rewrites the vector.
    assert posting.search_vector is None
