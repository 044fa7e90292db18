"""A visitor reports a fake listing; a moderator finds it first in the queue and hides it."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from playwright.sync_api import expect

from postings.factories import PublishedPostingFactory
from reporting.models import ModerationAction, Report
from tests.e2e.conftest import check_accessibility

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def report_as_visitor(browser, live_server, posting, reason_label: str, address: str) -> None:
    context = browser.new_context(
        base_url=live_server.url, extra_http_headers={"X-Forwarded-For": address}
    )
    page = context.new_page()
    page.goto(posting.get_absolute_url())
    page.get_by_text("Report this job", exact=True).last.click()
    check_accessibility(page)
    page.get_by_label(reason_label).check()
    page.get_by_role("button", name="Send report").click()
    expect(page.get_by_text("Thank you. Our team will review this report.")).to_be_visible()
    context.close()


def test_a_moderator_hides_a_reported_fake_listing(browser, live_server, page, settings):
    settings.TRUSTED_PROXY_COUNT = 1  # each "visitor" below comes from its own address
    settings.SAFETY_NET_REPORTS = 99  # the moderator acts here, not the safety net
    fake = PublishedPostingFactory(title="Easy Money From Home")
    mild = PublishedPostingFactory(title="Slightly Wrong Salary")
    report_as_visitor(browser, live_server, mild, "Inaccurate (wrong facts)", "198.51.100.1")
    report_as_visitor(browser, live_server, fake, "Fake (no such job or company)", "198.51.100.2")

    moderator = get_user_model().objects.create_user(email="mod@example.com", password="x" * 20)
    # Earlier browser tests flush the tables, data migrations included: make the group again.
    group, _ = Group.objects.get_or_create(name="Moderators")
    group.permissions.add(Permission.objects.get(codename="moderate"))
    moderator.groups.add(group)
    page.goto("/accounts/login/?next=/moderation/")
    page.get_by_label("Email").fill("mod@example.com")
    page.get_by_label("Password").fill("x" * 20)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Reported listings")
    rows = page.locator("table.dashboard tbody tr")
    expect(rows.first).to_contain_text("Easy Money From Home")  # unsafe and fake come first
    expect(rows.nth(1)).to_contain_text("Slightly Wrong Salary")
    check_accessibility(page)

    rows.first.get_by_role("link", name="Easy Money From Home").click()
    page.get_by_text("Hide pending review…").click()
    page.get_by_label("Note (why; kept in the audit log)").first.fill("Classic advance-fee scam.")
    page.get_by_role("button", name="Hide", exact=True).click()
    audit_log = page.get_by_role("table", name="What moderators and the safety net did")
    expect(audit_log).to_contain_text("Hid the listing")
    expect(audit_log).to_contain_text("Classic advance-fee scam.")
    check_accessibility(page)

    page.goto("/jobs/?q=money")
    expect(page.get_by_role("link", name="Easy Money From Home")).to_have_count(0)
    page.goto("/jobs/")
    expect(page.get_by_role("link", name="Easy Money From Home")).to_have_count(0)
    action = ModerationAction.objects.get(posting=fake, kind="hide")
    assert action.actor == moderator and action.note == "Classic advance-fee scam."

    # A second visitor's report of the listing joins the same group in the queue.
    report_as_visitor(browser, live_server, mild, "Inaccurate (wrong facts)", "198.51.100.3")
    page.goto("/moderation/")
    mild_row = page.locator("table.dashboard tbody tr", has_text="Slightly Wrong Salary")
    expect(mild_row).to_have_count(1)
    assert Report.objects.filter(posting=mild).count() == 2
