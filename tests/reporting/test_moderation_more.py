"""Moderators mark a listing a duplicate of another, and suspend (or un-suspend) a company."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.factories import EmployerFactory, VerifiedUserFactory
from postings import services as posting_services
from postings.factories import (
    ClosedPostingFactory,
    DraftPostingFactory,
    PendingReviewPostingFactory,
    PublishedPostingFactory,
    VerifiedCompanyFactory,
)
from postings.models import Posting
from reporting import services
from reporting.models import ModerationAction, Report

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator():
    user = VerifiedUserFactory(email="moderator@example.com")
    user.groups.add(Group.objects.get(name="Moderators"))
    return user


@pytest.fixture
def mod_client(client, moderator):
    client.force_login(moderator)
    return client


@pytest.fixture
def posting():
    return PublishedPostingFactory(title="Copy of the role")


@pytest.fixture
def original():
    return PublishedPostingFactory(title="The original role")


def report(posting, reporter="visitor-a", reason="duplicated", **kwargs):
    return Report.objects.create(posting=posting, reason=reason, reporter=reporter, **kwargs)


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def mark(client, posting, other, note="Same job listed twice."):
    return client.post(
        reverse("moderation:posting_duplicate", args=[posting.pk]), {"other": other, "note": note}
    )


def company_act(client, company, action, note="Scam company.", next_url=""):
    data = {"action": action, "note": note}
    if next_url:
        data["next"] = next_url
    return client.post(reverse("moderation:company_act", args=[company.pk]), data)


# Marking a duplicate


@pytest.mark.parametrize("how", ["url", "path", "short", "id", "hash-id"])
def test_marking_a_duplicate_closes_it_and_points_to_the_other(
    mod_client, moderator, posting, original, how
):
    first, second = report(posting), report(posting, reporter="b", reason="fake")
    given = {
        "url": "http://testserver" + original.get_absolute_url(),
        "path": original.get_absolute_url(),
        "short": reverse("postings:short", args=[original.pk]),
        "id": str(original.pk),
        "hash-id": f"#{original.pk}",
    }[how]
    response = mark(mod_client, posting, given)
    assert response.status_code == 302
    assert response["Location"] == reverse("moderation:posting", args=[posting.pk])
    assert any("duplicate of “The original role”" in text for text in texts(response))
    posting.refresh_from_db()
    assert posting.duplicate_of == original
    assert posting.status == Posting.Status.CLOSED
    assert posting.closed_at is not None
    assert posting.closed_reason == "Listed again: see the other listing."
    for open_report in (first, second):
        open_report.refresh_from_db()
        assert open_report.status == Report.Status.RESOLVED
        assert open_report.handled_by == moderator
    (action,) = ModerationAction.objects.all()
    assert action.kind == ModerationAction.Kind.MARK_DUPLICATE
    assert action.posting == posting and action.company == posting.company
    assert action.actor == moderator
    assert action.note.startswith("Same job listed twice.")
    assert str(original.pk) in action.note
    # The public page sends candidates to the other listing.
    page = mod_client.get(posting.get_absolute_url()).content.decode()
    assert "This job is listed again." in page and original.get_absolute_url() in page


@pytest.mark.parametrize(
    "other, message",
    [
        ("self", "That is this listing: give the other one."),
        ("unknown-id", "No listing on this site has that address or id"),
        ("elsewhere", "No listing on this site has that address or id"),
        ("not-a-listing", "No listing on this site has that address or id"),
        ("", "Give the other listing's address or id."),
        ("bracket", "No listing on this site has that address or id"),
        ("superscript", "No listing on this site has that address or id"),
        ("huge", "No listing on this site has that address or id"),
    ],
)
def test_marking_a_duplicate_refuses_what_is_not_another_listing(
    mod_client, posting, other, message
):
    given = {
        "self": str(posting.pk),
        "unknown-id": "999999",
        "elsewhere": "https://elsewhere.example" + posting.get_absolute_url(),
        "not-a-listing": reverse("moderation:queue"),
        "": "",
        "bracket": "http://[x/",
        "superscript": "#²",
        "huge": "9" * 30,
    }[other]
    response = mark(mod_client, posting, given)
    assert any(message in text for text in texts(response))
    posting.refresh_from_db()
    assert posting.status == Posting.Status.PUBLISHED and posting.duplicate_of is None
    assert not ModerationAction.objects.exists()


def test_marking_a_duplicate_needs_a_note(mod_client, posting, original):
    response = mark(mod_client, posting, str(original.pk), note="  ")
    assert any("Write a short note saying why." in text for text in texts(response))
    assert Posting.objects.get(pk=posting.pk).status == Posting.Status.PUBLISHED
    assert not ModerationAction.objects.exists()


def test_marking_a_duplicate_refuses_a_loop(mod_client, moderator, posting, original):
    services.posting_mark_duplicate(posting=original, other=posting, by=moderator, note="Dup.")
    response = mark(mod_client, posting, str(original.pk))
    assert any("would make a loop" in text for text in texts(response))
    posting.refresh_from_db()
    assert posting.status == Posting.Status.PUBLISHED and posting.duplicate_of is None
    assert ModerationAction.objects.count() == 1


def test_a_loop_is_refused_through_a_chain_too(moderator):
    a, b, c = PublishedPostingFactory(), PublishedPostingFactory(), PublishedPostingFactory()
    Posting.objects.filter(pk=b.pk).update(duplicate_of=c)
    Posting.objects.filter(pk=c.pk).update(duplicate_of=a)
    with pytest.raises(services.ModerationError, match="would make a loop"):
        services.posting_mark_duplicate(posting=a, other=b, by=moderator, note="Dup.")


def test_the_other_listing_must_not_itself_be_a_duplicate(moderator, posting, original):
    third = PublishedPostingFactory(title="Third")
    services.posting_mark_duplicate(posting=original, other=third, by=moderator, note="Dup.")
    with pytest.raises(services.ModerationError, match="itself marked a duplicate of “Third”"):
        services.posting_mark_duplicate(posting=posting, other=original, by=moderator, note="D")


@pytest.mark.parametrize("factory", [DraftPostingFactory, PendingReviewPostingFactory])
def test_the_other_listing_must_be_public(mod_client, posting, factory):
    hidden = factory(title="Not public")
    response = mark(mod_client, posting, str(hidden.pk))
    assert any("“Not public” is" in t and "not public" in t for t in texts(response))
    assert Posting.objects.get(pk=posting.pk).status == Posting.Status.PUBLISHED


def test_a_closed_public_listing_can_be_the_other_one(moderator, posting):
    closed = ClosedPostingFactory()
    services.posting_mark_duplicate(posting=posting, other=closed, by=moderator, note="Dup.")
    assert Posting.objects.get(pk=posting.pk).duplicate_of == closed


def test_a_draft_cannot_be_marked_a_duplicate(moderator, original):
    draft = DraftPostingFactory()
    with pytest.raises(services.ModerationError, match="only a public listing"):
        services.posting_mark_duplicate(posting=draft, other=original, by=moderator, note="D")


def test_a_marked_duplicate_cannot_be_reopened(moderator, posting, original):
    services.posting_mark_duplicate(posting=posting, other=original, by=moderator, note="Dup.")
    user = EmployerFactory(company=posting.company).user
    with pytest.raises(posting_services.PostingActionError, match="duplicate"):
        posting_services.posting_reopen(posting=posting, by=user)


def test_the_page_offers_the_reported_other_listing(mod_client, posting, original):
    report(posting, duplicate_of=original)
    page = mod_client.get(reverse("moderation:posting", args=[posting.pk])).content.decode()
    assert "Mark as a duplicate of…" in page
    assert f'value="http://testserver{original.get_absolute_url()}"' in page


def test_without_a_duplicate_report_the_field_is_empty(mod_client, posting):
    page = mod_client.get(reverse("moderation:posting", args=[posting.pk])).content.decode()
    assert 'name="other" id="duplicate-other" maxlength="500" required value=""' in page


# Suspending a company


def test_suspending_hides_the_companys_listings_and_logs_on_the_company(mod_client, moderator):
    company = VerifiedCompanyFactory(name="Shady Ltd")
    live = PublishedPostingFactory.create_batch(2, company=company)
    waiting = PendingReviewPostingFactory(company=company)
    closed = ClosedPostingFactory(company=company)
    draft = DraftPostingFactory(company=company)
    elsewhere = PublishedPostingFactory()
    open_report = report(live[0], reason="fake")
    other_report = report(elsewhere, reason="fake")
    page = reverse("moderation:posting", args=[live[0].pk])
    response = company_act(mod_client, company, "suspend", next_url=page)
    assert response.status_code == 302 and response["Location"] == page
    assert any("Company suspended: 2 public listings hidden" in t for t in texts(response))
    company.refresh_from_db()
    assert company.is_suspended
    statuses = dict(Posting.objects.filter(company=company).values_list("pk", "status"))
    assert [statuses[p.pk] for p in live] == [Posting.Status.PENDING_REVIEW] * 2
    assert statuses[waiting.pk] == Posting.Status.PENDING_REVIEW
    assert statuses[closed.pk] == Posting.Status.CLOSED
    assert statuses[draft.pk] == Posting.Status.DRAFT
    assert Posting.objects.get(pk=elsewhere.pk).status == Posting.Status.PUBLISHED
    open_report.refresh_from_db()
    other_report.refresh_from_db()
    assert open_report.status == Report.Status.RESOLVED
    assert other_report.status == Report.Status.OPEN
    (action,) = ModerationAction.objects.all()
    assert action.kind == ModerationAction.Kind.SUSPEND_COMPANY
    assert action.company == company and action.posting is None and action.actor == moderator
    assert "2 public listings hidden pending review, 1 already waiting" in action.note
    # The moderation pages say so.
    body = mod_client.get(page).content.decode()
    assert "Shady Ltd is suspended" in body and "Lift the suspension…" in body
    assert "Suspended the company" in body
    approvals = mod_client.get(reverse("moderation:approvals")).content.decode()
    assert "Suspended" in approvals


def test_suspending_needs_a_note(mod_client, posting):
    response = company_act(mod_client, posting.company, "suspend", note="")
    assert any("Write a short note" in text for text in texts(response))
    posting.company.refresh_from_db()
    assert not posting.company.is_suspended
    assert Posting.objects.get(pk=posting.pk).status == Posting.Status.PUBLISHED
    assert not ModerationAction.objects.exists()


def test_suspending_twice_is_refused(moderator, posting):
    services.company_suspend(company=posting.company, by=moderator, note="Scam.")
    with pytest.raises(services.ModerationError, match="already suspended"):
        services.company_suspend(company=posting.company, by=moderator, note="Scam.")


def test_a_suspended_companys_member_cannot_publish(client, moderator):
    employer = EmployerFactory(company=VerifiedCompanyFactory())
    draft = DraftPostingFactory(company=employer.company)
    services.company_suspend(company=employer.company, by=moderator, note="Scam.")
    with pytest.raises(posting_services.PostingActionError, match="suspended"):
        posting_services.posting_publish(posting=draft, by=employer.user)
    client.force_login(employer.user)
    client.post(reverse("employer:posting_publish", args=[draft.pk]))
    assert Posting.objects.get(pk=draft.pk).status == Posting.Status.DRAFT


def test_a_suspended_companys_listings_cannot_be_approved_or_verified(moderator):
    waiting = PendingReviewPostingFactory()
    services.company_suspend(company=waiting.company, by=moderator, note="Scam.")
    with pytest.raises(services.ModerationError, match="lift the suspension"):
        services.posting_moderation_approve(posting=waiting, by=moderator)
    with pytest.raises(services.ModerationError, match="lift the suspension"):
        services.company_moderation_verify(company=waiting.company, by=moderator)
    assert Posting.objects.get(pk=waiting.pk).status == Posting.Status.PENDING_REVIEW


def test_verifying_a_company_leaves_the_listings_hidden_for_review_hidden(moderator, posting):
    # Hidden after it was public (by a moderator here; the safety net and a lifted suspension
    # leave the same state): verifying the company answers nothing about what it was hidden for.
    assert not posting.company.is_verified
    new = PendingReviewPostingFactory(company=posting.company)  # never public: goes live
    services.posting_hide(posting=posting, by=moderator, note="Reported as a scam.")
    approved = services.company_moderation_verify(company=posting.company, by=moderator)
    assert [p.pk for p in approved] == [new.pk]
    assert Posting.objects.get(pk=new.pk).status == Posting.Status.PUBLISHED
    hidden = Posting.objects.get(pk=posting.pk)
    assert hidden.status == Posting.Status.PENDING_REVIEW and hidden.is_under_review


def test_lifting_the_suspension_leaves_the_listings_waiting(mod_client, moderator, posting):
    company = posting.company
    services.company_suspend(company=company, by=moderator, note="Scam.")
    page = reverse("moderation:posting", args=[posting.pk])
    response = company_act(mod_client, company, "lift_suspension", "Sorted out.", next_url=page)
    assert response.status_code == 302 and response["Location"] == page
    (message,) = texts(response)
    assert "Suspension lifted" in message and "stay pending review (1 listing)" in message
    company.refresh_from_db()
    assert not company.is_suspended
    assert Posting.objects.get(pk=posting.pk).status == Posting.Status.PENDING_REVIEW
    lifted = ModerationAction.objects.first()
    assert lifted.kind == ModerationAction.Kind.SUSPEND_COMPANY and lifted.company == company
    assert lifted.note.startswith("Suspension lifted: Sorted out.")
    assert ModerationAction.objects.count() == 2
    body = mod_client.get(page).content.decode()
    assert "Lifted the company&#39;s suspension" in body and "Suspend the company…" in body
    # Now each listing is approved on its own.
    services.posting_moderation_approve(posting=posting, by=moderator)
    assert Posting.objects.get(pk=posting.pk).status == Posting.Status.PUBLISHED


def test_lifting_needs_a_note_and_a_suspension(mod_client, moderator, posting):
    response = company_act(mod_client, posting.company, "lift_suspension", note="Fine now.")
    assert any("is not suspended" in text for text in texts(response))
    services.company_suspend(company=posting.company, by=moderator, note="Scam.")
    response = company_act(mod_client, posting.company, "lift_suspension", note="")
    assert any("Write a short note" in text for text in texts(response))
    posting.company.refresh_from_db()
    assert posting.company.is_suspended


# Who may do it


def targets(posting, original):
    return {
        "duplicate": (
            reverse("moderation:posting_duplicate", args=[posting.pk]),
            {"other": str(original.pk), "note": "Dup."},
        ),
        "suspend": (
            reverse("moderation:company_act", args=[posting.company.pk]),
            {"action": "suspend", "note": "Scam."},
        ),
    }


def unchanged(posting):
    posting.refresh_from_db()
    posting.company.refresh_from_db()
    return posting.status == Posting.Status.PUBLISHED and not posting.company.is_suspended


@pytest.mark.parametrize("name", ["duplicate", "suspend"])
def test_anonymous_visitors_are_sent_to_log_in(client, posting, original, name):
    url, data = targets(posting, original)[name]
    response = client.post(url, data)
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]
    assert unchanged(posting) and not ModerationAction.objects.exists()


@pytest.mark.parametrize("name", ["duplicate", "suspend"])
def test_employers_are_refused(client, posting, original, name):
    client.force_login(EmployerFactory(company=posting.company).user)
    url, data = targets(posting, original)[name]
    assert client.post(url, data).status_code == 403
    assert unchanged(posting) and not ModerationAction.objects.exists()


@pytest.mark.parametrize("name", ["duplicate", "suspend"])
def test_moderators_may(mod_client, posting, original, name):
    assert mod_client.get(reverse("moderation:posting", args=[posting.pk])).status_code == 200
    url, data = targets(posting, original)[name]
    assert mod_client.post(url, data).status_code == 302
    assert not unchanged(posting) and ModerationAction.objects.count() == 1


def test_the_actions_need_a_csrf_token(moderator, posting, original):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(moderator)
    for url, data in targets(posting, original).values():
        assert client.post(url, data).status_code == 403
    assert unchanged(posting)


def test_the_actions_are_posts_only(mod_client, posting, original):
    for url, _ in targets(posting, original).values():
        assert mod_client.get(url).status_code == 405


def test_suspending_emails_the_companys_members(
    moderator, mailoutbox, django_capture_on_commit_callbacks
):
    employer = EmployerFactory(company=VerifiedCompanyFactory(name="Tom & Jerry <Ltd>"))
    with django_capture_on_commit_callbacks(execute=True):
        services.company_suspend(company=employer.company, by=moderator, note="Asks for fees & ID.")
    (mail,) = mailoutbox
    assert mail.to == [employer.user.email]
    assert mail.subject.startswith("Tom & Jerry <Ltd> is suspended")
    assert "Asks for fees & ID." in mail.body and "can publish or reopen" in mail.body


def test_the_company_page_shows_its_listings_and_the_audit_log_of_all_of_them(client):
    from postings.factories import PublishedPostingFactory
    from reporting.models import ModerationAction

    posting = PublishedPostingFactory(title="Listed Role")
    ModerationAction.objects.create(kind="hide", posting=posting, note="Spam wording.")
    ModerationAction.objects.create(kind="verify_company", company=posting.company, note="Checked.")
    url = f"/moderation/companies/{posting.company.pk}/"
    assert client.get(url).status_code == 302  # anonymous: log in first
    user = get_user_model().objects.create_user(email="m2@example.com", password="x" * 20)
    client.force_login(user)
    assert client.get(url).status_code == 403
    user.groups.add(Group.objects.get(name="Moderators"))
    html = client.get(url).content.decode()
    for text in ("Listed Role", "Spam wording.", "Checked.", "Hid the listing"):
        assert text in html
    assert client.get("/moderation/companies/999999/").status_code == 404
