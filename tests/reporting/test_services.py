"""Reports and the safety net: counted once per visitor, never deleted, logged when acted on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from postings.factories import PublishedPostingFactory
from postings.models import Membership, Posting
from reporting import services
from reporting.models import ModerationAction, Report

pytestmark = pytest.mark.django_db


@pytest.fixture
def posting():
    return PublishedPostingFactory()


def report(posting, reporter, reason="fake", **kwargs):
    return services.report_submit(posting=posting, reason=reason, reporter=reporter, **kwargs)


def test_the_same_visitor_reporting_the_same_reason_twice_counts_once(posting):
    first, created = report(posting, "visitor-a")
    again, created_again = report(posting, "visitor-a", details="really!")
    assert created and not created_again and first == again
    assert Report.objects.count() == 1
    _, other_reason = report(posting, "visitor-a", reason="inaccurate")
    assert other_reason and Report.objects.count() == 2


def test_a_duplicate_link_is_kept_only_for_duplicate_reports(posting):
    original = PublishedPostingFactory()
    dup, _ = report(posting, "v1", reason="duplicated", duplicate_of=original)
    other, _ = report(posting, "v2", reason="inaccurate", duplicate_of=original)
    assert dup.duplicate_of == original and other.duplicate_of is None
    with pytest.raises(IntegrityError), transaction.atomic():
        Report.objects.filter(pk=other.pk).update(duplicate_of=original)


def spread(report_and_created, minutes_ago: int):
    """Move a report back in time, as if filed ``minutes_ago``: independent people report
    minutes or hours apart, not within the same second."""
    report, _ = report_and_created
    Report.objects.filter(pk=report.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )


def test_the_safety_net_hides_a_listing_after_n_distinct_reporters(posting, settings):
    settings.SAFETY_NET_REPORTS = 3
    spread(report(posting, "v1", reason="fake", network="n1"), 50)
    spread(report(posting, "v1", reason="unsafe", network="n1"), 45)  # still one reporter
    spread(report(posting, "v2", reason="inaccurate", network="n2"), 40)  # not dangerous
    posting.refresh_from_db()
    assert posting.status == Posting.Status.PUBLISHED
    spread(report(posting, "v2", reason="unsafe", network="n2"), 30)
    report(posting, "v3", reason="fake", network="n3")
    posting.refresh_from_db()
    assert posting.status == Posting.Status.PENDING_REVIEW
    assert not Posting.objects.open().filter(pk=posting.pk).exists()
    action = ModerationAction.objects.get(posting=posting)
    assert action.kind == "auto_hide" and action.actor is None and "3 different" in action.note


def test_the_safety_net_emails_the_companys_members(
    posting, settings, django_capture_on_commit_callbacks
):
    settings.SAFETY_NET_REPORTS = 2
    owner = get_user_model().objects.create_user(email="owner@example.com", password="x" * 20)
    Membership.objects.create(company=posting.company, user=owner, role="owner")
    with django_capture_on_commit_callbacks(execute=True):
        spread(report(posting, "v1", network="n1"), 30)
        report(posting, "v2", network="n2")
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert posting.title in mail.outbox[0].subject
    assert "/employer/" in mail.outbox[0].body


def test_reports_older_than_a_day_do_not_trip_the_safety_net(posting, settings):
    settings.SAFETY_NET_REPORTS = 2
    old, _ = report(posting, "v1", network="n1")
    Report.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    report(posting, "v2", network="n2")
    posting.refresh_from_db()
    assert posting.status == Posting.Status.PUBLISHED
    assert not ModerationAction.objects.exists()


def test_the_safety_net_acts_once(posting, settings):
    settings.SAFETY_NET_REPORTS = 1
    report(posting, "v1")
    report(posting, "v2")
    assert ModerationAction.objects.filter(kind="auto_hide").count() == 1


def test_the_audit_log_is_append_only(posting):
    action = ModerationAction.objects.create(kind="hide", posting=posting, note="spam")
    action.note = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        action.save()
    with pytest.raises(ValueError, match="append-only"):
        action.delete()


def test_a_report_cannot_be_closed_without_being_handled(posting):
    filed, _ = report(posting, "v1", reason="other")
    with pytest.raises(IntegrityError), transaction.atomic():
        Report.objects.filter(pk=filed.pk).update(status="resolved")
