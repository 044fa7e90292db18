"""The moderators' digest: new reports only, at most one an hour, one email per moderator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone

from postings.factories import PublishedPostingFactory
from reporting import digest, services
from reporting.tasks import send_moderator_digest

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator():
    user = get_user_model().objects.create_user(email="mod@example.com", password="x" * 20)
    user.groups.add(Group.objects.get(name="Moderators"))
    get_user_model().objects.create_user(email="employer@example.com", password="x" * 20)
    return user


def file_reports(n: int, reason: str = "inaccurate"):
    posting = PublishedPostingFactory(title="Reported Role")
    for i in range(n):
        services.report_submit(posting=posting, reason=reason, reporter=f"r{i}-{reason}")
    return posting


def test_moderators_get_a_digest_of_new_reports_and_no_one_else(moderator):
    posting = file_reports(2)
    assert send_moderator_digest() == 1
    assert [m.to for m in mail.outbox] == [["mod@example.com"]]
    message = mail.outbox[0]
    assert message.subject.startswith("2 new reports")
    assert "Reported Role" in message.body and f"/moderation/postings/{posting.pk}/" in message.body


def test_at_most_one_digest_an_hour_and_only_news(moderator):
    now = timezone.now()
    file_reports(1)
    assert digest.digest_send(now=now) == 1
    file_reports(1, reason="other")
    assert digest.digest_send(now=now + timedelta(minutes=30)) == 0  # too soon
    assert digest.digest_send(now=now + timedelta(minutes=61)) == 1  # only the new one
    assert mail.outbox[-1].subject.startswith("1 new report ")
    assert digest.digest_send(now=now + timedelta(hours=3)) == 0  # nothing new: no email
    assert len(mail.outbox) == 2


def test_no_digest_without_reports(moderator):
    assert send_moderator_digest() == 0
    assert mail.outbox == []
