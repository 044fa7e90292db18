"""Edits and reopens by a company that is not verified wait for a moderator as a revision, while
the listing stays public as last approved; a listing hidden for review says so, with a 200."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.factories import EmployerFactory, VerifiedUserFactory
from postings import services
from postings.factories import (
    ClosedPostingFactory,
    ExpiredPostingFactory,
    PendingReviewPostingFactory,
    PublishedPostingFactory,
)
from postings.models import Posting, PostingRevision

pytestmark = pytest.mark.django_db

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
NOT_FOUND = "may never have been published"


@pytest.fixture
def employer():
    return EmployerFactory()  # its company is not verified


@pytest.fixture
def moderator():
    return VerifiedUserFactory(email="moderator@example.com")


@pytest.fixture
def employer_client(client, employer):
    client.force_login(employer.user)
    return client


@pytest.fixture
def live(employer):
    return PublishedPostingFactory(
        company=employer.company,
        title="Harbour Pilot",
        description="Guide ships into the harbour.",  # as the form keeps it: no final newline
        applies_on_board=True,
        apply_url="",
    )


def edit_form_data(client, posting, **changes) -> dict:
    """The employer's edit form as the page fills it in, with ``changes`` typed over it."""
    form = client.get(reverse("employer:posting_edit", args=[posting.pk])).context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    if form["deadline"].value():
        data["deadline"] = str(form["deadline"].value())
    return {**data, **changes}


def post_edit(client, posting, **changes):
    data = edit_form_data(client, posting, **changes)
    response = client.post(reverse("employer:posting_edit", args=[posting.pk]), data)
    assert response.status_code == 302, response.context["form"].errors
    return response


