"""An employer signs up, opens the emailed link in the same browser (which verifies the address
and logs them in), sets up their company and posts a job."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from postings.models import Company
from tests.e2e.conftest import check_accessibility

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_employer_signs_up_verifies_the_email_creates_a_company_and_sees_it(page, live_server):
    page.goto("/jobs/")
    page.get_by_role("link", name="Post a job").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Post jobs on Jobboard")
    check_accessibility(page)

    page.get_by_label("Work email").fill("Grace@Initech.example")
    page.get_by_label("Full name").fill("Grace Hopper")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    # A weak password is refused next to its field; the rest of the form is kept.
    expect(page.locator("#id_password_error")).to_contain_text("too short")
    expect(page.get_by_label("Work email")).to_have_value("Grace@Initech.example")
    check_accessibility(page)
    page.get_by_label("Password").fill("tangerine-lighthouse-42")
    page.get_by_role("button", name="Create account").click()

    # The same answer as for an address that has an account: nothing says which it was.
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    expect(page.get_by_role("main")).to_contain_text("grace@initech.example")
    check_accessibility(page)

    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/accounts/verify/\S+/", mail.outbox[0].body).group(0)
    assert link.startswith(live_server.url)
    # Opened in the browser that signed up, the link logs in and goes on to the company.
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Tell us about your company")
    expect(page.get_by_text("grace@initech.example is verified")).to_be_visible()
    expect(page.get_by_role("region", name="Verify your email address")).to_have_count(0)
    check_accessibility(page)
    page.get_by_label("Company name").fill("Initech")
    page.get_by_label("Type of company").select_option(label="Startup")
    page.get_by_label("Website").fill("initech.example")
    page.get_by_label("Short description").fill("We make TPS reports delightful.")
    page.get_by_role("button", name="Create company").click()
    expect(page.get_by_text("Initech is set up.")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Company").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Initech")
    expect(page.get_by_label("Website")).to_have_value("https://initech.example")
    check_accessibility(page)
    page.get_by_role("navigation", name="Company").get_by_role("link", name="Members").click()
    expect(page.get_by_text("grace@initech.example")).to_be_visible()
    expect(page.get_by_text("Owner", exact=True)).to_be_visible()
    check_accessibility(page)

    company = Company.objects.get(name="Initech")
    assert company.slug == "initech"
    assert company.is_owned_by(company.memberships.get().user)

    # Post a role: a draft first, then published. A new company's posting waits for review.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your postings")
    check_accessibility(page)
    page.get_by_role("link", name="Post a job").first.click()
    page.get_by_label("Title").fill("TPS Report Engineer")
    page.get_by_label("Position (seniority)").select_option(label="Senior")
    page.get_by_label("Employment type").select_option(label="Full time")
    page.get_by_label("Practice area").select_option(label="Engineering")
    page.get_by_label("Workplace").select_option(label="Hybrid")
    page.get_by_label("City").fill("Austin")
    page.get_by_label("Country").select_option("US")
    page.get_by_label("Here, on this board, with their CV").check()
    page.get_by_label("Description").fill("## The role\n\nMake **TPS reports** delightful.")
    page.get_by_role("button", name="Preview description").click()
    expect(page.locator(".preview strong")).to_have_text("TPS reports")
    check_accessibility(page)
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()

    row = page.locator("tr", has_text="TPS Report Engineer")
    row.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("is waiting for review")).to_be_visible()
    check_accessibility(page)
    page.goto("/jobs/")
    expect(page.get_by_role("link", name="TPS Report Engineer")).to_have_count(0)

    # A moderator verifies the company (the moderation screens come later: the admin does it),
    # and from then on its postings publish at once.
    company.is_verified = True
    company.save()
    page.goto("/employer/")
    page.locator("tr", has_text="TPS Report Engineer").get_by_role(
        "button", name="Duplicate"
    ).click()
    draft_row = page.locator("tr", has_text="Draft").filter(has_text="TPS Report Engineer")
    expect(draft_row).to_have_count(1)
    from postings.models import Posting
    from postings.services import posting_approve

    posting_approve(posting=Posting.objects.get(status="pending_review"), by=None)
    page.goto("/jobs/?q=TPS")
    expect(page.get_by_role("link", name="TPS Report Engineer")).to_be_visible()
    page.get_by_role("link", name="TPS Report Engineer").click()
    expect(page.locator("dl.facts")).to_contain_text("Austin, United States of America")
    expect(page.locator(".posting__stats")).to_contain_text("0 applicants")

    # Publishing the duplicate of an open role is caught and offered as an extension instead.
    page.goto("/employer/")
    page.locator("tr", has_text="Draft").get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Extend its deadline instead")).to_be_visible()
    check_accessibility(page)


def test_the_link_opened_on_another_device_verifies_and_asks_to_log_in(page, phone, live_server):
    page.goto("/accounts/signup/")
    page.get_by_label("Work email").fill("ada@initech.example")
    page.get_by_label("Password").fill("tangerine-lighthouse-42")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    link = re.search(r"http://\S+/accounts/verify/\S+/", mail.outbox[0].body).group(0)

    # The phone did not sign up: the link verifies the address but logs nobody in there.
    phone.goto(link)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Email verified")
    check_accessibility(phone)
    phone.get_by_role("main").get_by_role("link", name="Log in").click()
    check_accessibility(phone)
    phone.get_by_label("Email").fill("ada@initech.example")
    phone.get_by_label("Password").fill("tangerine-lighthouse-42")
    phone.get_by_role("main").get_by_role("button", name="Log in").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Tell us about your company")

    # Back on the computer, the used link no longer logs in.
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Already verified")
    expect(page.get_by_role("main").get_by_role("link", name="Log in")).to_be_visible()
    check_accessibility(page)
