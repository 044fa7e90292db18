"""A visitor reports a listing without an account: in place with JavaScript, on its own page
without it."""

import pytest
from playwright.sync_api import expect

from postings.factories import PublishedPostingFactory
from reporting.models import Report
from tests.e2e.conftest import check_accessibility

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

THANKS = "Thank you. Our team will review this report."


def test_a_visitor_reports_a_listing_in_place(page):
    posting = PublishedPostingFactory(title="Too Good To Be True")
    page.goto(posting.get_absolute_url())
    page.get_by_text("Report this job", exact=True).last.click()
    check_accessibility(page)
    page.get_by_label("Fake (no such job or company)").check()
    page.get_by_label("Details (optional)").fill("They asked me to pay for training.")
    page.get_by_role("button", name="Send report").click()
    expect(page.get_by_role("status").filter(has_text=THANKS)).to_be_visible()
    check_accessibility(page)
    assert page.url.endswith(posting.get_absolute_url())  # never left the listing
    report = Report.objects.get()
    assert (report.reason, report.details) == ("fake", "They asked me to pay for training.")


def test_a_mistake_is_explained_in_place(page):
    posting = PublishedPostingFactory()
    page.goto(posting.get_absolute_url())
    page.get_by_text("Report this job", exact=True).last.click()
    page.get_by_role("button", name="Send report").click()
    expect(page.locator(".report-form__errors")).to_contain_text("required")
    check_accessibility(page)
    assert not Report.objects.exists()


def test_reporting_works_without_javascript(browser, live_server):
    posting = PublishedPostingFactory()
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    page.goto(posting.get_absolute_url())
    page.get_by_text("Report this job", exact=True).last.click()
    page.get_by_label("Closed (the job is no longer open)").check()
    page.get_by_role("button", name="Send report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(THANKS)
    assert Report.objects.get().reason == "closed"
    context.close()


def test_a_visitor_reports_a_listing_from_a_kept_page(browser, live_server, page, monkeypatch):
    """The page someone else's visit kept, served with this visitor's own CSRF token."""
    from postings import pagecache

    posting = PublishedPostingFactory(title="Seen Before")
    someone = browser.new_context(base_url=live_server.url)
    someone.new_page().goto(posting.get_absolute_url())  # rendered, and kept
    someone.close()
    served, respond = [], pagecache._response

    def recorded(request, kept):
        served.append(request.path)
        return respond(request, kept)

    monkeypatch.setattr(pagecache, "_response", recorded)
    page.goto(posting.get_absolute_url())
    assert served == [posting.get_absolute_url()]
    page.get_by_text("Report this job", exact=True).last.click()
    page.get_by_label("Closed (the job is no longer open)").check()
    page.get_by_role("button", name="Send report").click()
    expect(page.get_by_role("status").filter(has_text=THANKS)).to_be_visible()
    assert Report.objects.get().reason == "closed"