def public_page(posting) -> str:
    from django.test import Client

    response = Client().get(posting.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
    assert response.status_code == 200
    return response.content.decode()


# --- An unverified company's edit of a live listing -------------------------------------------


def test_an_unverified_companys_new_title_waits_and_the_listing_stays_public_as_it_was(
    employer_client, live
):
    post_edit(employer_client, live, title="Harbour Master")

    live.refresh_from_db()
    assert live.status == Posting.Status.PUBLISHED and live.title == "Harbour Pilot"
    page = public_page(live)
    assert "Harbour Pilot" in page and "Harbour Master" not in page
    short = employer_client.get(reverse("postings:short", args=[live.pk]))
    assert short.status_code == 302 and short["Location"] == live.get_absolute_url()
    revision = PostingRevision.objects.get(posting=live)
    assert revision.state == PostingRevision.State.PENDING
    assert revision.values["title"] == "Harbour Master"
    assert Posting.objects.open().filter(pk=live.pk).exists()


def test_the_employer_sees_the_live_listing_and_the_edit_waiting(employer_client, live):
    response = employer_client.post(
        reverse("employer:posting_edit", args=[live.pk]),
        edit_form_data(employer_client, live, title="Harbour Master"),
        follow=True,
    )
    page = response.content.decode()
    assert "Your edit is waiting for review" in page
    assert "Harbour Pilot" in page  # the dashboard lists the live version
    preview = employer_client.get(
        reverse("employer:posting_preview", args=[live.pk]) + "?edit=pending"
    )
    assert preview.status_code == 200 and "<h1" in preview.content.decode()
    assert "Harbour Master" in preview.content.decode()
    form = employer_client.get(reverse("employer:posting_edit", args=[live.pk]))
    assert form.context["form"]["title"].value() == "Harbour Master"  # goes on from the edit


def test_a_second_edit_while_one_waits_replaces_it(employer_client, live):
    post_edit(employer_client, live, title="Harbour Master")
    post_edit(employer_client, live, title="Chief Harbour Master", region="North")

    revision = PostingRevision.objects.get(posting=live)
    assert revision.values["title"] == "Chief Harbour Master"
    assert revision.values["region"] == "North"
    live.refresh_from_db()
    assert live.title == "Harbour Pilot" and live.region != "North"


def test_an_edit_back_to_the_approved_words_withdraws_the_one_waiting(employer_client, live):
    post_edit(employer_client, live, title="Harbour Master")
    post_edit(employer_client, live, title="Harbour Pilot", workplace="remote")

    revision = PostingRevision.objects.get(posting=live)
    assert revision.state == PostingRevision.State.WITHDRAWN
    live.refresh_from_db()
    assert live.title == "Harbour Pilot" and live.workplace == "remote"


def test_a_change_that_keeps_the_wording_applies_at_once(employer, live):
    live.salary_min, live.salary_max = 50000, 60000
    live.salary_currency, live.salary_period = "EUR", "year"
    saved = services.posting_save(posting=live, by=employer.user)
    assert saved.salary_min == 50000 and saved.is_open
    assert not PostingRevision.objects.exists()


@pytest.mark.parametrize("field", ["city", "region"])
def test_a_new_free_text_place_waits_for_review_like_new_words(employer, live, field):
    setattr(live, field, "Call +1 555 0100 to pay your training fee")
    services.posting_save(posting=live, by=employer.user)
    live.refresh_from_db()
    assert getattr(live, field) != "Call +1 555 0100 to pay your training fee"
    assert PostingRevision.objects.pending().get(posting=live).values[field].startswith("Call")


def test_a_verified_companys_edit_applies_at_once(employer, live):
    employer.company.is_verified = True
    employer.company.save()
    live.title = "Harbour Master"
    assert services.posting_save(posting=live, by=employer.user).title == "Harbour Master"
    assert not PostingRevision.objects.exists()


def submitted(posting, by, **changes) -> PostingRevision:
    for name, value in changes.items():
        setattr(posting, name, value)
    services.posting_save(posting=posting, by=by)
    return PostingRevision.objects.pending().get(posting=posting)


def test_an_approved_edit_shows_its_new_title_everywhere(client, employer, live, moderator):
    revision = submitted(live, employer.user, title="Harbour Master",
                         description="Guide ships into the **lighthouse** basin.")  # fmt: skip
    pages = (reverse("postings:list"), reverse("postings:feed_rss"), live.get_absolute_url())
    for url in pages:  # rendered, and kept
        assert "Harbour Pilot" in client.get(url, HTTP_USER_AGENT=BROWSER_UA).content.decode()
    # Words waiting for review are not searchable yet (another search: a kept list page learns
    # of a listing that newly matches within PAGE_CACHE_SECONDS, as README says).
    unapproved = client.get(reverse("postings:list"), {"q": "lighthouse basin"}).content.decode()
    assert "Harbour" not in unapproved

    posting = services.posting_revision_approve(revision=revision, by=moderator)

    assert posting.title == "Harbour Master" and posting.is_open
    assert posting.updated_at > posting.posted_at
    for url in pages:
        page = client.get(url, HTTP_USER_AGENT=BROWSER_UA).content.decode()
        assert "Harbour Master" in page and "Harbour Pilot" not in page
    found = client.get(reverse("postings:list"), {"q": "lighthouse"}).content.decode()
    assert "Harbour Master" in found  # the search vector follows the approved words
    revision.refresh_from_db()
    assert revision.state == PostingRevision.State.APPROVED and revision.reviewed_by == moderator


def test_a_rejected_edit_leaves_the_listing_as_it_was_and_the_employer_sees_why(
    employer_client, employer, live, moderator
):
    revision = submitted(live, employer.user, title="Send money to apply")
    services.posting_revision_reject(revision=revision, by=moderator, note="Asks for money.")

    live.refresh_from_db()
    assert live.title == "Harbour Pilot" and live.is_open
    dashboard = employer_client.get(reverse("employer:dashboard")).content.decode()
    assert "was not approved: Asks for money." in dashboard


def test_an_edit_decided_once_cannot_be_decided_again(employer, live, moderator):
    revision = submitted(live, employer.user, title="Harbour Master")
    services.posting_revision_reject(revision=revision, by=moderator, note="No.")
    with pytest.raises(services.PostingActionError, match="no longer waiting"):
        services.posting_revision_approve(revision=revision, by=moderator)
    live.refresh_from_db()
    assert live.title == "Harbour Pilot"


def test_verifying_the_company_applies_its_waiting_edits(employer, live, moderator):
    submitted(live, employer.user, title="Harbour Master")
    services.company_verify(company=employer.company, by=moderator)
    live.refresh_from_db()
    assert live.title == "Harbour Master"


def test_an_extended_deadline_survives_the_approval_of_an_earlier_edit(employer, live, moderator):
    revision = submitted(live, employer.user, title="Harbour Master")
    later = timezone.now() + timedelta(days=90)
    services.posting_extend_deadline(posting=live, by=employer.user, deadline=later)

    posting = services.posting_revision_approve(revision=revision, by=moderator)
    assert posting.deadline == later and posting.title == "Harbour Master"


def test_an_approved_edit_that_keeps_the_deadline_keeps_its_reminder(employer, live, moderator):
    sent = timezone.now() - timedelta(hours=1)
    Posting.objects.filter(pk=live.pk).update(deadline_reminder_sent_at=sent)
    live.refresh_from_db()
    revision = submitted(live, employer.user, title="Harbour Master")
    posting = services.posting_revision_approve(revision=revision, by=moderator)
    assert posting.deadline_reminder_sent_at == sent


# --- Reopen ------------------------------------------------------------------------------------


def test_a_reopen_by_an_unverified_company_reads_closed_until_approved(
    employer_client, employer, moderator
):
    closed = ClosedPostingFactory(company=employer.company, title="Harbour Pilot")
    deadline = (timezone.localdate() + timedelta(days=20)).isoformat()
    response = employer_client.post(
        reverse("employer:posting_reopen", args=[closed.pk]), {"deadline": deadline}, follow=True
    )
    assert "waiting for review before it opens again" in response.content.decode()

    closed.refresh_from_db()
    assert closed.status == Posting.Status.CLOSED and closed.state == "closed"
    page = public_page(closed)
    assert "This job is closed" in page and "Apply for this job" not in page
    revision = PostingRevision.objects.pending().get(posting=closed)
    assert revision.reopen

    posting = services.posting_revision_approve(revision=revision, by=moderator)
    assert posting.is_open and posting.deadline.date() > timezone.localdate()
    assert "Apply for this job" in public_page(posting)


def test_a_reopen_joins_the_edit_already_waiting(employer, moderator):
    closed = ClosedPostingFactory(company=employer.company, title="Harbour Pilot",
                                  deadline=timezone.now() + timedelta(days=5))  # fmt: skip
    submitted(closed, employer.user, title="Harbour Master")
    closed.refresh_from_db()
    services.posting_reopen(posting=closed, by=employer.user)

    revision = PostingRevision.objects.pending().get(posting=closed)
    assert revision.reopen and revision.values["title"] == "Harbour Master"
    posting = services.posting_revision_approve(revision=revision, by=moderator)
    assert posting.is_open and posting.title == "Harbour Master"


def test_a_reopen_that_is_no_longer_possible_is_refused_on_approval(employer, moderator):
    closed = ClosedPostingFactory(company=employer.company,
                                  deadline=timezone.now() + timedelta(days=5))  # fmt: skip
    services.posting_reopen(posting=closed, by=employer.user)
    Posting.objects.filter(pk=closed.pk).update(duplicate_of=PublishedPostingFactory())
    revision = PostingRevision.objects.pending().get(posting=closed)
    with pytest.raises(services.PostingActionError, match="marked this posting a duplicate"):
        services.posting_revision_approve(revision=revision, by=moderator)
    closed.refresh_from_db()
    assert closed.status == Posting.Status.CLOSED


# --- A listing hidden for review ----------------------------------------------------------------


def under_review(response) -> str:
    page = response.content.decode()
    assert response.status_code == 200
    assert "This listing is under review" in page and NOT_FOUND not in page
    assert '<meta name="robots" content="noindex">' in page
    assert "application/ld+json" not in page and "Apply for this job" not in page
    return page


def test_a_listing_hidden_by_a_moderator_says_it_is_under_review(client, live, moderator):
    from reporting.services import posting_hide

    url = live.get_absolute_url()
    assert client.get(url, HTTP_USER_AGENT=BROWSER_UA).status_code == 200  # rendered and kept
    posting_hide(posting=live, by=moderator, note="Checking the company.")

    page = under_review(client.get(url, HTTP_USER_AGENT=BROWSER_UA))
    assert "Harbour Pilot" in page
    short = client.get(reverse("postings:short", args=[live.pk]))
    assert short.status_code == 302 and short["Location"] == url
    apply = client.post(reverse("postings:apply", args=[live.pk]), {"name": "Ada"})
    assert apply.status_code == 302 and apply["Location"] == url


def test_a_listing_hidden_by_the_safety_net_says_it_is_under_review(client, live, settings):
    from reporting.models import Report
    from reporting.services import report_submit

    settings.SAFETY_NET_REPORTS = 2
    # Two independent reporters, an hour apart, from networks of their own: the net hides an
    # unverified company's new listing pending review.
    report_submit(posting=live, reason="fake", reporter="a", network="n1")
    Report.objects.update(created_at=timezone.now() - timedelta(hours=1))
    report_submit(posting=live, reason="fake", reporter="b", network="n2")
    live.refresh_from_db()
    assert live.status == Posting.Status.PENDING_REVIEW
    under_review(client.get(live.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA))


def test_a_listing_never_published_is_still_not_found(client):
    waiting = PendingReviewPostingFactory()
    response = client.get(waiting.get_absolute_url())
    assert response.status_code == 404 and NOT_FOUND in response.content.decode()
    assert client.get(reverse("postings:short", args=[waiting.pk])).status_code == 404


def test_a_revision_sets_only_what_candidates_see(live):
    revision = PostingRevision(posting=live, values={"title": "Harbour Master", "status": "removed",
                                                     "view_count": 10**6})  # fmt: skip
    posting = revision.apply_to(Posting.objects.get(pk=live.pk))
    assert posting.title == "Harbour Master"
    assert posting.status == Posting.Status.PUBLISHED and posting.view_count == 0


def test_a_revision_reads_its_values_back_as_their_types(employer, live):
    deadline = timezone.now() + timedelta(days=12, microseconds=123)
    revision = submitted(live, employer.user, title="Harbour Master", deadline=deadline,
                         salary_min=None, salary_max=None, country="RS")  # fmt: skip
    revision.refresh_from_db()
    posting = revision.apply_to(Posting())
    assert posting.deadline == deadline and posting.salary_min is None
    assert posting.country.code == "RS" and posting.applies_on_board is True


def test_the_employer_can_discard_the_edit_waiting(employer_client, employer, live):
    submitted(live, employer.user, title="Harbour Master")
    url = reverse("employer:posting_withdraw_edit", args=[live.pk])
    assert url in employer_client.get(reverse("employer:dashboard")).content.decode()

    response = employer_client.post(url, follow=True)
    assert "is discarded" in response.content.decode()
    assert PostingRevision.objects.get(posting=live).state == PostingRevision.State.WITHDRAWN
    live.refresh_from_db()
    assert live.title == "Harbour Pilot" and live.is_open
    again = employer_client.post(url, follow=True).content.decode()
    assert "No edit of this posting is waiting for review." in again


def test_another_companys_edit_cannot_be_discarded(client, employer, live):
    submitted(live, employer.user, title="Harbour Master")
    client.force_login(EmployerFactory().user)
    response = client.post(reverse("employer:posting_withdraw_edit", args=[live.pk]))
    assert response.status_code == 404
    assert PostingRevision.objects.get(posting=live).state == PostingRevision.State.PENDING


@pytest.mark.parametrize("how", ["extend", "edit"])
def test_bringing_an_expired_listing_back_by_its_deadline_waits_for_review_like_a_reopen(
    employer, how
):
    posting = ExpiredPostingFactory(company=employer.company, title="Harbour Pilot")
    later = timezone.now() + timedelta(days=20)
    if how == "extend":
        services.posting_extend_deadline(posting=posting, by=employer.user, deadline=later)
    else:
        posting.deadline = later
        services.posting_save(posting=posting, by=employer.user)
    posting.refresh_from_db()
    assert posting.state == "expired" and not posting.is_open
    revision = PostingRevision.objects.pending().get(posting=posting)
    assert revision.reopen
    services.posting_revision_approve(revision=revision, by=employer.user)
    posting.refresh_from_db()
    assert posting.is_open and abs(posting.deadline - later) < timedelta(seconds=1)
