"""Kept pages (postings/pagecache.py): served again only while everything they show is still
true, to anonymous visitors only, with each visitor's own CSRF token."""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import F
from django.middleware.csrf import _unmask_cipher_token
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from postings import changes, facets, pagecache
from postings.factories import PublishedPostingFactory
from postings.models import Company, Posting

pytestmark = pytest.mark.django_db

LIST_URL = reverse("postings:list")
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture(autouse=True)
def kept_pages_marked(monkeypatch):
    """Each response served from a kept page carries a mark, for ``kept``."""
    respond = pagecache._response

    def marked(request, kept_page):
        response = respond(request, kept_page)
        response.served_kept = True
        return response

    monkeypatch.setattr(pagecache, "_response", marked)


def kept(response) -> bool:
    return getattr(response, "served_kept", False)


def next_after_a_render_with(monkeypatch, client, url: str, target, name: str, stand_in):
    """The page served after one rendered while ``target.name`` was ``stand_in`` (a change
    landing mid-render)."""
    with monkeypatch.context() as patched:
        patched.setattr(target, name, stand_in)
        client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    return client.get(url, HTTP_USER_AGENT=BROWSER_UA)


def test_an_anonymous_list_page_is_kept_and_served_again(client):
    PublishedPostingFactory(title="Lighthouse Keeper")
    first = client.get(LIST_URL)
    second = client.get(LIST_URL)
    assert not kept(first) and kept(second)
    assert "Lighthouse Keeper" in second.content.decode()
    assert second["Content-Type"].startswith("text/html")


def test_a_listing_that_closes_leaves_a_kept_list_at_once(client):
    staying = PublishedPostingFactory(title="Lighthouse Keeper")
    closing = PublishedPostingFactory(title="Harbour Pilot")
    client.get(LIST_URL)
    closing.status = Posting.Status.CLOSED
    closing.save()
    page = client.get(LIST_URL).content.decode()
    assert "Harbour Pilot" not in page and staying.title in page


def test_a_listing_closed_by_a_bulk_update_leaves_a_kept_list_too(client):
    closing = PublishedPostingFactory(title="Harbour Pilot")
    client.get(LIST_URL)
    Posting.objects.filter(pk=closing.pk).update(status=Posting.Status.EXPIRED)  # as workers do
    assert "Harbour Pilot" not in client.get(LIST_URL).content.decode()


def test_a_kept_listing_page_shows_its_closing_and_edits_at_once(client):
    posting = PublishedPostingFactory(title="Lighthouse Keeper")
    url = posting.get_absolute_url()
    client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    assert kept(client.get(url, HTTP_USER_AGENT=BROWSER_UA))
    posting.status, posting.closed_at = Posting.Status.CLOSED, timezone.now()
    posting.save()
    page = client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    assert not kept(page)
    assert "This job is closed" in page.content.decode()


def test_a_similar_job_that_closes_leaves_a_kept_listing_page(client):
    posting = PublishedPostingFactory(practice_area="design", seniority="senior", country="DE")
    similar = PublishedPostingFactory(
        title="Type Designer", practice_area="design", seniority="senior", country="DE"
    )
    url = posting.get_absolute_url()
    assert "Type Designer" in client.get(url, HTTP_USER_AGENT=BROWSER_UA).content.decode()
    Posting.objects.filter(pk=similar.pk).update(status=Posting.Status.CLOSED)
    page = client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    assert not kept(page) and "Type Designer" not in page.content.decode()


def test_a_kept_page_goes_when_a_deadline_on_it_passes(client):
    posting = PublishedPostingFactory(deadline=timezone.now() + timedelta(seconds=2.5))
    url = posting.get_absolute_url()
    client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    assert kept(client.get(url, HTTP_USER_AGENT=BROWSER_UA))
    time.sleep(2.6)
    page = client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    assert not kept(page)
    assert "This job is closed" in page.content.decode() or "closed" in page.content.decode()


