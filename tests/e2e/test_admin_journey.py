"""A staff member works in Django's admin, under the site's Content-Security-Policy like any page
(the conftest fails the test on any violation)."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from postings.factories import PendingReviewPostingFactory, PublishedPostingFactory
from reporting.models import Report

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_staff_search_a_changelist_edit_a_listing_and_approve_one_in_the_admin(page):
    get_user_model().objects.create_superuser(email="admin@example.com", password="x" * 20)
    live = PublishedPostingFactory(title="Harbour Pilot")
    waiting = PendingReviewPostingFactory(title="Lighthouse Keeper")
    Report.objects.create(posting=live, reason="inaccurate", reporter="visitor-a")

    page.goto("/admin/")
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill("x" * 20)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Postings", exact=True)).to_be_visible()

    # A changelist with filters, a date drill-down, search and an action.
    page.get_by_role("link", name="Postings", exact=True).click()
    page.get_by_role("searchbox").fill("Lighthouse")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="Lighthouse Keeper")).to_be_visible()
    page.locator(f'input[name="_selected_action"][value="{waiting.pk}"]').check()
    page.get_by_role("combobox", name="Action").select_option("approve")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_text("1 postings are live.")).to_be_visible()

    # A change form with date and time widgets and a raw id lookup.
    page.goto(f"/admin/postings/posting/{live.pk}/change/")
    deadline = page.locator(".field-deadline")
    deadline.get_by_role("link", name="Choose a Date").click()
    expect(page.locator(".calendarbox").filter(visible=True)).to_have_count(1)
    page.locator(".calendarbox").filter(visible=True).get_by_role("link", name="Cancel").click()
    deadline.get_by_role("link", name="Choose a Time").click()
    page.locator(".clockbox").filter(visible=True).get_by_role("link", name="Cancel").click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()

    # A changelist with no actions at all (reports are never deleted).
    page.goto("/admin/reporting/report/")
    expect(page.get_by_role("link", name="Harbour Pilot")).to_be_visible()
    page.goto("/admin/reporting/moderationaction/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Select")
