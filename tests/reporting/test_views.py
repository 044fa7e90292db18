"""The public report form: no account, clear messages, abuse-resistant, in place with JavaScript."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from postings.factories import DraftPostingFactory, PublishedPostingFactory, RemovedPostingFactory
from reporting.models import Report

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
THANKS = "Thank you. Our team will review this report."


def url(posting) -> str:
    return reverse("reporting:report", args=[posting.pk])


@pytest.fixture(params=["anonymous", "candidate", "employer", "moderator"])
def visitor(request, client):
    if request.param != "anonymous":
        user = get_user_model().objects.create_user(
            email=f"{request.param}@example.com", password="x" * 20,
            is_staff=request.param == "moderator",
        )  # fmt: skip
        client.force_login(user)
    return client


def test_anyone_can_report_a_listing_and_is_thanked(visitor):
    posting = PublishedPostingFactory()
    page = visitor.get(posting.get_absolute_url())
    assert "Report this job" in page.content.decode() and url(posting) in page.content.decode()
    response = visitor.post(url(posting), {"reason": "fake", "details": "No such company."},
                            HTTP_USER_AGENT=BROWSER)  # fmt: skip
    assert response.status_code == 200 and THANKS in response.content.decode()
    report = Report.objects.get()
    assert (report.posting, report.reason, report.details) == (posting, "fake", "No such company.")
    assert "127.0.0.1" not in report.reporter  # a salted hash, never the address


def test_the_form_has_a_page_of_its_own_without_javascript(client):
    posting = PublishedPostingFactory()
    response = client.get(url(posting))
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Inaccurate", "Closed", "Fake", "Duplicated", "Unsafe", "Something else"):
        assert text in html


def test_with_javascript_the_answer_is_json_for_the_page_to_show_in_place(client):
    posting = PublishedPostingFactory()
    response = client.post(url(posting), {"reason": "closed"}, HTTP_X_REQUESTED_WITH="fetch")
    assert response.json() == {"ok": True, "message": THANKS}
    bad = client.post(url(posting), {"reason": "bored"}, HTTP_X_REQUESTED_WITH="fetch")
    assert bad.status_code == 400 and "reason" in bad.json()["errors"]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"reason": "bored"}, "reason", "Select a valid choice"),
        ({}, "reason", "required"),
        ({"reason": "other", "details": "x" * 2001}, "details", "at most 2000"),
        ({"reason": "other", "email": "not-an-email"}, "email", "valid email"),
        ({"reason": "duplicated", "duplicate_of": "https://evil.example/jobs/1-x/"}, "duplicate_of",
         "not the address of a listing"),
        ({"reason": "duplicated", "duplicate_of": "/jobs/999999-nope/"}, "duplicate_of",
         "not the address of a listing"),
        ({"reason": "other", "details": "nul\x00byte"}, "details", "Null characters"),
        ({"reason": "duplicated", "duplicate_of": "http://[x/"}, "duplicate_of",
         "not the address of a listing"),
        ({"reason": "duplicated", "duplicate_of": "http://[1:2]:80/"}, "duplicate_of",
         "not the address of a listing"),
        # A page of this site naming a listing, but not the listing's own page.
        ({"reason": "duplicated", "duplicate_of": "/moderation/postings/1/"}, "duplicate_of",
         "not the address of a listing"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_message_and_keeps_what_was_typed(client, data, field, message):
    posting = PublishedPostingFactory()
    response = client.post(url(posting), data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not Report.objects.exists()


def test_a_duplicate_report_links_the_other_listing_and_refuses_itself(client):
    posting, original = PublishedPostingFactory(), PublishedPostingFactory()
    client.post(url(posting), {"reason": "duplicated", "duplicate_of": original.get_absolute_url()})
    assert Report.objects.get().duplicate_of == original
    own_link = f"http://testserver/jobs/{posting.pk}/"
    own = client.post(url(posting), {"reason": "duplicated", "duplicate_of": own_link})
    assert "That is this listing" in own.content.decode()


def test_reporting_twice_counts_once(client):
    posting = PublishedPostingFactory()
    for _ in range(3):
        client.post(url(posting), {"reason": "fake"}, HTTP_USER_AGENT=BROWSER)
    assert Report.objects.count() == 1


def test_the_honeypot_thanks_a_bot_and_stores_nothing(client):
    posting = PublishedPostingFactory()
    response = client.post(url(posting), {"reason": "fake", "website": "http://spam.example"})
    assert THANKS in response.content.decode()
    assert not Report.objects.exists()


def test_reports_are_rate_limited_per_visitor(client):
    posting = PublishedPostingFactory()
    statuses = [
        client.post(url(posting), {"reason": reason}, HTTP_USER_AGENT=BROWSER).status_code
        for reason in ("fake", "unsafe", "closed", "duplicated", "inaccurate", "other")
    ]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429
    assert Report.objects.count() == 5


@pytest.mark.parametrize("factory", [DraftPostingFactory, RemovedPostingFactory])
def test_unpublished_listings_cannot_be_reported(client, factory):
    assert client.post(url(factory()), {"reason": "fake"}).status_code == 404