def test_views_are_counted_on_kept_pages_too(client, redis_client):  # buffered in Redis
    from postings import counters

    posting = PublishedPostingFactory(view_count=0)
    url = posting.get_absolute_url()
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        client.get(url, HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR=address)
    assert counters.pending_counts([posting.pk], "views")[posting.pk] == 3


def test_a_kept_page_and_its_view_count_are_one_redis_round_trip(client, redis_client, monkeypatch):
    from postings import counters

    posting = PublishedPostingFactory(view_count=0)
    url = posting.get_absolute_url()
    client.get(url, HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="10.0.0.1")  # renders and keeps it
    monkeypatch.setattr(counters, "count_once", lambda *a, **k: pytest.fail("a round trip more"))
    for address in ("10.0.0.2", "10.0.0.3", "10.0.0.3"):  # the last one seen already
        assert kept(client.get(url, HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR=address))
    assert counters.pending_counts([posting.pk], "views")[posting.pk] == 3


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"status": Posting.Status.REMOVED}, 410),
        ({"status": Posting.Status.DRAFT}, 404),
        ({"slug": "a-new-title"}, 301),
    ],
)
def test_a_kept_page_that_is_no_longer_the_listings_counts_no_view(
    client, redis_client, change, status
):
    from postings import counters

    posting = PublishedPostingFactory(view_count=0)
    url = posting.get_absolute_url()
    client.get(url, HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="10.0.0.1")  # kept, counted
    Posting.objects.filter(pk=posting.pk).update(updated_at=timezone.now(), **change)
    visit = {"HTTP_USER_AGENT": BROWSER_UA, "REMOTE_ADDR": "10.0.0.2"}
    assert client.get(url, **visit).status_code == status
    assert counters.pending_counts([posting.pk], "views")[posting.pk] == 1
    if status == 301:  # the visitor follows it, and is counted there, once
        assert client.get(url, follow=True, **visit).status_code == 200
        assert counters.pending_counts([posting.pk], "views")[posting.pk] == 2


def test_an_address_naming_no_listing_leaves_nothing_in_the_counters(client, redis_client):
    from postings import counters

    for _ in range(2):
        page = client.get("/jobs/987654321-no-such-job/", HTTP_USER_AGENT=BROWSER_UA)
        assert page.status_code == 404
    assert counters.pending_counts([987654321], "views") == {}
    assert not list(redis_client.scan_iter(match="*counters*987654321*"))


def test_signed_in_visitors_and_pending_messages_always_get_a_fresh_page(client, django_user_model):
    PublishedPostingFactory()
    client.get(LIST_URL)
    user = django_user_model.objects.create_user(email="e@example.com", password="pw-123456789")
    client.force_login(user)
    assert not kept(client.get(LIST_URL))
    other = Client()
    other.cookies["messages"] = "something"
    assert not kept(other.get(LIST_URL))


def test_each_visitor_gets_their_own_csrf_token_on_a_kept_page():
    PublishedPostingFactory()
    Client().get(LIST_URL)  # someone else's visit made the kept page
    visitor = Client(enforce_csrf_checks=True)
    page = visitor.get(LIST_URL)
    assert kept(page)
    tokens = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()))
    assert len(tokens) == 1 and "\x00" not in next(iter(tokens))
    response = visitor.post(
        reverse("alerts:subscribe"),
        {"csrfmiddlewaretoken": tokens.pop(), "query": "", "email": "a@example.com"},
    )
    assert response.status_code != 403


