"""Deadline reminders: which listings are due, once only (also on two workers), the email, and
moving the deadline re-arming the reminder."""

from __future__ import annotations

import logging
import smtplib
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.factories import EmployerFactory, MemberFactory
from postings import services, tasks
from postings.factories import (
    ClosedPostingFactory,
    CompanyFactory,
    DraftPostingFactory,
    ExpiredPostingFactory,
    PastDeadlinePostingFactory,
    PendingReviewPostingFactory,
    PublishedPostingFactory,
    RemovedPostingFactory,
    VerifiedCompanyFactory,
)
from postings.models import Posting
from postings.reminders import deadline_reminder_send, deadline_reminders_send

BEFORE = settings.DEADLINE_REMINDER_BEFORE


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def company():
    company = VerifiedCompanyFactory()
    EmployerFactory(company=company, user__email="owner@example.com")
    return company


def due_posting(company, now, **fields) -> Posting:
    """Posted long ago, closing inside the reminder window."""
    fields = {"posted_at": now - timedelta(days=20), "deadline": now + timedelta(days=2), **fields}
    return PublishedPostingFactory(company=company, **fields)


def reminded_at(posting: Posting) -> datetime | None:
    posting.refresh_from_db(fields=["deadline_reminder_sent_at"])
    return posting.deadline_reminder_sent_at


# --- which listings are due -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_due_listing_emails_each_member_once_and_is_marked(company, now, mailoutbox, caplog):
    MemberFactory(company=company, user__email="colleague@example.com")
    MemberFactory(company=company, user__email="gone@example.com", user__is_active=False)
    posting = due_posting(company, now)

    with caplog.at_level(logging.INFO, logger="postings.reminders"):
        assert deadline_reminders_send(now=now) == 2

    assert sorted(m.to[0] for m in mailoutbox) == ["colleague@example.com", "owner@example.com"]
    assert all(len(m.to) == 1 for m in mailoutbox)  # colleagues do not see each other's address
    assert reminded_at(posting) == now
    assert f"posting {posting.pk} sent" in caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("closes_in", "posted_ago"),
    [
        pytest.param(BEFORE, timedelta(days=20), id="deadline-exactly-the-window-away"),
        pytest.param(timedelta(minutes=1), timedelta(days=20), id="about-to-close"),
        pytest.param(timedelta(days=2), BEFORE - timedelta(days=2), id="posted-as-window-opened"),
    ],
)
def test_the_edges_of_the_window_are_due(company, now, mailoutbox, closes_in, posted_ago):
    due_posting(company, now, deadline=now + closes_in, posted_at=now - posted_ago)
    assert deadline_reminders_send(now=now) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda c, now: due_posting(c, now, deadline=now + BEFORE + timedelta(minutes=1)),
            id="not-yet-due",
        ),
        pytest.param(lambda c, now: due_posting(c, now, deadline=now), id="deadline-now"),
        pytest.param(lambda c, now: PastDeadlinePostingFactory(company=c), id="past-deadline"),
        pytest.param(lambda c, now: due_posting(c, now, deadline=None), id="no-deadline"),
        pytest.param(
            lambda c, now: due_posting(c, now, posted_at=now - timedelta(hours=23)),
            id="posted-inside-the-window",
        ),
        pytest.param(
            lambda c, now: due_posting(c, now, deadline_reminder_sent_at=now - timedelta(days=1)),
            id="already-reminded",
        ),
        pytest.param(
            lambda c, now: ClosedPostingFactory(company=c, deadline=now + timedelta(days=2)),
            id="closed",
        ),
        pytest.param(
            lambda c, now: ExpiredPostingFactory(company=c, deadline=now + timedelta(days=2)),
            id="expired",
        ),
        pytest.param(
            lambda c, now: RemovedPostingFactory(company=c, deadline=now + timedelta(days=2)),
            id="removed",
        ),
        pytest.param(
            lambda c, now: DraftPostingFactory(company=c, deadline=now + timedelta(days=2)),
            id="draft",
        ),
        pytest.param(
            lambda c, now: PendingReviewPostingFactory(company=c, deadline=now + timedelta(days=2)),
            id="pending-review",
        ),
    ],
)
def test_listings_that_are_not_due_get_no_reminder(company, now, mailoutbox, make):
    posting = make(company, now)
    already = posting.deadline_reminder_sent_at
    assert deadline_reminders_send(now=now) == 0
    assert deadline_reminder_send(posting_id=posting.pk, now=now) == 0
    assert mailoutbox == []
    assert reminded_at(posting) == already


