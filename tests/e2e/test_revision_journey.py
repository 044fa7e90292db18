"""An unverified company renames a live listing: candidates keep seeing it as it was until a
moderator approves the edit, then see the new title."""

import pytest
from django.contrib.auth.models import Group, Permission
from playwright.sync_api import expect

from accounts.factories import PASSWORD, EmployerFactory, VerifiedUserFactory
from postings.factories import PublishedPostingFactory
from tests.e2e.conftest import check_accessibility

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def log_in(page, email: str, next_url: str) -> None:
    page.goto(f"/accounts/login/?next={next_url}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_an_edit_waits_for_a_moderator_while_candidates_see_the_approved_listing(
    browser, live_server, page
):
    employer = EmployerFactory()  # its company is not verified
    listing = PublishedPostingFactory(
        company=employer.company,
        title="Harbour Pilot",
        description="Guide ships into the harbour.",
        applies_on_board=True,
        apply_url="",
    )
    candidate = browser.new_context(base_url=live_server.url).new_page()

    log_in(page, employer.user.email, "/employer/")
    page.get_by_role("link", name="Edit").first.click()
    check_accessibility(page)
    page.get_by_label("Title").fill("Harbour Master")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Your edit is waiting for review").first).to_be_visible()
    check_accessibility(page)

    candidate.goto(f"/jobs/{listing.pk}/")
    expect(candidate.get_by_role("heading", level=1)).to_have_text("Harbour Pilot")
    expect(candidate.get_by_role("link", name="Apply for this job")).to_be_visible()
    check_accessibility(candidate)

    moderator = VerifiedUserFactory(email="mod@example.com")
    # Earlier browser tests flush the tables, data migrations included: make the group again.
    group, _ = Group.objects.get_or_create(name="Moderators")
    group.permissions.add(Permission.objects.get(codename="moderate"))
    moderator.groups.add(group)
    page.context.clear_cookies()
    log_in(page, "mod@example.com", "/moderation/revisions/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Edits waiting for review")
    check_accessibility(page)
    page.get_by_role("link", name="Review").click()
    changes = page.get_by_role("table", name="What the edit changes")
    expect(changes).to_contain_text("Harbour Pilot")
    expect(changes).to_contain_text("Harbour Master")
    check_accessibility(page)
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Edit approved: “Harbour Master” shows it now.")).to_be_visible()

    candidate.goto(f"/jobs/{listing.pk}/")
    expect(candidate.get_by_role("heading", level=1)).to_have_text("Harbour Master")
    candidate.goto("/jobs/")
    expect(candidate.get_by_role("link", name="Harbour Master")).to_be_visible()
    candidate.context.close()
