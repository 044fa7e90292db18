"""The saved-search pages, for anyone (no account): subscribe, confirm, manage, unsubscribe."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts import services
from alerts.models import SavedSearch
from postings.factories import PublishedPostingFactory
from tests.alerts.conftest import links_in

pytestmark = pytest.mark.django_db

SUBSCRIBE = "/alerts/"


def subscribe(client, capture, **data):
    form = {"email": "ann@example.com", "frequency": "daily", "query": "workplace=remote"} | data
    with capture(execute=True):
        return client.post(SUBSCRIBE, form)


def test_the_list_page_offers_alerts_for_exactly_its_filters(client):
    PublishedPostingFactory(workplace="remote", city="")
    page = client.get("/jobs/?workplace=remote&sort=views&utm_source=x").content.decode()
    assert "Email me new jobs like these" in page
    assert 'id="alert-form"' in page and f'action="{SUBSCRIBE}"' in page
    assert 'name="query" value="workplace=remote&amp;utm_source=x"' in page  # junk dropped on save


def test_subscribing_sends_a_confirmation_link_and_subscribes_nobody_yet(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    response = subscribe(client, django_capture_on_commit_callbacks, query="workplace=remote&x=1")
    assert response.status_code == 200
    assert "Check your email" in response.content.decode()
    search = SavedSearch.objects.get()
    assert (search.email, search.query, search.is_active) == (
        "ann@example.com",
        "workplace=remote",
        False,
    )
    [email] = mailoutbox
    assert email.to == ["ann@example.com"]
    assert email.subject == "Confirm your job alert: Remote"
    assert len(links_in(email.body, "/alerts/confirm/")) == 1


def test_the_confirmation_link_asks_for_one_click_then_subscribes(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    subscribe(client, django_capture_on_commit_callbacks, frequency="weekly")
    [link] = links_in(mailoutbox[0].body, "/alerts/confirm/")
    page = client.get(link)  # a mail scanner opening the link changes nothing
    assert page.status_code == 200 and "Confirm your job alert" in page.content.decode()
    assert not SavedSearch.objects.get().is_active
    response = client.post(link)
    search = SavedSearch.objects.get()
    assert search.is_active and search.frequency == "weekly"
    assert response.status_code == 302
    assert response.url == reverse("alerts:manage", args=[services.manage_token(search)])
    assert "Your job alert is on" in client.get(response.url).content.decode()


@pytest.mark.parametrize("token", ["nonsense", "1:abc:def", "x" * 3000])
def test_a_bad_confirmation_link_says_so(client, token):
    for method in (client.get, client.post):
        response = method(reverse("alerts:confirm", args=[token]))
        assert response.status_code == 400
        assert "This link cannot be used" in response.content.decode()


def test_an_expired_confirmation_link_says_so(client, settings):
    search = SavedSearch.objects.create(email="x@example.com")
    url = reverse("alerts:confirm", args=[services.confirm_token(search)])
    settings.ALERTS_CONFIRM_MAX_AGE = timedelta(seconds=-1)
    assert client.post(url).status_code == 400
    assert not SavedSearch.objects.get().is_active


@pytest.mark.parametrize(
    "data, message",
    [
        ({"email": ""}, "This field is required."),
        ({"email": "not-an-address"}, "Enter a valid email address."),
        ({"email": "<script>alert(1)</script>@x.com"}, "Enter a valid email address."),
        ({"frequency": "hourly"}, "Select a valid choice."),
        ({"email": "a@b.co" + "m" * 300}, "at most 254 characters"),
    ],
)
def test_mistakes_are_explained_on_the_form(
    client, mailoutbox, django_capture_on_commit_callbacks, data, message
):
    response = subscribe(client, django_capture_on_commit_callbacks, **data)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in unescape(page)
    assert "<script>alert(1)</script>" not in page
    assert not SavedSearch.objects.exists() and not mailoutbox


def test_hostile_filters_are_not_saved(client, django_capture_on_commit_callbacks):
    response = subscribe(
        client, django_capture_on_commit_callbacks,
        query="workplace=<script>&q=" + "x" * 5000 + "&seniority=senior",
    )  # fmt: skip
    assert response.status_code == 400  # the hidden field is capped at 2,000 characters
    response = subscribe(
        client, django_capture_on_commit_callbacks, query="workplace=<script>&seniority=senior"
    )
    assert response.status_code == 200
    assert SavedSearch.objects.get().query == "seniority=senior"


def test_a_bot_filling_the_hidden_field_is_thanked_and_ignored(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    response = subscribe(client, django_capture_on_commit_callbacks, website="http://spam")
    assert response.status_code == 200
    assert not SavedSearch.objects.exists() and not mailoutbox


def test_one_address_cannot_ask_for_alerts_without_limit(
    client, django_capture_on_commit_callbacks
):
    for n in range(10):
        assert (
            subscribe(client, django_capture_on_commit_callbacks, email=f"{n}@x.com").status_code
            == 200
        )
    response = subscribe(client, django_capture_on_commit_callbacks, email="eleven@x.com")
    assert response.status_code == 429
    assert "Please try later" in response.content.decode()


def test_nobody_can_flood_one_inbox_with_confirmations(
    client, mailoutbox, django_capture_on_commit_callbacks, settings
):
    for n in range(settings.ALERTS_CONFIRMATIONS_PER_DAY):
        other = Client(REMOTE_ADDR=f"10.0.0.{n + 1}")
        assert subscribe(other, django_capture_on_commit_callbacks).status_code == 200
    response = subscribe(Client(REMOTE_ADDR="10.0.1.1"), django_capture_on_commit_callbacks)
    assert response.status_code == 429
    assert len(mailoutbox) == settings.ALERTS_CONFIRMATIONS_PER_DAY


def test_tagged_spellings_of_one_inbox_share_its_confirmation_cap(
    mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.ALERTS_CONFIRMATIONS_PER_DAY = 3
    for n in range(5):
        client = Client(REMOTE_ADDR=f"10.0.2.{n}")
        subscribe(client, django_capture_on_commit_callbacks, email=f"victim+{n}@example.com")
    assert len(mailoutbox) == 3
    assert SavedSearch.objects.count() == 3  # nothing saved for the refused ones


def test_confirming_past_the_cap_says_why_and_subscribes_nothing(client, settings):
    settings.ALERTS_MAX_PER_EMAIL = 1
    now = timezone.now()
    SavedSearch.objects.create(
        email="ann@example.com", query="q=go", confirmed_at=now, next_alert_at=now
    )
    pending = SavedSearch.objects.create(email="ann@example.com", query="q=rust")
    response = client.post(reverse("alerts:confirm", args=[services.confirm_token(pending)]))
    assert response.status_code == 409
    assert "already has 1 saved searches" in response.content.decode()
    pending.refresh_from_db()
    assert not pending.is_active


def test_the_subscribe_page_works_without_the_list(client):
    response = client.get(SUBSCRIBE + "?workplace=remote&seniority=senior")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Remote · Senior" in page
    assert 'value="seniority=senior&amp;workplace=remote"' in page


def test_put_is_not_allowed(client):
    assert client.put(SUBSCRIBE).status_code == 405


# --- Managing and unsubscribing ------------------------------------------------------------------


@pytest.fixture
def active_search():
    now = timezone.now()
    return SavedSearch.objects.create(
        email="ann@example.com", query="workplace=remote", confirmed_at=now,
        covered_until=now, next_alert_at=now + timedelta(days=1),
    )  # fmt: skip


def test_the_management_page_changes_how_often(client, active_search):
    url = reverse("alerts:manage", args=[services.manage_token(active_search)])
    page = client.get(url).content.decode()
    assert "Your job alert is on" in page and "Remote" in page and "ann@example.com" in page
    response = client.post(url, {"frequency": "weekly"})
    assert response.status_code == 302
    active_search.refresh_from_db()
    assert active_search.frequency == "weekly"
    assert active_search.next_alert_at - active_search.covered_until == timedelta(days=7)
    assert client.post(url, {"frequency": "yearly"}).status_code == 400


def test_a_forged_management_link_shows_nothing(client, active_search):
    token = services.manage_token(active_search)
    forged = f"{active_search.pk + 1}:{token.split(':', 1)[1]}"
    for name in ("alerts:manage", "alerts:unsubscribe"):
        response = client.get(reverse(name, args=[forged]))
        assert response.status_code == 400
        assert "ann@example.com" not in response.content.decode()
        assert client.post(reverse(name, args=[forged])).status_code == 400
    assert SavedSearch.objects.get().is_active


def test_one_click_unsubscribe_needs_no_page_and_no_csrf_token(active_search):
    client = Client(enforce_csrf_checks=True)
    url = reverse("alerts:unsubscribe", args=[services.manage_token(active_search)])
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    active_search.refresh_from_db()
    assert not active_search.is_active
    assert client.post(url).status_code == 200  # twice is fine


def test_opening_the_unsubscribe_link_asks_first(client, active_search):
    url = reverse("alerts:unsubscribe", args=[services.manage_token(active_search)])
    page = client.get(url).content.decode()
    assert "Stop this job alert?" in page
    active_search.refresh_from_db()
    assert active_search.is_active


def test_an_unsubscribed_search_can_be_turned_on_again_from_its_page(client, active_search):
    token = services.manage_token(active_search)
    client.post(reverse("alerts:unsubscribe", args=[token]))
    page = client.get(reverse("alerts:manage", args=[token])).content.decode()
    assert "Your job alert is off" in page
    client.post(reverse("alerts:manage", args=[token]), {"frequency": "daily"})
    active_search.refresh_from_db()
    assert active_search.is_active
    assert active_search.covered_until > active_search.confirmed_at  # new jobs from now on


def test_turning_a_search_on_again_past_the_cap_says_why(client, active_search, settings):
    settings.ALERTS_MAX_PER_EMAIL = 1
    token = services.manage_token(active_search)
    client.post(reverse("alerts:unsubscribe", args=[token]))
    now = timezone.now()
    SavedSearch.objects.create(
        email="ann@example.com", query="q=go", confirmed_at=now, next_alert_at=now
    )
    response = client.post(reverse("alerts:manage", args=[token]), {"frequency": "daily"})
    assert response.status_code == 400
    assert "already has 1 saved searches" in response.content.decode()
    active_search.refresh_from_db()
    assert not active_search.is_active


def test_a_logged_in_user_uses_the_same_pages(client, django_user_model, active_search):
    user = django_user_model.objects.create_user(email="bo@example.com", password="x" * 20)
    client.force_login(user)
    url = reverse("alerts:manage", args=[services.manage_token(active_search)])
    assert client.get(url).status_code == 200
    assert client.get(SUBSCRIBE).status_code == 200
