"""The moderators' queue of edits waiting for review: who may open it, the old-beside-new page,
and what approving and rejecting do."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.urls import reverse

from accounts.factories import EmployerFactory, VerifiedUserFactory
from postings import services as posting_services
from postings.factories import PublishedPostingFactory
from postings.models import Posting, PostingRevision
from reporting.models import ModerationAction

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
def employer():
    return EmployerFactory()  # its company is not verified


@pytest.fixture
def revision(employer):
    posting = PublishedPostingFactory(
        company=employer.company,
        title="Harbour Pilot",
        description="Guide ships into the harbour.\nNight shifts.",
    )
    posting.title = "Harbour Master"
    posting.description = "Guide ships into the harbour.\nDay shifts only."
    posting_services.posting_save(posting=posting, by=employer.user)
    return PostingRevision.objects.pending().get(posting=posting)


def pages(revision):
    return {
        "revisions": ("get", reverse("moderation:revisions")),
        "revision": ("get", reverse("moderation:revision", args=[revision.pk])),
        "revision_act": ("post", reverse("moderation:revision_act", args=[revision.pk])),
    }


APPROVE = {"action": "approve"}


@pytest.mark.parametrize("name", ["revisions", "revision", "revision_act"])
def test_anonymous_visitors_are_sent_to_log_in(client, revision, name):
    method, url = pages(revision)[name]
    response = getattr(client, method)(url, APPROVE if method == "post" else None)
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]
    assert Posting.objects.get(pk=revision.posting_id).title == "Harbour Pilot"


@pytest.mark.parametrize("name", ["revisions", "revision", "revision_act"])
def test_employers_are_refused_even_their_own_edit(client, revision, employer, name):
    client.force_login(employer.user)
    method, url = pages(revision)[name]
    response = getattr(client, method)(url, APPROVE if method == "post" else None)
    assert response.status_code == 403
    assert Posting.objects.get(pk=revision.posting_id).title == "Harbour Pilot"


def test_the_queue_lists_the_edits_waiting(mod_client, revision):
    response = mod_client.get(reverse("moderation:revisions"))
    assert response.status_code == 200
    assert list(response.context["revisions"]) == [revision]
    page = response.content.decode()
    assert "Harbour Pilot" in page and "Harbour Master" in page


def test_the_edit_page_shows_old_beside_new_and_the_description_line_by_line(mod_client, revision):
    response = mod_client.get(reverse("moderation:revision", args=[revision.pk]))
    assert response.status_code == 200
    changes = {change.label: change for change in response.context["changes"]}
    assert set(changes) == {"Title", "Description"}
    assert (changes["Title"].old, changes["Title"].new) == ("Harbour Pilot", "Harbour Master")
    assert changes["Description"].lines == [
        (" ", "Guide ships into the harbour."),
        ("-", "Night shifts."),
        ("+", "Day shifts only."),
    ]
    page = response.content.decode()
    assert "<del>Harbour Pilot</del>" in page and "<ins>Harbour Master</ins>" in page


def test_approving_puts_the_edit_live_and_logs_it(mod_client, revision, moderator):
    response = mod_client.post(reverse("moderation:revision_act", args=[revision.pk]), APPROVE)
    assert response.status_code == 302 and response["Location"] == reverse("moderation:revisions")
    posting = Posting.objects.get(pk=revision.posting_id)
    assert posting.title == "Harbour Master" and posting.is_open
    action = ModerationAction.objects.get(posting=posting)
    assert action.kind == ModerationAction.Kind.APPROVE and action.actor == moderator
    assert action.note.startswith("Edit approved")
    assert not mod_client.get(reverse("moderation:revisions")).context["revisions"]


def approve_form(mod_client, revision) -> dict:
    """The approve button's form, as the edit's page renders it."""
    html = mod_client.get(reverse("moderation:revision", args=[revision.pk])).content.decode()
    seen = re.search(r'name="seen" value="([^"]+)"', html)[1]
    return {**APPROVE, "seen": seen}


def test_an_edit_changed_after_the_moderator_opened_it_is_not_approved_unread(
    mod_client, revision, employer
):
    form = approve_form(mod_client, revision)  # the moderator reads "Harbour Master" ...
    posting = Posting.objects.get(pk=revision.posting_id)
    posting.title = "Send a deposit to start"  # ... the employer swaps the edit waiting ...
    posting_services.posting_save(posting=posting, by=employer.user)
    url = reverse("moderation:revision_act", args=[revision.pk])
    response = mod_client.post(url, form, follow=True)  # ... and the moderator approves
    assert "changed this edit after you opened it" in response.content.decode()
    assert Posting.objects.get(pk=revision.posting_id).title == "Harbour Pilot"
    assert PostingRevision.objects.get(pk=revision.pk).state == PostingRevision.State.PENDING
    mod_client.post(url, approve_form(mod_client, revision))  # read again, then approved
    assert Posting.objects.get(pk=revision.posting_id).title == "Send a deposit to start"


def test_rejecting_needs_a_note_then_tells_the_employer(
    mod_client, revision, employer, django_capture_on_commit_callbacks
):
    url = reverse("moderation:revision_act", args=[revision.pk])
    mod_client.post(url, {"action": "reject", "note": " "})
    revision.refresh_from_db()
    assert revision.state == PostingRevision.State.PENDING

    with django_capture_on_commit_callbacks(execute=True):
        mod_client.post(url, {"action": "reject", "note": "The new title hides the pay."})
    revision.refresh_from_db()
    assert revision.state == PostingRevision.State.REJECTED
    assert revision.note == "The new title hides the pay."
    assert Posting.objects.get(pk=revision.posting_id).title == "Harbour Pilot"
    assert [message.to for message in mail.outbox] == [[employer.user.email]]
    assert "The new title hides the pay." in mail.outbox[0].body


def test_an_edit_already_decided_is_a_message_not_an_error(mod_client, revision):
    url = reverse("moderation:revision_act", args=[revision.pk])
    mod_client.post(url, {"action": "reject", "note": "No."})
    response = mod_client.post(url, APPROVE, follow=True)
    assert response.status_code == 200
    assert "no longer waiting for review" in response.content.decode()
    assert Posting.objects.get(pk=revision.posting_id).title == "Harbour Pilot"


def test_a_suspended_companys_edit_is_not_approved(mod_client, revision, moderator):
    from reporting.services import company_suspend

    company_suspend(company=revision.posting.company, by=moderator, note="Scam reports.")
    url = reverse("moderation:revision_act", args=[revision.pk])
    response = mod_client.post(url, APPROVE, follow=True)
    assert "is suspended" in response.content.decode()
    assert Posting.objects.get(pk=revision.posting_id).title == "Harbour Pilot"


def test_the_listings_moderation_page_links_to_its_edit_waiting(mod_client, revision):
    page = mod_client.get(reverse("moderation:posting", args=[revision.posting_id]))
    assert reverse("moderation:revision", args=[revision.pk]) in page.content.decode()