@pytest.mark.parametrize("url", ["list", "detail", "feed"])
def test_a_kept_page_answers_with_the_headers_of_a_rendered_one(url):
    posting = PublishedPostingFactory()
    url = {
        "list": LIST_URL,
        "detail": posting.get_absolute_url(),
        "feed": reverse("postings:feed_atom") + "?workplace=remote",
    }[url]
    rendered = Client().get(url, HTTP_USER_AGENT=BROWSER_UA)
    served = Client().get(url, HTTP_USER_AGENT=BROWSER_UA)
    assert not kept(rendered) and kept(served)
    assert set(served.headers) - {"Age"} == set(rendered.headers)
    if "Cache-Control" in rendered.headers:  # caches downstream: its max-age counts from then
        assert 0 <= int(served["Age"]) <= 2
    for header in ("Content-Type", "Cache-Control", "Last-Modified", "Vary", "X-Frame-Options"):
        assert served.headers.get(header) == rendered.headers.get(header), header
    for header in ("Content-Security-Policy", "Permissions-Policy"):  # set outside the kept page
        assert served.headers[header] == rendered.headers[header], header
    assert int(served["Content-Length"]) == len(served.content)
    assert set(served.cookies) == set(rendered.cookies)  # a feed has no form: no CSRF cookie
    if "csrftoken" in rendered.cookies:
        assert served.cookies["csrftoken"]["samesite"] == rendered.cookies["csrftoken"]["samesite"]


def test_a_kept_page_follows_the_policy_in_force_not_the_one_it_was_kept_under(settings):
    """The policies are set around the kept pages, not kept with them: an operator's switch to
    report-only applies to pages already kept."""
    posting = PublishedPostingFactory()
    Client().get(posting.get_absolute_url())
    policy = settings.CONTENT_SECURITY_POLICY
    settings.CONTENT_SECURITY_POLICY = None
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = policy
    served = Client().get(posting.get_absolute_url())
    assert kept(served)
    assert "Content-Security-Policy" not in served
    assert "script-src 'self'" in served["Content-Security-Policy-Report-Only"]
    assert "camera=()" in served["Permissions-Policy"]


def test_a_visitor_with_a_csrf_cookie_keeps_it_on_a_kept_page():
    PublishedPostingFactory()
    Client().get(LIST_URL)
    visitor = Client()
    visitor.cookies["csrftoken"] = "b" * 32
    page = visitor.get(LIST_URL)
    assert kept(page)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    assert _unmask_cipher_token(token) == "b" * 32
    assert page.cookies["csrftoken"].value == "b" * 32  # sent again, its expiry renewed


def test_a_visitor_with_a_malformed_csrf_cookie_gets_a_new_one_on_a_kept_page():
    PublishedPostingFactory()
    Client().get(LIST_URL)
    visitor = Client()
    visitor.cookies["csrftoken"] = "<script>"
    page = visitor.get(LIST_URL)
    assert kept(page)
    secret = page.cookies["csrftoken"].value
    assert len(secret) == 32 and secret.isalnum()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    assert _unmask_cipher_token(token) == secret


def test_a_kept_page_is_served_without_the_database(client, django_assert_num_queries):
    posting = PublishedPostingFactory()
    url = posting.get_absolute_url()
    client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    with django_assert_num_queries(0):
        assert kept(client.get(url, HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="10.0.0.9"))


def test_a_page_served_again_comes_from_this_process_while_its_version_holds(client, monkeypatch):
    posting = PublishedPostingFactory(title="Harbour Pilot")
    url = posting.get_absolute_url()
    client.get(url, HTTP_USER_AGENT=BROWSER_UA)  # rendered and kept
    assert kept(client.get(url, HTTP_USER_AGENT=BROWSER_UA))  # fetched and decompressed
    with monkeypatch.context() as patch:
        patch.setattr(pagecache.zlib, "decompress", lambda data: pytest.fail("fetched again"))
        again = client.get(url, HTTP_USER_AGENT=BROWSER_UA)
        assert kept(again) and "Harbour Pilot" in again.content.decode()
    Posting.objects.filter(pk=posting.pk).update(title="Quay Pilot", updated_at=timezone.now())
    client.get(url, HTTP_USER_AGENT=BROWSER_UA)  # rendered and kept anew: a new version
    page = client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    assert kept(page) and "Quay Pilot" in page.content.decode()


