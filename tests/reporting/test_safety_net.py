"""The safety net weighs reporters: the attacks that took listings down replayed, and the net
still hiding a new listing that genuinely different people report."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.factories import VerifiedUserFactory
from postings.factories import CompanyFactory, PublishedPostingFactory, VerifiedCompanyFactory
from postings.models import Membership, Posting
from reporting import safety_net, services
from reporting.models import ModerationAction, Report
from reporting.tasks import send_moderator_digest

pytestmark = pytest.mark.django_db

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1"


@pytest.fixture(autouse=True)
def three_reports(settings):
    settings.SAFETY_NET_REPORTS = 3


@pytest.fixture
def moderator():
    user = VerifiedUserFactory(email="moderator@example.com")
    user.groups.add(Group.objects.get(name="Moderators"))
    return user


def new_listing(company=None, **kwargs) -> Posting:
    """Published a moment ago, seen by nobody yet: the lowest threshold there is."""
    kwargs.setdefault("posted_at", timezone.now())
    return PublishedPostingFactory(company=company or CompanyFactory(), **kwargs)


def report_from(posting, address: str, user_agent: str, reason: str = "fake") -> int:
    """A report through the public form, by a fresh browser (new cookies) at ``address``."""
    response = Client(REMOTE_ADDR=address, HTTP_USER_AGENT=user_agent).post(
        reverse("reporting:report", args=[posting.pk]), {"reason": reason}
    )
    return response.status_code


def move_back(minutes: int) -> None:
    """The newest report happened ``minutes`` ago."""
    newest = Report.objects.order_by("-pk").first()
    Report.objects.filter(pk=newest.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes)
    )


def is_public(posting) -> bool:
    return Posting.objects.public().filter(pk=posting.pk).exists()


# The attacks


def test_three_fake_reports_from_one_network_in_a_second_leave_a_verified_listing_up(
    moderator, django_capture_on_commit_callbacks
):
    posting = new_listing(company=VerifiedCompanyFactory(), title="Senior Welder")
    with django_capture_on_commit_callbacks(execute=True):
        for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
            assert report_from(posting, address, CHROME) == 200
    assert Report.objects.filter(posting=posting).count() == 3
    assert is_public(posting)
    assert Client().get(posting.get_absolute_url()).status_code == 200
    assert not ModerationAction.objects.filter(kind="auto_hide").exists()
    # Moderators hear of it at once, not in the next hourly digest.
    alert = ModerationAction.objects.get(posting=posting, kind="net_alert")
    assert "3 different visitors from 1 network" in alert.note
    assert [message.to for message in mail.outbox] == [["moderator@example.com"]]
    assert "Senior Welder" in mail.outbox[0].body and "still up" in mail.outbox[0].body


def test_three_addresses_in_one_network_reporting_twenty_listings_hide_none(
    moderator, django_capture_on_commit_callbacks
):
    company = CompanyFactory()  # not verified: the net may hide its listings
    listings = [new_listing(company=company) for _ in range(20)]
    with django_capture_on_commit_callbacks(execute=True):
        for n, posting in enumerate(listings):
            # A browser version per listing, so that the per-visitor rate limit lets all through.
            user_agent = CHROME.replace("131.0", f"131.{n}")
            for address in ("198.51.100.7", "198.51.100.8", "198.51.100.9"):
                assert report_from(posting, address, user_agent, reason="unsafe") == 200
    assert Report.objects.count() == 60
    assert all(is_public(posting) for posting in listings)
    assert not ModerationAction.objects.filter(kind="auto_hide").exists()
    assert ModerationAction.objects.filter(kind="net_alert").count() == 20
    # One email per moderator for the lot, not twenty.
    assert len(mail.outbox) == 1 and mail.outbox[0].body.count("still up") == 20


def test_three_networks_reporting_twenty_listings_with_new_browsers_and_pauses_hide_none(
    moderator, django_capture_on_commit_callbacks
):
    # The same attack from three networks, each report with a browser version of its own and
    # the reports of each listing spread past the burst window: three serial reporters.
    company = CompanyFactory()
    listings = [new_listing(company=company) for _ in range(20)]
    addresses = (("203.0.113.7", 50), ("198.51.100.8", 30), ("192.0.2.9", 10))
    with django_capture_on_commit_callbacks(execute=True):
        for n, posting in enumerate(listings):
            for m, (address, minutes_ago) in enumerate(addresses):
                user_agent = CHROME.replace("131.0", f"131.{n}.{m}")
                assert report_from(posting, address, user_agent) == 200
                move_back(minutes_ago)
    assert Report.objects.count() == 60
    # The first two listings were reported before any of the three had a string of reports (as
    # three genuine visitors might report them); from the third on they count once together.
    assert [is_public(posting) for posting in listings] == [False] * 2 + [True] * 18
    assert ModerationAction.objects.filter(kind="auto_hide").count() == 2
    assessment = safety_net.assess(posting=listings[-1])
    assert (assessment.reporters, assessment.networks, assessment.weight) == (3, 3, 1)
    assert "visitors who each reported 3+ listings within the hour" in assessment.summary()


def test_one_browser_reporting_many_listings_from_many_networks_counts_once():
    company = CompanyFactory()
    listings = [new_listing(company=company) for _ in range(3)]
    for minutes, network in ((50, "n1"), (30, "n2"), (10, "n3")):
        for posting in listings:
            services.report_submit(
                posting=posting, reason="fake", reporter=f"v-{network}", network=network, agent="a"
            )
            move_back(minutes)
    assert all(is_public(posting) for posting in listings)
    assessment = safety_net.assess(posting=listings[0])
    assert (assessment.reporters, assessment.networks, assessment.weight) == (3, 3, 1)
    assert "browser that reported 3+ listings" in assessment.summary()


def test_reports_within_a_minute_count_once_even_from_different_networks():
    posting = new_listing()
    for n, (address, user_agent) in enumerate(
        (("203.0.113.9", CHROME), ("198.51.100.4", FIREFOX), ("192.0.2.77", SAFARI))
    ):
        assert report_from(posting, address, user_agent) == 200
        Report.objects.filter(pk=Report.objects.latest("pk").pk).update(
            created_at=timezone.now() - timedelta(seconds=50 - 20 * n)
        )
    assert is_public(posting)
    note = ModerationAction.objects.get(posting=posting, kind="net_alert").note
    assert "weighed as 1 independent reporter" in note and "within a minute" in note


def test_reporters_whose_reports_were_dismissed_count_less(moderator):
    posting = new_listing()
    earlier = new_listing()
    for reason in ("fake", "unsafe"):
        old, _ = services.report_submit(
            posting=earlier, reason=reason, reporter="crier", network="n-crier"
        )
        services.report_dismiss(report=old, by=moderator, note="Nothing wrong with it.")
    for minutes, reporter in ((90, "crier"), (60, "v2"), (0, "v3")):
        services.report_submit(
            posting=posting, reason="fake", reporter=reporter, network=f"n-{reporter}"
        )
        if minutes:
            move_back(minutes)
    assert is_public(posting)
    assessment = safety_net.assess(posting=posting)
    assert assessment.weight == 2 and "dismissed" in assessment.summary()


# The net still works


def test_distinct_reporters_over_time_still_hide_an_unverified_companys_new_listing(
    moderator, django_capture_on_commit_callbacks
):
    posting = new_listing(title="Crypto Wallet Tester")
    owner = VerifiedUserFactory(email="owner@example.com")
    Membership.objects.create(company=posting.company, user=owner, role="owner")
    visitors = (
        ("203.0.113.9", CHROME, 120),
        ("2001:db8:4:1::5", FIREFOX, 45),
        ("192.0.2.77", SAFARI, 0),
    )
    with django_capture_on_commit_callbacks(execute=True):
        for address, user_agent, minutes_ago in visitors:
            assert report_from(posting, address, user_agent) == 200
            if minutes_ago:
                move_back(minutes_ago)
    posting.refresh_from_db()
    assert posting.status == Posting.Status.PENDING_REVIEW and not is_public(posting)
    hide = ModerationAction.objects.get(posting=posting, kind="auto_hide")
    assert hide.actor is None and "weighed as 3 independent reporters" in hide.note
    recipients = sorted(message.to[0] for message in mail.outbox)
    assert recipients == ["moderator@example.com", "owner@example.com"]
    alert = next(m for m in mail.outbox if m.to == ["moderator@example.com"])
    assert "Safety net hid 1 listing" in alert.subject and "HIDDEN" in alert.body


def test_a_verified_companys_listing_is_never_hidden_by_the_net(moderator):
    posting = new_listing(company=VerifiedCompanyFactory())
    for minutes, n in ((300, 1), (200, 2), (100, 3), (0, 4)):
        services.report_submit(posting=posting, reason="unsafe", reporter=f"v{n}", network=f"n{n}")
        if minutes:
            move_back(minutes)
    assert is_public(posting)
    assert safety_net.assess(posting=posting).warrants_hiding
    alerts = ModerationAction.objects.filter(posting=posting, kind="net_alert")
    assert alerts.count() == 1  # once a day per listing, however many more reports come
    assert "the company is verified" in alerts.get().note


def test_the_threshold_rises_with_the_listings_age_and_audience(settings):
    now = timezone.now()
    assert safety_net.threshold_for(new_listing(), now) == 3
    assert safety_net.threshold_for(new_listing(posted_at=now - timedelta(days=15)), now) == 5
    assert safety_net.threshold_for(new_listing(posted_at=now - timedelta(days=90)), now) == 6
    assert safety_net.threshold_for(new_listing(view_count=999), now) == 3
    assert safety_net.threshold_for(new_listing(view_count=900, apply_click_count=100), now) == 4
    assert safety_net.threshold_for(new_listing(view_count=25_000), now) == 5


def test_three_independent_reporters_do_not_hide_an_established_listing():
    posting = new_listing(posted_at=timezone.now() - timedelta(days=30), view_count=4_000)
    for minutes, n in ((300, 1), (200, 2), (0, 3)):
        services.report_submit(posting=posting, reason="fake", reporter=f"v{n}", network=f"n{n}")
        if minutes:
            move_back(minutes)
    assert is_public(posting)
    assert "against a threshold of 7" in ModerationAction.objects.get(kind="net_alert").note


def test_reports_a_moderator_let_stand_by_approving_do_not_count_again(moderator):
    posting = new_listing()
    for minutes, n in ((300, 1), (200, 2)):
        services.report_submit(posting=posting, reason="fake", reporter=f"v{n}", network=f"n{n}")
        move_back(minutes)
    services.posting_hide(posting=posting, by=moderator, note="Checking.")
    Report.objects.update(status="open", handled_at=None)  # reports a moderator left open
    services.posting_moderation_approve(posting=posting, by=moderator)
    services.report_submit(posting=posting, reason="fake", reporter="v3", network="n3")
    assert is_public(posting)
    assert safety_net.assess(posting=posting).reporters == 1


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.1", "203.0.113.0/24"),
        ("203.0.113.254", "203.0.113.0/24"),
        ("2001:db8:1:2::1", "2001:db8:1::/48"),
        ("::ffff:203.0.113.7", "203.0.113.0/24"),
        ("", "unknown"),
        ("not an address", "unknown"),
    ],
)
def test_a_reporters_network_is_their_slash_24_or_slash_48(address, network):
    assert safety_net.network_of(address) == network


def test_an_alert_is_sent_once_and_a_missed_one_goes_with_the_digest(moderator):
    posting = new_listing()
    ModerationAction.objects.create(kind="net_alert", posting=posting, note="Reported.")
    assert send_moderator_digest() == 0  # no new reports for the digest, but ...
    assert len(mail.outbox) == 1 and posting.title in mail.outbox[0].body  # ... the alert went
    assert safety_net.alerts_send() == 0
    assert len(mail.outbox) == 1