@pytest.mark.django_db
def test_a_suspended_companys_listing_gets_no_reminder(company, now, mailoutbox):
    posting = due_posting(company, now)
    company.is_suspended = True
    company.save()
    assert deadline_reminders_send(now=now) == 0
    assert mailoutbox == []
    assert reminded_at(posting) is None


@pytest.mark.django_db
def test_a_company_without_members_is_marked_anyway_and_logged(now, mailoutbox, caplog):
    posting = due_posting(CompanyFactory(), now)
    with caplog.at_level(logging.WARNING, logger="postings.reminders"):
        assert deadline_reminders_send(now=now) == 0
    assert mailoutbox == []
    assert reminded_at(posting) == now
    assert f"posting {posting.pk} not sent" in caplog.text


@pytest.mark.django_db
def test_the_soonest_deadlines_go_first_up_to_the_limit(company, now, mailoutbox):
    later = due_posting(company, now, deadline=now + timedelta(days=2))
    sooner = due_posting(company, now, deadline=now + timedelta(days=1))
    assert deadline_reminders_send(now=now, limit=1) == 1
    assert (reminded_at(sooner), reminded_at(later)) == (now, None)


# --- once --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_running_twice_sends_once(company, now, mailoutbox):
    due_posting(company, now)
    assert deadline_reminders_send(now=now) == 1
    assert deadline_reminders_send(now=now + timedelta(minutes=10)) == 0
    assert len(mailoutbox) == 1


@pytest.mark.django_db
def test_a_failed_send_leaves_the_listing_due_for_the_next_run(
    company, now, mailoutbox, monkeypatch, caplog
):
    posting = due_posting(company, now)

    def refuse(self, messages):
        raise smtplib.SMTPServerDisconnected("mail server went away")

    with monkeypatch.context() as patched:
        patched.setattr(EmailBackend, "send_messages", refuse)
        assert deadline_reminders_send(now=now) == 0
    assert reminded_at(posting) is None
    assert f"posting {posting.pk} failed" in caplog.text

    assert deadline_reminders_send(now=now) == 1
    assert reminded_at(posting) == now


def test_the_beat_task_sends_the_reminders(db, company, mailoutbox):
    posting = due_posting(company, timezone.now())
    assert tasks.send_deadline_reminders() == 1
    assert tasks.send_deadline_reminders.run() == 0  # the celery way, already sent
    assert [m.to for m in mailoutbox] == [["owner@example.com"]]
    assert reminded_at(posting) is not None


# --- the email ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_email_names_the_listing_its_deadline_and_links_to_the_actions(
    company, mailoutbox, settings
):
    settings.SITE_URL = "https://jobs.example"
    company.name = "Smith & Sons"
    company.save()
    now = datetime(2030, 3, 5, 9, 0, tzinfo=UTC)
    posting = due_posting(
        company, now, title="Patent Attorney", deadline=datetime(2030, 3, 7, 17, 0, tzinfo=UTC)
    )
    with timezone.override(UTC):
        deadline_reminders_send(now=now)

    [email] = mailoutbox
    assert email.subject == "“Patent Attorney” stops taking applications on March 7"
    assert "“Patent Attorney”" in email.body
    assert "in 2 days, 8 hours" in " ".join(email.body.split())  # timeuntil's spaces: no-break
    assert "Thursday, March 7, 2030, 17:00 UTC" in email.body
    edit = reverse("employer:posting_edit", args=[posting.pk])
    assert f"https://jobs.example{edit}\n" in email.body
    assert f"https://jobs.example{reverse('employer:dashboard')}\n" in email.body
    assert f"https://jobs.example{posting.get_absolute_url()}" in email.body
    assert "Smith & Sons" in email.body  # plain text: nothing HTML-escaped


