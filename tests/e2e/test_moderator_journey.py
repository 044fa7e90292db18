"""A moderator logs in, lands on the moderation queue with no employer prompts, and works the
queue of listings hidden after reports."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from playwright.sync_api import expect

from postings.factories import PendingReviewPostingFactory, PublishedPostingFactory
from postings.models import Posting
from reporting.models import ModerationAction
from tests.e2e.conftest import check_accessibility

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_moderator_lands_on_the_queue_and_shows_a_hidden_listing_again(page):
    # Not verified: the banner that asks employers to verify before publishing must not show.
    moderator = get_user_model().objects.create_user(email="mod@example.com", password="x" * 20)
    # Earlier browser tests flush the tables, data migrations included: make the group again.
    group, _ = Group.objects.get_or_create(name="Moderators")
    group.permissions.add(Permission.objects.get(codename="moderate"))
    moderator.groups.add(group)
    hidden = PublishedPostingFactory(title="Remote Data Entry, Paid Daily")
    Posting.objects.filter(pk=hidden.pk).update(status=Posting.Status.PENDING_REVIEW)
    ModerationAction.objects.create(kind="auto_hide", posting=hidden, note="Reported.")
    PendingReviewPostingFactory(title="Junior Welder")

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("mod@example.com")
    page.get_by_label("Password").fill("x" * 20)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Reported listings")
    expect(page.get_by_text("Please verify your email address")).to_have_count(0)
    main_nav = page.get_by_role("navigation", name="Main")
    expect(main_nav.get_by_role("link", name="Company")).to_have_count(0)
    expect(main_nav.get_by_role("link", name="Dashboard")).to_have_count(0)
    tabs = page.get_by_role("navigation", name="Moderation")
    expect(tabs.get_by_role("link", name="Waiting for approval (1)")).to_be_visible()
    check_accessibility(page)

    tabs.get_by_role("link", name="Hidden after reports (1)").click()
    row = page.locator("table.dashboard tbody tr", has_text="Remote Data Entry, Paid Daily")
    expect(row).to_contain_text("by the safety net")
    expect(page.get_by_text("Junior Welder")).to_have_count(0)  # waiting, not hidden
    check_accessibility(page)
    row.get_by_role("button", name="Show again").click()
    expect(page.get_by_text("Listing approved: it is public now.")).to_be_visible()
    expect(page.get_by_role("link", name="Hidden after reports (0)")).to_be_visible()
    assert Posting.objects.get(pk=hidden.pk).status == Posting.Status.PUBLISHED

    page.get_by_role("navigation", name="Moderation").get_by_role(
        "link", name="Waiting for approval (1)"
    ).click()
    expect(page.get_by_role("main")).to_contain_text("Junior Welder")
    check_accessibility(page)