def test_the_pages_held_in_process_stay_within_their_bytes():
    held = pagecache._Held(limit=250)
    for n in range(5):
        held.put(f"page{n}", pagecache.Kept(b"v", bytes(100), (), 0.0))
    assert held.size <= 250 and list(held.pages) == ["page3", "page4"]
    held.get("page3")  # served: the last to go
    held.put("page5", pagecache.Kept(b"v", bytes(100), (), 0.0))
    assert list(held.pages) == ["page3", "page5"]
    held.put("huge", pagecache.Kept(b"v", bytes(300), (), 0.0))
    assert "huge" not in held.pages and held.size == 200


def test_a_list_is_kept_no_longer_than_its_counts_may_be_old(client, settings, monkeypatch):
    PublishedPostingFactory()
    snapshot = facets.current_cube()
    old = dataclasses.replace(
        snapshot, counted_at=time.time() - settings.FACET_CACHE_SECONDS + 0.5
    )  # half a second of its promise left
    monkeypatch.setitem(facets._memo, "cube", old)
    client.get(LIST_URL)
    assert not kept(client.get(LIST_URL))  # under a second left: not kept at all


def test_pages_are_rendered_every_time_when_turned_off(client, settings):
    settings.PAGE_CACHE_SECONDS = 0
    PublishedPostingFactory()
    client.get(LIST_URL)
    assert not kept(client.get(LIST_URL))


