"""Saved searches: what is saved, which listings an alert carries, and sending them once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail, signing
from django.core.mail import get_connection
from django.http import QueryDict
from django.utils import timezone

from alerts import services, tasks
from alerts.models import AlertDelivery, SavedSearch
from postings.factories import (
    ClosedPostingFactory,
    PastDeadlinePostingFactory,
    PendingReviewPostingFactory,
    PublishedPostingFactory,
)
from postings.models import Posting
from tests.conftest import on_postgres

pytestmark = pytest.mark.django_db


def recent(**kwargs) -> Posting:
    """An open listing posted an hour ago: new to a search confirmed yesterday."""
    return PublishedPostingFactory(posted_at=timezone.now() - timedelta(hours=1), **kwargs)


def send_due(now=None) -> int:
    ids = list(SavedSearch.objects.due(now).values_list("pk", flat=True))
    return services.alert_batch_send(search_ids=ids, now=now)


# --- What is saved -------------------------------------------------------------------------------


def test_the_saved_query_keeps_valid_filters_in_one_spelling():
    params = QueryDict(
        "workplace=remote&seniority=senior&seniority=junior&q=%20Python%20&utm_source=x"
        "&sort=views&page=3&salary_min=oops&include_closed=1&posted=7"
    )
    query = services.normalize_query(params)
    assert query == "q=Python&seniority=junior&seniority=senior&workplace=remote"
    assert "utm_source" not in query and "include_closed" not in query and "posted" not in query


def test_a_search_is_described_in_words():
    query = services.normalize_query(
        QueryDict("q=python&workplace=remote&seniority=senior&country=DE&salary_min=60000")
    )
    assert services.describe_query(query) == (
        "“python” · Remote · Senior · in Germany · from 60,000 a year"
    )
    assert services.describe_query("") == "All jobs"


# --- Which listings an alert carries -------------------------------------------------------------


def test_an_alert_carries_open_matching_listings_posted_since_the_last_one(make_search):
    search = make_search(query="workplace=remote")
    new_remote = recent(workplace="remote", city="")
    recent(workplace="onsite")  # does not match
    PublishedPostingFactory(
        workplace="remote", city="", posted_at=timezone.now() - timedelta(days=9)
    )
    ClosedPostingFactory(workplace="remote", city="", posted_at=timezone.now() - timedelta(hours=2))
    PastDeadlinePostingFactory(
        workplace="remote", city="", posted_at=timezone.now() - timedelta(hours=3)
    )
    PendingReviewPostingFactory(workplace="remote", city="")
    content = services.alert_content(search, timezone.now())
    assert [p.pk for p in content.postings] == [new_remote.pk]
    assert content.more is False


@pytest.mark.skipif(not on_postgres(), reason="keyword search is full-text on PostgreSQL")
def test_keyword_searches_are_followed(make_search):
    search = make_search(query="q=python")
    python = recent(title="Python Developer")
    recent(title="Accountant", description="Numbers.")
    assert [p.pk for p in services.alert_content(search, timezone.now()).postings] == [python.pk]


def test_an_alert_carries_at_most_the_newest_few_and_says_there_are_more(make_search, settings):
    settings.ALERTS_MAX_LISTINGS = 2
    search = make_search()
    postings = [recent() for _ in range(3)]
    content = services.alert_content(search, timezone.now())
    newest = sorted(postings, key=lambda p: (p.posted_at, p.pk), reverse=True)[:2]
    assert content.postings == newest
    assert content.more is True


def test_listings_posted_before_the_subscription_are_not_new(make_search):
    search = make_search(confirmed_ago=timedelta(hours=2))
    PublishedPostingFactory(posted_at=timezone.now() - timedelta(hours=3))
    assert services.alert_content(search, timezone.now()).postings == []


def test_an_invalid_saved_filter_sends_nothing_rather_than_every_job(make_search):
    search = make_search(query="workplace=moon")
    recent()
    assert services.alert_content(search, timezone.now()).postings == []


# --- Sending -------------------------------------------------------------------------------------


def test_a_due_search_gets_one_email_with_unsubscribe_headers(make_search, mailoutbox):
    search = make_search(query="workplace=remote")
    posting = recent(workplace="remote", city="", title="Remote <b>Engineer</b>")
    assert send_due() == 1
    [email] = mailoutbox
    assert email.to == ["ann@example.com"]
    assert email.subject == "1 new job: Remote"
    assert "Remote <b>Engineer</b>" in email.body  # plain text: nothing escaped, nothing run
    assert posting.get_absolute_url() in email.body
    token = services.manage_token(search)
    assert (
        email.extra_headers["List-Unsubscribe"]
        == f"<http://127.0.0.1:8000/alerts/unsubscribe/{token}/>"
    )
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"/alerts/manage/{token}/" in email.body
    assert email.extra_headers["Message-ID"] == f"<alert-{search.pk}-1@127.0.0.1>"
    search.refresh_from_db()
    assert search.alerts_sent == 1 and search.last_sent_at is not None
    assert search.next_alert_at > timezone.now()
    assert list(AlertDelivery.objects.values_list("posting_id", flat=True)) == [posting.pk]


def test_the_same_listing_never_goes_twice(make_search, mailoutbox):
    search = make_search()
    first = recent()
    send_due()
    # A day later: one more listing; the first is still within the look-back, yet not repeated.
    SavedSearch.objects.filter(pk=search.pk).update(next_alert_at=timezone.now())
    second = recent()
    send_due()
    assert len(mailoutbox) == 2
    assert first.get_absolute_url() in mailoutbox[0].body
    assert first.get_absolute_url() not in mailoutbox[1].body
    assert second.get_absolute_url() in mailoutbox[1].body
    assert AlertDelivery.objects.filter(saved_search=search).count() == 2


def test_nothing_new_sends_nothing_and_waits_a_period(make_search, mailoutbox):
    search = make_search(frequency="weekly", confirmed_ago=timedelta(days=8))
    assert send_due() == 0
    assert mailoutbox == []
    search.refresh_from_db()
    assert search.next_alert_at > timezone.now() + timedelta(days=5)  # the same weekday as before
    assert search.alerts_sent == 0


def test_a_weekly_search_is_not_due_after_a_day(make_search, mailoutbox):
    make_search(frequency="weekly", confirmed_ago=timedelta(days=1, hours=1))
    recent()
    assert send_due() == 0
    assert mailoutbox == []


def test_sending_twice_sends_once(make_search, mailoutbox):
    search = make_search()
    recent()
    assert services.alert_batch_send(search_ids=[search.pk, search.pk]) == 1
    assert services.alert_batch_send(search_ids=[search.pk]) == 0
    assert len(mailoutbox) == 1


def test_unconfirmed_and_unsubscribed_searches_get_nothing(make_search, mailoutbox):
    make_search(email="a@example.com").__class__.objects.filter(email="a@example.com").update(
        unsubscribed_at=timezone.now()
    )
    SavedSearch.objects.create(email="b@example.com", next_alert_at=timezone.now())
    recent()
    assert send_due(timezone.now() + timedelta(days=30)) == 0
    assert mailoutbox == []


def test_a_mail_server_error_records_nothing_and_the_search_stays_due(make_search, monkeypatch):
    search = make_search()
    recent()

    def refuse(self, messages):
        raise ConnectionRefusedError("mail server away")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", refuse)
    with pytest.raises(ConnectionRefusedError):
        services.alert_batch_send(search_ids=[search.pk])
    assert not AlertDelivery.objects.exists()
    assert SavedSearch.objects.due().filter(pk=search.pk).exists()


def test_one_broken_search_does_not_hold_up_the_batch(make_search, mailoutbox, monkeypatch):
    broken, fine = make_search(email="x@example.com"), make_search(email="y@example.com")
    recent()
    real = services.alert_email

    def explode(search, *args):
        if search.pk == broken.pk:
            raise ValueError("a template bug")
        return real(search, *args)

    monkeypatch.setattr(services, "alert_email", explode)
    assert services.alert_batch_send(search_ids=[broken.pk, fine.pk]) == 1
    assert [m.to for m in mailoutbox] == [["y@example.com"]]
    assert SavedSearch.objects.due().filter(pk=broken.pk).exists()
    assert not AlertDelivery.objects.filter(saved_search=broken).exists()


def test_the_scheduler_queues_due_searches_once(make_search, settings, monkeypatch):
    settings.ALERTS_BATCH_SIZE = 2
    due = [make_search(email=f"{n}@example.com") for n in range(3)]
    make_search(email="later@example.com", confirmed_ago=timedelta(hours=1))
    batches: list[list[int]] = []
    monkeypatch.setattr("alerts.tasks.send_alert_batch.delay", batches.append)
    with django_capture_on_commit_callbacks_shim() as callbacks:
        assert services.alerts_schedule() == 3
    for callback in callbacks:
        callback()
    assert sorted(pk for batch in batches for pk in batch) == sorted(s.pk for s in due)
    assert [len(b) for b in batches] == [2, 1]
    assert services.alerts_schedule() == 0  # queued: not again while they wait
    later = timezone.now() + settings.ALERTS_QUEUED_LEASE + timedelta(minutes=1)
    assert services.alerts_schedule(now=later) == 3  # a lost batch gives them back


def django_capture_on_commit_callbacks_shim():
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=False)


# --- Links ---------------------------------------------------------------------------------------


def test_a_confirmation_link_expires(make_search, settings):
    search = SavedSearch.objects.create(email="c@example.com")
    token = services.confirm_token(search)
    later = signing.TimestampSigner(salt=services.CONFIRM_SALT)
    assert later.unsign_object(token)["s"] == search.pk
    settings.ALERTS_CONFIRM_MAX_AGE = timedelta(seconds=-1)
    with pytest.raises(services.InvalidLink):
        services.saved_search_confirm(token=token)


@pytest.mark.parametrize("token", ["", "1", "1:forged", "x" * 5000, "1:" + "a" * 27])
def test_a_forged_management_link_is_refused(token):
    SavedSearch.objects.create(email="d@example.com")
    with pytest.raises(services.InvalidLink):
        services.search_for_manage_token(token)


def test_confirming_starts_new_jobs_from_now_at_the_chosen_frequency():
    search = SavedSearch.objects.create(email="e@example.com", frequency="daily")
    services.saved_search_confirm(token=services.confirm_token(search, "weekly"))
    search.refresh_from_db()
    assert search.is_active and search.frequency == "weekly"
    assert search.next_alert_at - search.confirmed_at == timedelta(days=7)


def test_confirmation_emails_per_address_are_capped(settings):
    settings.ALERTS_CONFIRMATIONS_PER_DAY = 2
    for _ in range(2):
        services.saved_search_request(email="F@example.com", frequency="daily", query="")
    with pytest.raises(services.SubscribeRefused, match="several confirmation emails"):
        services.saved_search_request(email="f@example.com", frequency="daily", query="")
    assert SavedSearch.objects.count() == 1
    assert len(mail.outbox) == 0  # queued on commit: the test transaction never commits


def test_confirmed_searches_per_address_are_capped(settings, make_search):
    settings.ALERTS_MAX_PER_EMAIL = 2
    for query in ("workplace=remote", "workplace=onsite"):
        make_search(email="g@example.com", query=query)
    with pytest.raises(services.SubscribeRefused, match="already has 2 saved searches"):
        services.saved_search_request(email="G@example.com", frequency="daily", query="")
    # Asking again for one it has (to change how often) is not one more.
    services.saved_search_request(
        email="g@example.com", frequency="weekly", query="workplace=remote"
    )


def test_unconfirmed_searches_a_stranger_made_do_not_lock_the_owner_out(settings):
    settings.ALERTS_MAX_PER_EMAIL = 20
    for n in range(20):  # as strangers left them before the fix: never confirmed
        SavedSearch.objects.create(email="victim@example.com", query=f"q=job{n}")
    search = services.saved_search_request(
        email="victim@example.com", frequency="daily", query="q=python"
    )
    services.saved_search_confirm(token=services.confirm_token(search))
    search.refresh_from_db()
    assert search.is_active


def test_a_request_the_confirmation_cap_refuses_saves_nothing(settings):
    settings.ALERTS_CONFIRMATIONS_PER_DAY = 2
    for n in range(2):
        services.saved_search_request(
            email=f"victim+{n}@example.com", frequency="daily", query=f"q=job{n}"
        )
    with pytest.raises(services.SubscribeRefused, match="several confirmation emails"):
        services.saved_search_request(email="Victim+2@example.com", frequency="daily", query="")
    assert SavedSearch.objects.count() == 2


def test_confirming_a_search_past_the_cap_is_refused(settings, make_search):
    settings.ALERTS_MAX_PER_EMAIL = 1
    pending = SavedSearch.objects.create(email="h@example.com", query="q=rust")
    make_search(email="h@example.com", query="q=go")
    with pytest.raises(services.SubscribeRefused, match="already has 1 saved searches"):
        services.saved_search_confirm(token=services.confirm_token(pending))
    pending.refresh_from_db()
    assert not pending.is_active


def test_searches_never_confirmed_are_deleted_once_their_link_has_expired(settings, make_search):
    settings.ALERTS_CONFIRM_MAX_AGE = timedelta(days=3)
    now = timezone.now()
    stale = SavedSearch.objects.create(email="i@example.com", query="q=a")
    asked_again = SavedSearch.objects.create(email="i@example.com", query="q=b")
    fresh = SavedSearch.objects.create(email="i@example.com", query="q=c")
    SavedSearch.objects.filter(pk__in=[stale.pk, asked_again.pk]).update(
        created_at=now - timedelta(days=3, minutes=1)
    )
    services.saved_search_request(email="i@example.com", frequency="daily", query="q=b")
    confirmed = make_search(email="i@example.com", confirmed_ago=timedelta(days=30))
    SavedSearch.objects.filter(pk=confirmed.pk).update(created_at=now - timedelta(days=30))

    assert tasks.delete_stale_searches() == 1
    assert set(SavedSearch.objects.values_list("pk", flat=True)) == {
        asked_again.pk, fresh.pk, confirmed.pk
    }  # fmt: skip
    assert "alerts.tasks.delete_stale_searches" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }


def test_alert_emails_use_one_connection_per_batch(make_search, mailoutbox, monkeypatch):
    for n in range(3):
        make_search(email=f"{n}@example.com")
    recent()
    opened = []
    real = get_connection
    monkeypatch.setattr(services, "get_connection", lambda: opened.append(1) or real())
    assert send_due() == 3
    assert len(opened) == 1
