"""The moderation queue: who may open it, how it orders listings, and what each action does."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.timezone import localtime

from accounts.factories import EmployerFactory, VerifiedUserFactory
from postings import services as posting_services
from postings.factories import CompanyFactory, PendingReviewPostingFactory, PublishedPostingFactory
from postings.models import Posting
from reporting import services
from reporting.models import ModerationAction, Report

pytestmark = pytest.mark.django_db


def file_report(posting, reporter="visitor-a", reason="fake", age=timedelta(0), **kwargs):
    report = Report.objects.create(posting=posting, reason=reason, reporter=reporter, **kwargs)
    if age:
        Report.objects.filter(pk=report.pk).update(created_at=timezone.now() - age)
        report.refresh_from_db()
    return report


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
    return PublishedPostingFactory()


@pytest.fixture
def report(posting):
    return file_report(posting)


def pages(posting, report):
    return {
        "queue": ("get", reverse("moderation:queue")),
        "approvals": ("get", reverse("moderation:approvals")),
        "hidden": ("get", reverse("moderation:hidden")),
        "posting": ("get", reverse("moderation:posting", args=[posting.pk])),
        "posting_act": ("post", reverse("moderation:posting_act", args=[posting.pk])),
        "report_act": ("post", reverse("moderation:report_act", args=[report.pk])),
        "company_act": ("post", reverse("moderation:company_act", args=[posting.company.pk])),
        "bulk": ("post", reverse("moderation:bulk")),
    }


ACT = {"action": "hide", "note": "Scam."}
PAGE_NAMES = [
    "queue",
    "approvals",
    "hidden",
    "posting",
    "posting_act",
    "report_act",
    "company_act",
    "bulk",
]


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_anonymous_visitors_are_sent_to_log_in(client, posting, report, name):
    method, url = pages(posting, report)[name]
    response = getattr(client, method)(url, ACT if method == "post" else None)
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]
    assert Posting.objects.get(pk=posting.pk).status == Posting.Status.PUBLISHED


@pytest.mark.parametrize("who", ["candidate", "employer"])
@pytest.mark.parametrize("name", PAGE_NAMES)
def test_candidates_and_employers_are_refused(client, posting, report, name, who):
    user = VerifiedUserFactory() if who == "candidate" else EmployerFactory().user
    client.force_login(user)
    method, url = pages(posting, report)[name]
    response = getattr(client, method)(url, ACT if method == "post" else None)
    assert response.status_code == 403
    assert Posting.objects.get(pk=posting.pk).status == Posting.Status.PUBLISHED


@pytest.mark.parametrize("name", ["queue", "approvals", "hidden", "posting"])
def test_moderators_open_every_page(mod_client, posting, report, name):
    _, url = pages(posting, report)[name]
    response = mod_client.get(url)
    assert response.status_code == 200
    assert posting.title in response.content.decode() or name in ("approvals", "hidden")


def test_the_migration_makes_a_moderators_group_with_the_permission(moderator):
    assert moderator.has_perm("reporting.moderate")
    assert not VerifiedUserFactory().has_perm("reporting.moderate")


# The queue


def queue_order(client, **params):
    response = client.get(reverse("moderation:queue"), params)
    return [group["listing"] for group in response.context["groups"]]


def test_the_queue_puts_the_most_urgent_reason_first_then_reporters_then_age(mod_client):
    inaccurate = PublishedPostingFactory(title="Inaccurate one")
    for n in range(5):
        file_report(inaccurate, reporter=f"r{n}", reason="inaccurate")
    closed = PublishedPostingFactory(title="Closed one")
    file_report(closed, reason="closed")
    fake_old = PublishedPostingFactory(title="Old fake")
    file_report(fake_old, reason="fake", age=timedelta(days=3))
    fake_new = PublishedPostingFactory(title="New fake")
    file_report(fake_new, reason="fake")
    unsafe_many = PublishedPostingFactory(title="Unsafe, many reporters")
    file_report(unsafe_many, reporter="a", reason="unsafe")
    file_report(unsafe_many, reporter="b", reason="other")
    file_report(unsafe_many, reporter="b", reason="inaccurate")  # b counts once
    assert queue_order(mod_client) == [unsafe_many, fake_old, fake_new, closed, inaccurate]


def test_the_queue_shows_only_open_reports_unless_asked(mod_client, posting, moderator):
    handled = file_report(PublishedPostingFactory(), reason="unsafe")
    services.report_dismiss(report=handled, by=moderator, note="Fine.")
    file_report(posting, reason="closed")
    assert queue_order(mod_client) == [posting]
    assert queue_order(mod_client, status="dismissed") == [handled.posting]


def test_the_queue_filters_by_reason_company_age_and_search(mod_client):
    acme = CompanyFactory(name="Acme Widgets")
    widget = PublishedPostingFactory(title="Widget tester", company=acme)
    file_report(widget, reason="fake", age=timedelta(days=10))
    other = PublishedPostingFactory(title="Gardener")
    file_report(other, reason="closed")
    assert queue_order(mod_client, reason="closed") == [other]
    assert queue_order(mod_client, company="acme") == [widget]
    assert queue_order(mod_client, q="garden") == [other]
    assert queue_order(mod_client, q="widgets") == [widget]
    assert queue_order(mod_client, age="day") == [other]
    assert queue_order(mod_client, age="older") == [widget]
    assert queue_order(mod_client, reason="bogus", age="bogus") == [widget, other]


def test_the_queue_costs_the_same_queries_for_many_listings(
    mod_client, django_assert_max_num_queries
):
    for n in range(3):
        file_report(PublishedPostingFactory(), reporter=f"v{n}")
    with django_assert_max_num_queries(20) as few:
        mod_client.get(reverse("moderation:queue"))
    for n in range(20):
        file_report(PublishedPostingFactory(), reporter=f"w{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = mod_client.get(reverse("moderation:queue"))
    assert len(response.context["groups"]) == 23


def test_a_listings_page_shows_its_reports_and_the_audit_log(mod_client, posting, moderator):
    original = PublishedPostingFactory(title="The original role")
    file_report(posting, reason="duplicated", duplicate_of=original, details="Same as before.")
    done = file_report(posting, reporter="other", reason="inaccurate")
    services.report_resolve(report=done, by=moderator, note="Salary fixed.")
    ModerationAction.objects.create(
        kind=ModerationAction.Kind.VERIFY_COMPANY, company=posting.company, note="Known firm."
    )
    html = mod_client.get(reverse("moderation:posting", args=[posting.pk])).content.decode()
    for text in (
        "Same as before.",
        "The original role",
        "Salary fixed.",
        "Known firm.",
        "moderator@example.com",
        posting.get_absolute_url(),
    ):
        assert text in html


def test_time_attributes_on_moderation_pages_are_whole_seconds(mod_client, posting, moderator):
    """HTML allows at most three fraction digits in <time datetime>; seconds are enough."""
    report = file_report(posting)
    services.report_resolve(report=report, by=moderator, note="Checked.")
    file_report(posting, reporter="other", age=timedelta(hours=2))
    for url in (reverse("moderation:queue"), reverse("moderation:posting", args=[posting.pk])):
        html = mod_client.get(url).content.decode()
        found = re.findall(r'<time[^>]* datetime="([^"]*)"', html)

        assert found, url
        for value in found:
            assert re.fullmatch(r"[-\d]{10}T\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", value), value


def test_times_on_the_listings_page_read_as_dates(mod_client, posting, moderator):
    """Reports, their handling and the audit log show times as Django formats them
    ("Dec. 6, 2026, 10:44 a.m."), not as Python prints a datetime."""
    report = file_report(posting, age=timedelta(hours=2))
    services.report_resolve(report=report, by=moderator, note="Checked.")
    services.posting_hide(posting=posting, by=moderator, note="Scam.")
    html = mod_client.get(reverse("moderation:posting", args=[posting.pk])).content.decode()
    shown = re.findall(r'data-label="(?:Reported|When)"><time datetime="([^"]+)">([^<]+)<', html)
    assert len(shown) == 3  # the report, and the audit log's resolve and hide
    for value, text in shown:
        assert text == date_format(localtime(parse_datetime(value)), "DATETIME_FORMAT"), text
    handled = date_format(localtime(Report.objects.get().handled_at), "DATETIME_FORMAT")
    assert f"moderator@example.com, {handled}<br>" in html
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", re.sub(r"<[^>]*>", "", html))


# Actions


def act(client, url, **data):
    return client.post(url, data, follow=True)


def messages_of(response) -> list[str]:
    # Read off the request: Django's Jinja2 backend adds ``messages`` (a context processor's)
    # after the test client has recorded the page's context.
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_dismissing_a_report_closes_it_and_logs_who_and_why(mod_client, report, moderator):
    act(
        mod_client,
        reverse("moderation:report_act", args=[report.pk]),
        action="dismiss",
        note="Real company.",
    )
    report.refresh_from_db()
    assert (report.status, report.handled_by, report.handling_note) == (
        "dismissed",
        moderator,
        "Real company.",
    )
    log = ModerationAction.objects.get()
    assert (log.kind, log.report, log.actor, log.note) == (
        "dismiss",
        report,
        moderator,
        "Real company.",
    )
    assert Posting.objects.get(pk=report.posting_id).status == Posting.Status.PUBLISHED


def test_resolving_a_report_keeps_the_note(mod_client, report, moderator):
    act(
        mod_client,
        reverse("moderation:report_act", args=[report.pk]),
        action="resolve",
        note="Deadline corrected by phone.",
    )
    report.refresh_from_db()
    assert report.status == "resolved" and report.handling_note == "Deadline corrected by phone."
    assert ModerationAction.objects.get().kind == "resolve"


def test_hiding_a_listing_takes_it_out_of_sight_and_resolves_its_reports(
    mod_client, posting, report, moderator
):
    second = file_report(posting, reporter="b", reason="unsafe")
    act(
        mod_client,
        reverse("moderation:posting_act", args=[posting.pk]),
        action="hide",
        note="Asks for a fee.",
    )
    posting.refresh_from_db()
    assert posting.status == Posting.Status.PENDING_REVIEW
    assert set(Report.objects.values_list("status", flat=True)) == {"resolved"}
    second.refresh_from_db()
    assert second.handled_by == moderator
    log = ModerationAction.objects.get()
    assert (log.kind, log.posting, log.company) == ("hide", posting, posting.company)


def test_closing_a_listing_says_a_moderator_closed_it(mod_client, posting, report):
    act(
        mod_client,
        reverse("moderation:posting_act", args=[posting.pk]),
        action="close",
        note="No such job.",
    )
    posting.refresh_from_db()
    assert posting.status == Posting.Status.CLOSED
    assert posting.closed_reason == "Closed by a moderator" and posting.closed_at
    assert Report.objects.get().status == "resolved"
    assert ModerationAction.objects.get().kind == "close"


def test_asking_for_a_correction_emails_the_members_the_note(
    mod_client, report, mailoutbox, django_capture_on_commit_callbacks
):
    member = EmployerFactory()
    posting = PublishedPostingFactory(company=member.company, title="Sales & Marketing lead")
    file_report(posting, reason="inaccurate")
    with django_capture_on_commit_callbacks(execute=True):
        act(
            mod_client,
            reverse("moderation:posting_act", args=[posting.pk]),
            action="ask_correction",
            note="The salary says per hour; surely per year? <Check> & fix",
        )
    [email] = mailoutbox
    assert email.to == [member.user.email] and posting.title in email.subject
    # Plain text: nothing HTML-escaped.
    assert "surely per year? <Check> & fix" in email.body
    assert "Sales & Marketing lead" in email.subject
    assert Report.objects.get(posting=posting).status == "resolved"
    assert ModerationAction.objects.get().kind == "ask_correction"
    assert Posting.objects.get(pk=posting.pk).status == Posting.Status.PUBLISHED


def test_dismiss_all_closes_every_open_report_on_the_listing(mod_client, posting, report):
    file_report(posting, reporter="b", reason="closed")
    act(
        mod_client,
        reverse("moderation:posting_act", args=[posting.pk]),
        action="dismiss_all",
        note="Checked, all fine.",
    )
    assert set(Report.objects.values_list("status", flat=True)) == {"dismissed"}
    assert ModerationAction.objects.get().note.startswith("Checked, all fine.")


def test_bulk_actions_apply_one_note_to_every_selected_listing(mod_client, moderator):
    first, second, untouched = PublishedPostingFactory.create_batch(3)
    for p in (first, second, untouched):
        file_report(p)
    response = act(
        mod_client,
        reverse("moderation:bulk"),
        postings=[first.pk, second.pk],
        action="close",
        note="Spam wave.",
    )
    assert "Done on 2 listings." in messages_of(response)
    statuses = dict(Posting.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "closed", second.pk: "closed", untouched.pk: "published"}
    assert ModerationAction.objects.filter(kind="close", note="Spam wave.").count() == 2
    assert Report.objects.get(posting=untouched).status == "open"


def test_bulk_dismiss_and_hide(mod_client):
    first, second = PublishedPostingFactory.create_batch(2)
    file_report(first)
    file_report(second)
    act(mod_client, reverse("moderation:bulk"), postings=[first.pk], action="dismiss", note="Fine.")
    act(mod_client, reverse("moderation:bulk"), postings=[second.pk], action="hide", note="Check.")
    assert Report.objects.get(posting=first).status == "dismissed"
    assert Posting.objects.get(pk=second.pk).status == Posting.Status.PENDING_REVIEW


def test_a_second_moderator_acting_on_a_handled_report_is_told_who_handled_it(mod_client, report):
    colleague = VerifiedUserFactory(email="colleague@example.com")
    services.report_resolve(report=report, by=colleague, note="Done already.")
    response = act(
        mod_client,
        reverse("moderation:report_act", args=[report.pk]),
        action="dismiss",
        note="Looks fine to me.",
    )
    [message] = messages_of(response)
    assert "already resolved by colleague@example.com at" in message
    report.refresh_from_db()
    assert (report.status, report.handling_note) == ("resolved", "Done already.")
    assert ModerationAction.objects.count() == 1


def test_hiding_a_listing_someone_already_hid_says_so(mod_client, posting, report, moderator):
    services.posting_hide(posting=posting, by=moderator, note="First.")
    response = act(
        mod_client,
        reverse("moderation:posting_act", args=[posting.pk]),
        action="hide",
        note="Second.",
    )
    assert "not public" in messages_of(response)[0]
    assert ModerationAction.objects.count() == 1


# Bad input


@pytest.mark.parametrize("data", [{"action": "dismiss"}, {"action": "dismiss", "note": "  "}])
def test_an_action_without_a_note_changes_nothing(mod_client, report, data):
    response = act(mod_client, reverse("moderation:report_act", args=[report.pk]), **data)
    assert response.status_code == 200
    assert "Write a short note" in messages_of(response)[0]
    assert Report.objects.get().status == "open" and not ModerationAction.objects.exists()


def test_unknown_ids_are_404(mod_client):
    for name in ("report_act", "posting_act", "company_act"):
        response = mod_client.post(reverse(f"moderation:{name}", args=[999999]), ACT)
        assert response.status_code == 404
    assert mod_client.get(reverse("moderation:posting", args=[999999])).status_code == 404


@pytest.mark.parametrize("action", ["", "delete", "verify"])
def test_an_unknown_action_changes_nothing(mod_client, posting, report, action):
    response = act(
        mod_client, reverse("moderation:posting_act", args=[posting.pk]), action=action, note="Hmm."
    )
    assert response.status_code == 200 and "Unknown action" in messages_of(response)[0]
    assert not ModerationAction.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"action": "close", "note": "x"},
        {"action": "explode", "note": "x", "postings": ["1"]},
        {"action": "close", "note": "", "postings": ["1"]},
        {"action": "close", "note": "x", "postings": ["abc"]},
        {"action": "close", "note": "x", "postings": ["999999"]},
    ],
)
def test_bad_bulk_input_changes_nothing(mod_client, posting, data):
    response = act(mod_client, reverse("moderation:bulk"), **data)
    assert response.status_code == 200 and messages_of(response)
    assert Posting.objects.get(pk=posting.pk).status == Posting.Status.PUBLISHED


def test_the_bulk_action_starts_on_no_action(mod_client, posting, report):
    html = mod_client.get(reverse("moderation:queue")).content.decode()
    select = html[html.index('<select name="action"') :]
    first_option = select[select.index("<option") : select.index("</option>")]
    assert first_option == '<option value="" selected>— choose an action —'


def test_applying_no_bulk_action_changes_nothing_and_says_so(mod_client, posting, report):
    response = act(
        mod_client, reverse("moderation:bulk"), postings=[posting.pk], action="", note="Spam."
    )
    assert messages_of(response) == ["Choose an action: nothing was changed."]
    assert Posting.objects.get(pk=posting.pk).status == Posting.Status.PUBLISHED
    assert Report.objects.get().status == "open" and not ModerationAction.objects.exists()


def test_a_foreign_next_address_is_ignored(mod_client, report):
    response = mod_client.post(
        reverse("moderation:report_act", args=[report.pk]),
        {"action": "dismiss", "note": "x", "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("moderation:posting", args=[report.posting_id])


# Approvals


def test_the_approval_queue_lists_postings_waiting_for_review(mod_client):
    waiting = PendingReviewPostingFactory(title="Waiting role")
    PublishedPostingFactory(title="Live role")
    response = mod_client.get(reverse("moderation:approvals"))
    assert list(response.context["postings"]) == [waiting]


def test_listings_hidden_after_reports_have_a_queue_of_their_own(mod_client, moderator):
    waiting = PendingReviewPostingFactory(title="New role from a new company")
    by_moderator = PublishedPostingFactory(title="Hidden by a moderator")
    file_report(by_moderator)
    services.posting_hide(posting=by_moderator, by=moderator, note="Looks like a scam.")
    by_net = PendingReviewPostingFactory(title="Hidden by the net", posted_at=timezone.now())
    ModerationAction.objects.create(kind="auto_hide", posting=by_net, note="Reported.")
    # Hidden once, approved, then edited back into review: waiting again, not hidden.
    edited = PendingReviewPostingFactory(title="Edited after approval", posted_at=timezone.now())
    ModerationAction.objects.create(kind="hide", posting=edited, actor=moderator, note="x")
    ModerationAction.objects.create(kind="approve", posting=edited, actor=moderator, note="ok")

    hidden = mod_client.get(reverse("moderation:hidden"))
    assert list(hidden.context["postings"]) == [by_moderator, by_net]
    html = hidden.content.decode()
    assert "by moderator@example.com" in html and "by the safety net" in html
    approvals = mod_client.get(reverse("moderation:approvals"))
    assert set(approvals.context["postings"]) == {waiting, edited}
    for page in (hidden, approvals):
        text = page.content.decode()
        assert "Hidden after reports (2)" in text and "Waiting for approval (2)" in text
        assert "Reported listings (0)" in text  # hiding resolved the one report


def test_showing_a_hidden_listing_again_takes_it_out_of_the_hidden_queue(mod_client, moderator):
    posting = PublishedPostingFactory()
    services.posting_hide(posting=posting, by=moderator, note="Checking.")
    act(mod_client, reverse("moderation:posting_act", args=[posting.pk]), action="approve")
    assert Posting.objects.get(pk=posting.pk).status == Posting.Status.PUBLISHED
    assert not mod_client.get(reverse("moderation:hidden")).context["postings"]


def test_approving_makes_the_posting_public_and_logs_it(mod_client, moderator):
    waiting = PendingReviewPostingFactory()
    act(mod_client, reverse("moderation:posting_act", args=[waiting.pk]), action="approve")
    waiting.refresh_from_db()
    assert waiting.status == Posting.Status.PUBLISHED and waiting.posted_at
    log = ModerationAction.objects.get()
    assert (log.kind, log.actor, log.posting) == ("approve", moderator, waiting)


@pytest.mark.parametrize("queue", ["approvals", "hidden"])
def test_a_listing_edited_after_its_queue_was_shown_is_not_approved_unread(
    mod_client, moderator, queue
):
    posting = PublishedPostingFactory(title="Harbour Pilot")
    employer = EmployerFactory(company=posting.company)
    if queue == "hidden":
        services.posting_hide(posting=posting, by=moderator, note="Checking.")
    else:
        Posting.objects.filter(pk=posting.pk).update(status="pending_review", posted_at=None)
    html = mod_client.get(reverse(f"moderation:{queue}")).content.decode()
    seen = re.search(r'name="seen" value="([^"]+)"', html)[1]
    edited = Posting.objects.get(pk=posting.pk)  # the employer rewords it meanwhile
    edited.title = "Send a deposit to start"
    posting_services.posting_save(posting=edited, by=employer.user)
    url = reverse("moderation:posting_act", args=[posting.pk])
    response = act(mod_client, url, action="approve", seen=seen)
    assert "changed “Send a deposit to start” after this page was shown" in messages_of(response)[0]
    assert Posting.objects.get(pk=posting.pk).status == Posting.Status.PENDING_REVIEW


def test_approving_twice_says_it_is_no_longer_waiting(mod_client, moderator):
    waiting = PendingReviewPostingFactory()
    services.posting_moderation_approve(posting=waiting, by=moderator)
    response = act(
        mod_client, reverse("moderation:posting_act", args=[waiting.pk]), action="approve"
    )
    assert "waiting for review" in messages_of(response)[0]
    assert ModerationAction.objects.count() == 1


def test_rejecting_sends_it_back_to_drafts_and_tells_the_employer_why(
    mod_client, mailoutbox, django_capture_on_commit_callbacks
):
    member = EmployerFactory()
    waiting = PendingReviewPostingFactory(company=member.company)
    with django_capture_on_commit_callbacks(execute=True):
        act(
            mod_client,
            reverse("moderation:posting_act", args=[waiting.pk]),
            action="reject",
            note="Please name the city.",
        )
    waiting.refresh_from_db()
    assert waiting.status == Posting.Status.DRAFT
    assert waiting.closed_reason == "Please name the city."
    [email] = mailoutbox
    assert email.to == [member.user.email] and "Please name the city." in email.body
    assert ModerationAction.objects.get().kind == "reject"


def test_rejecting_needs_a_reason(mod_client):
    waiting = PendingReviewPostingFactory()
    act(mod_client, reverse("moderation:posting_act", args=[waiting.pk]), action="reject")
    assert Posting.objects.get(pk=waiting.pk).status == Posting.Status.PENDING_REVIEW


def test_verifying_a_company_publishes_its_waiting_postings(mod_client, moderator):
    waiting = PendingReviewPostingFactory()
    act(mod_client, reverse("moderation:company_act", args=[waiting.company.pk]), action="verify")
    waiting.refresh_from_db()
    assert waiting.company.is_verified and waiting.status == Posting.Status.PUBLISHED
    log = ModerationAction.objects.get()
    assert (log.kind, log.company, log.actor) == ("verify_company", waiting.company, moderator)
    again = act(
        mod_client, reverse("moderation:company_act", args=[waiting.company.pk]), action="verify"
    )
    assert "already verified" in messages_of(again)[0]