def test_redis_that_is_down_means_rendering(client, settings):
    from postings import counters

    posting = PublishedPostingFactory()
    client.get(LIST_URL)
    reachable, settings.REDIS_URL = settings.REDIS_URL, "redis://127.0.0.1:1/0"  # nothing there
    counters.get_redis.cache_clear()
    try:
        assert client.get(LIST_URL).status_code == 200
        detail = client.get(posting.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
        assert detail.status_code == 200
    finally:
        settings.REDIS_URL = reachable
        counters.get_redis.cache_clear()


def test_nothing_is_kept_without_redis(client, without_redis):
    PublishedPostingFactory()
    client.get(LIST_URL)
    assert not kept(client.get(LIST_URL))


def test_a_company_that_changes_takes_down_the_kept_pages_showing_it(client):
    posting = PublishedPostingFactory(company__name="Harbour Works")
    other = PublishedPostingFactory(company__name="Quay Partners")
    url, other_url = posting.get_absolute_url(), other.get_absolute_url()
    for address in (url, other_url, LIST_URL):
        client.get(address, HTTP_USER_AGENT=BROWSER_UA)
    posting.company.name = "Lighthouse Works"
    posting.company.save()
    for page in (client.get(url, HTTP_USER_AGENT=BROWSER_UA), client.get(LIST_URL)):
        assert not kept(page) and "Lighthouse Works" in page.content.decode()
    assert kept(client.get(other_url, HTTP_USER_AGENT=BROWSER_UA))  # not of that company
    Company.objects.filter(pk=other.company_id).update(name="Quay & Sons")
    assert "Quay &amp; Sons" in client.get(other_url, HTTP_USER_AGENT=BROWSER_UA).content.decode()


def test_a_company_that_changes_while_a_page_renders_is_not_kept(client, monkeypatch):
    posting = PublishedPostingFactory(company__name="Harbour Works")
    url = posting.get_absolute_url()
    read_marks = changes.current

    def rename_first(ids=(), company_ids=()):  # after this page read the company, before marks
        if posting.company_id in company_ids:
            Company.objects.filter(pk=posting.company_id).update(name="Lighthouse Works")
        return read_marks(ids, company_ids)

    page = next_after_a_render_with(monkeypatch, client, url, changes, "current", rename_first)
    assert not kept(page) and "Lighthouse Works" in page.content.decode()


def test_a_bulk_edit_takes_down_only_the_pages_of_the_listings_it_changed(client):
    edited, other = PublishedPostingFactory(), PublishedPostingFactory(country="PT")
    pages = [p.get_absolute_url() for p in (edited, other)]
    for url in pages:
        client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    Posting.objects.filter(pk=edited.pk).update(title="Harbour Pilot")
    assert "Harbour Pilot" in client.get(pages[0], HTTP_USER_AGENT=BROWSER_UA).content.decode()
    assert kept(client.get(pages[1], HTTP_USER_AGENT=BROWSER_UA))


def test_counts_and_the_re_checkers_bookkeeping_leave_kept_pages_standing(client):
    posting = PublishedPostingFactory()
    url = posting.get_absolute_url()
    client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    Posting.objects.filter(pk=posting.pk).update(view_count=F("view_count") + 5)
    posting.last_checked_at = timezone.now()
    posting.save(update_fields=["last_checked_at"])
    assert kept(client.get(url, HTTP_USER_AGENT=BROWSER_UA))


def test_a_listing_that_changes_while_its_page_renders_is_not_kept(client, monkeypatch):
    posting = PublishedPostingFactory(title="Harbour Pilot")
    url = posting.get_absolute_url()
    read_marks = changes.current

    def close_first(ids=(), company_ids=()):  # closed after this page read it, before the marks
        if posting.pk in ids:
            Posting.objects.filter(pk=posting.pk).update(status=Posting.Status.CLOSED)
        return read_marks(ids, company_ids)

    page = next_after_a_render_with(monkeypatch, client, url, changes, "current", close_first)
    assert not kept(page) and "This job is closed" in page.content.decode()


def test_a_change_deletes_its_mark_again_once_committed(django_capture_on_commit_callbacks):
    posting = PublishedPostingFactory()
    mark = changes.mark_key(changes.LISTING, posting.pk)
    with django_capture_on_commit_callbacks() as callbacks:
        posting.title = "Harbour Pilot"
        posting.save()
        assert not changes.client().exists(mark)  # deleted at once
    changes.current([posting.pk])  # a page rendered before the commit made it again
    for callback in callbacks:
        callback()
    assert not changes.client().exists(mark)


def test_a_migration_takes_every_kept_page_down(client):
    PublishedPostingFactory()
    client.get(LIST_URL)
    call_command("migrate", verbosity=0)
    assert not kept(client.get(LIST_URL))


def test_fingerprints_read_back_as_rendered_to_the_microsecond():
    soon = PublishedPostingFactory(deadline=timezone.now() + timedelta(days=3, microseconds=7))
    open_ended = PublishedPostingFactory(deadline=None)
    rendered = {p.pk: pagecache.fingerprint(p) for p in (soon, open_ended)}
    assert pagecache._fingerprints(list(rendered)) == rendered
    soon.deadline += timedelta(microseconds=1)
    soon.save(update_fields=["deadline"])
    assert pagecache._fingerprints(list(rendered)) != rendered


def test_an_edit_that_moves_no_updated_time_while_a_page_renders_is_not_kept(client, monkeypatch):
    posting = PublishedPostingFactory(title="Harbour Pilot")
    url = posting.get_absolute_url()
    read_marks = changes.current

    def rename_first(ids=(), company_ids=()):  # as an admin's save of one column would
        if posting.pk in ids:
            renamed = Posting.objects.get(pk=posting.pk)
            renamed.title = "Sea Pilot"
            renamed.save(update_fields=["title"])
        return read_marks(ids, company_ids)

    page = next_after_a_render_with(monkeypatch, client, url, changes, "current", rename_first)
    assert not kept(page) and "Sea Pilot" in page.content.decode()


def test_every_change_but_to_the_counts_moves_modified_at():
    posting = PublishedPostingFactory()
    company = posting.company

    def moved(model, pk, change) -> bool:
        before = model.objects.values_list("modified_at", flat=True).get(pk=pk)
        change()
        return model.objects.values_list("modified_at", flat=True).get(pk=pk) != before

    posting.closed_reason = "Filled"
    assert moved(Posting, posting.pk, lambda: posting.save(update_fields=["closed_reason"]))
    only = Posting.objects.filter(pk=posting.pk)
    assert moved(Posting, posting.pk, lambda: only.update(seniority="senior"))
    assert not moved(Posting, posting.pk, lambda: only.update(view_count=F("view_count") + 1))
    posting.last_checked_at = timezone.now()
    assert not moved(Posting, posting.pk, lambda: posting.save(update_fields=["last_checked_at"]))
    company.is_verified = not company.is_verified
    assert moved(Company, company.pk, lambda: company.save(update_fields=["is_verified"]))


def test_a_page_whose_listing_reaches_its_deadline_while_rendering_is_not_kept(client, monkeypatch):
    from postings import views

    posting = PublishedPostingFactory(deadline=timezone.now() + timedelta(seconds=1))
    url = posting.get_absolute_url()
    find_similar = views.similar_postings

    def slowly(of, **kwargs):  # the deadline passes while the page renders
        time.sleep(max(0, (posting.deadline - timezone.now()).total_seconds()) + 0.05)
        return find_similar(of, **kwargs)

    page = next_after_a_render_with(monkeypatch, client, url, views, "similar_postings", slowly)
    assert not kept(page) and "This job is closed." in page.content.decode()


def test_a_page_is_kept_until_the_first_deadline_ahead_of_its_render():
    started = timezone.now()
    passed = PublishedPostingFactory.build(deadline=started - timedelta(hours=1))
    soon = PublishedPostingFactory.build(deadline=started + timedelta(seconds=20))
    later = PublishedPostingFactory.build(deadline=started + timedelta(days=1))
    until = pagecache._kept_until(started, [passed, later, soon], 60)
    assert until == soon.deadline - pagecache.DEADLINE_MARGIN  # gone from Redis before it
    assert started + timedelta(seconds=44) < pagecache._kept_until(started, [passed, later], 60)
    assert pagecache._kept_until(started - timedelta(seconds=20), [soon], 60) is not None
    assert pagecache._kept_until(started - timedelta(seconds=60), [later], 60) is None  # too old
    ended = PublishedPostingFactory.build(deadline=timezone.now() + timedelta(milliseconds=1))
    time.sleep(0.01)
    assert pagecache._kept_until(started, [ended], 60) is None
    closing = PublishedPostingFactory.build(deadline=timezone.now() + timedelta(seconds=1.2))
    assert pagecache._kept_until(started, [closing], 60) is None  # under a second, less margin


def test_the_listing_a_closed_one_points_to_takes_its_kept_page_down(client):
    original = PublishedPostingFactory(title="Harbour Pilot")
    repeat = PublishedPostingFactory(
        title="Harbour Pilot", status=Posting.Status.CLOSED, duplicate_of=original
    )
    url = repeat.get_absolute_url()
    client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    assert kept(client.get(url, HTTP_USER_AGENT=BROWSER_UA))
    original.title = "Sea Pilot"
    original.save()
    page = client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    assert not kept(page) and "This job is listed again." in page.content.decode()
    assert "Sea Pilot" in page.content.decode()
    Posting.objects.filter(pk=original.pk).update(status=Posting.Status.CLOSED)
    page = client.get(url, HTTP_USER_AGENT=BROWSER_UA).content.decode()
    assert "This job is listed again." not in page and "This job is closed." in page
    original.delete()
    page = client.get(url, HTTP_USER_AGENT=BROWSER_UA).content.decode()
    assert "Sea Pilot" not in page and "This job is closed." in page


def test_a_duplicate_pointing_to_a_listing_past_its_deadline_says_it_is_closed(client):
    original = PublishedPostingFactory(deadline=timezone.now() - timedelta(minutes=1))
    repeat = PublishedPostingFactory(status=Posting.Status.CLOSED, duplicate_of=original)
    page = client.get(repeat.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA).content.decode()
    assert "This job is listed again." not in page and "This job is closed." in page


@pytest.mark.django_db(transaction=True)
def test_marking_the_rows_of_a_locking_queryset_outside_a_transaction():
    posting = PublishedPostingFactory()
    locking = Posting.objects.select_for_update().filter(pk=posting.pk)
    assert locking.update(title="Harbour Pilot") == 1


@pytest.mark.parametrize("name", ["postings:feed_rss", "postings:feed_atom"])
def test_a_kept_feed_drops_a_listing_that_closes_at_once(client, name):
    staying = PublishedPostingFactory(title="Lighthouse Keeper")
    closing = PublishedPostingFactory(title="Harbour Pilot")
    url = reverse(name)
    client.get(url)
    served = client.get(url)
    assert kept(served) and "Harbour Pilot" in served.content.decode()
    closing.status, closing.closed_at = Posting.Status.CLOSED, timezone.now()
    closing.save()
    feed = client.get(url).content.decode()
    assert "Harbour Pilot" not in feed and staying.title in feed


def test_djangos_own_updates_of_listings_move_their_marks_and_modified_at():
    original, repeat = PublishedPostingFactory(), PublishedPostingFactory()
    mark = changes.mark_key(changes.LISTING, repeat.pk)

    def after(change) -> tuple[bool, bool]:
        """(mark deleted, modified_at moved) of ``repeat`` by this change."""
        changes.current([repeat.pk])
        before = Posting.objects.values_list("modified_at", flat=True).get(pk=repeat.pk)
        change()
        moved = Posting.objects.values_list("modified_at", flat=True).get(pk=repeat.pk) != before
        return not changes.client().exists(mark), moved

    assert after(lambda: original.duplicates.add(repeat)) == (True, True)  # a related manager
    assert Posting.objects.get(pk=repeat.pk).duplicate_of_id == original.pk
    assert after(original.delete) == (True, True)  # SET_NULL
    assert Posting.objects.get(pk=repeat.pk).duplicate_of_id is None
    other = Company.objects.exclude(pk=repeat.company_id).first()
    assert after(lambda: other.postings.add(repeat)) == (True, True)


def test_a_placeholder_typed_into_the_address_is_never_filled_with_the_visitors_token():
    PublishedPostingFactory()
    url = LIST_URL + "?sort=%00csrf%00"
    rendered = Client().get(url)
    served = Client().get(url)
    assert kept(served) and b"\x00csrf\x00" in rendered.content
    token = served.cookies["csrftoken"].value
    assert token not in served.content.decode()
    assert served.content.count(b"\x00csrf\x00") == rendered.content.count(b"\x00csrf\x00")


def test_a_redis_that_hangs_slows_pages_but_never_stops_them(client, settings):
    """Connections accepted, never answered (a Redis stopped, not gone): the first call gives up
    after ``REDIS_TIMEOUT``, and the process leaves that Redis alone for
    ``REDIS_BACKOFF_SECONDS`` (``jobboard/redis_breaker.py``): the pages render without it, and
    those that follow ask it nothing."""
    from django.test import override_settings

    from postings import counters
    from tests.hung_redis import HungRedis

    posting = PublishedPostingFactory()
    hung = HungRedis()
    configured = settings.CACHES["default"]
    assert configured["OPTIONS"] == {
        "socket_timeout": settings.REDIS_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_TIMEOUT,
    }
    timeouts = {"socket_timeout": 0.2, "socket_connect_timeout": 0.2}  # the test's own, shorter
    cache = {**configured, "LOCATION": hung.url, "OPTIONS": timeouts}
    try:
        with override_settings(
            REDIS_URL=hung.url,
            REDIS_TIMEOUT=0.2,
            REDIS_BACKOFF_SECONDS=60,
            CACHES={"default": cache, "counters": cache},
        ):
            counters.get_redis.cache_clear()
            started = time.monotonic()
            assert client.get(LIST_URL).status_code == 200
            assert time.monotonic() - started < 20  # seconds, not a worker's timeout or forever
            asked = len(hung.accepted)
            for url in (posting.get_absolute_url(), LIST_URL, reverse("postings:feed_rss")):
                page = client.get(url, HTTP_USER_AGENT=BROWSER_UA)
                assert page.status_code == 200
            assert posting.title in page.content.decode()
            assert len(hung.accepted) == asked  # paused: not asked again
    finally:
        hung.close()
        counters.get_redis.cache_clear()


def test_a_kept_page_is_served_and_counted_once_after_redis_forgets_its_scripts(
    client, redis_client
):
    from postings import counters

    posting = PublishedPostingFactory(view_count=0)
    url = posting.get_absolute_url()
    client.get(url, HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="10.0.0.1")  # renders and keeps it
    assert kept(client.get(url, HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="10.0.0.2"))
    redis_client.script_flush()  # as a Redis restarted with the page still kept would be
    page = client.get(url, HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="10.0.0.3")
    assert kept(page) and posting.title in page.content.decode()
    assert counters.pending_counts([posting.pk], "views")[posting.pk] == 3


def test_a_kept_page_is_served_after_redis_closed_the_connection_it_was_asked_on(
    client, redis_client
):
    posting = PublishedPostingFactory()
    url = posting.get_absolute_url()
    client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    assert kept(client.get(url, HTTP_USER_AGENT=BROWSER_UA))
    pool = changes.client().connection_pool
    connection = pool.get_connection()
    connection.send_command("CLIENT", "ID")
    pool.release(connection)
    redis_client.client_kill_filter(_id=connection.read_response())
    page = client.get(url, HTTP_USER_AGENT=BROWSER_UA)
    assert kept(page) and posting.title in page.content.decode()


def test_a_failure_while_redis_answers_leaves_its_connection_clean_in_the_pool(client, monkeypatch):
    first, second = PublishedPostingFactory(), PublishedPostingFactory()
    for posting in (first, second):
        client.get(posting.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
        assert kept(client.get(posting.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA))

    def fails(request, kept_page):
        raise RuntimeError("a failure while the script runs")

    pool = changes.client().connection_pool
    in_use = len(pool._in_use_connections)  # redis-py's own bookkeeping: none may leak
    with monkeypatch.context() as patched:
        patched.setattr(pagecache, "_response", fails)
        with pytest.raises(RuntimeError):
            client.get(first.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
    assert len(pool._in_use_connections) == in_use  # its answer read, and back in the pool
    page = client.get(second.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
    assert kept(page) and second.title in page.content.decode()
    assert first.title not in page.content.decode()


def test_a_kept_page_found_untrue_is_rendered_as_if_it_had_never_been_asked_for():
    """The response prepared while Redis checks the page is dropped with the CSRF secret it
    drew: the page rendered instead sets the cookies a page rendered afresh sets."""
    gone, never_kept = PublishedPostingFactory(), PublishedPostingFactory()
    visitor = Client()
    visitor.get(gone.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
    assert kept(visitor.get(gone.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA))  # held here
    Posting.objects.filter(pk__in=[gone.pk, never_kept.pk]).update(status=Posting.Status.REMOVED)
    page = Client().get(gone.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
    fresh = Client().get(never_kept.get_absolute_url(), HTTP_USER_AGENT=BROWSER_UA)
    assert page.status_code == fresh.status_code == 410 and not kept(page)
    assert sorted(page.cookies) == sorted(fresh.cookies)
    assert page.get("Vary") == fresh.get("Vary")


def test_a_kept_page_is_asked_again_on_a_new_connection_when_sending_fails(client, monkeypatch):
    """Redis closing a pooled connection between the pool's check and the send: nothing reached
    it, so the script is sent once more, on a new connection, and the visit counted once."""
    from postings import counters

    posting = PublishedPostingFactory(view_count=0)
    url = posting.get_absolute_url()
    client.get(url, HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="10.0.0.1")
    connection_class = changes.client().connection_pool.connection_class
    send, failed = connection_class.send_command, []

    def closed_once(self, *args, **kwargs):
        if not failed and args[0] == "EVALSHA":
            failed.append(args)
            self.disconnect()
            raise counters.redis.ConnectionError("Connection closed by server.")
        return send(self, *args, **kwargs)

    monkeypatch.setattr(connection_class, "send_command", closed_once)
    page = client.get(url, HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="10.0.0.2")
    assert failed and kept(page)
    assert counters.pending_counts([posting.pk], "views")[posting.pk] == 2