# --- a moved deadline re-arms the reminder -----------------------------------------------------


@pytest.fixture
def reminded(company, now, mailoutbox) -> Posting:
    posting = due_posting(company, now)
    deadline_reminders_send(now=now)
    assert reminded_at(posting) == now
    mailoutbox.clear()
    return posting


@pytest.mark.django_db
def test_extending_the_deadline_re_arms_the_reminder(reminded, company, now, mailoutbox):
    owner = company.memberships.get().user
    services.posting_extend_deadline(
        posting=reminded, by=owner, deadline=now + timedelta(days=10), now=now
    )
    assert reminded_at(reminded) is None
    assert deadline_reminders_send(now=now) == 0  # the new deadline is not close yet
    assert deadline_reminders_send(now=now + timedelta(days=8)) == 1
    assert len(mailoutbox) == 1


@pytest.mark.django_db
def test_reopening_with_a_new_deadline_re_arms_the_reminder(reminded, company, now):
    owner = company.memberships.get().user
    services.posting_close(posting=reminded, by=owner, reason="filled", now=now)
    services.posting_reopen(posting=reminded, by=owner, deadline=now + timedelta(days=9), now=now)
    assert reminded_at(reminded) is None


@pytest.mark.django_db
def test_editing_the_deadline_re_arms_the_reminder_and_other_edits_do_not(reminded, company):
    owner = company.memberships.get().user
    reminded.title = "Senior Patent Attorney"
    services.posting_save(posting=reminded, by=owner)
    assert reminded_at(reminded) is not None

    reminded.deadline += timedelta(days=7)
    services.posting_save(posting=reminded, by=owner)
    assert reminded_at(reminded) is None


@pytest.mark.django_db
def test_an_admin_edit_re_arms_only_when_the_deadline_moves(company, now):
    posting = due_posting(company, now)
    stale = Posting.objects.get(pk=posting.pk)  # opened in the admin before the reminder went
    deadline_reminders_send(now=now)

    stale.title = "Trademark Paralegal"
    services.posting_save_edit(posting=stale, now=now)
    assert reminded_at(posting) == now  # the stale form does not wipe the mark

    stale.deadline += timedelta(days=7)
    services.posting_save_edit(posting=stale, now=now)
    assert reminded_at(posting) is None


# --- two workers at once (PostgreSQL: real row locks) -------------------------------------------


def in_thread(work) -> threading.Thread:
    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.postgres(reason="needs PostgreSQL row locks (SELECT ... FOR UPDATE SKIP LOCKED)")
def test_a_listing_locked_by_another_transaction_is_skipped(transactional_db, mailoutbox):
    now = timezone.now()
    company = VerifiedCompanyFactory()
    EmployerFactory(company=company)
    posting = due_posting(company, now)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        with transaction.atomic():
            Posting.objects.select_for_update().get(pk=posting.pk)
            locked.set()
            release.wait(timeout=30)

    holder = in_thread(hold_the_row)
    try:
        assert locked.wait(timeout=10)
        assert deadline_reminders_send(now=now) == 0  # skipped at once, not waited for
        assert reminded_at(posting) is None
    finally:
        release.set()
        holder.join(timeout=10)
    assert deadline_reminders_send(now=now) == 1
    assert len(mailoutbox) == 1


@pytest.mark.postgres(reason="needs PostgreSQL row locks (SELECT ... FOR UPDATE SKIP LOCKED)")
def test_two_workers_at_once_remind_each_listing_once(transactional_db, mailoutbox):
    now = timezone.now()
    company = VerifiedCompanyFactory()
    EmployerFactory(company=company)
    postings = [due_posting(company, now) for _ in range(12)]
    barrier = threading.Barrier(2)
    sent: list[int] = []

    def worker() -> None:
        barrier.wait(timeout=10)
        sent.append(deadline_reminders_send(now=now))

    for thread in [in_thread(worker), in_thread(worker)]:
        thread.join(timeout=30)
    assert sum(sent) == 12
    assert len(mailoutbox) == 12
    assert all(reminded_at(p) == now for p in postings)
