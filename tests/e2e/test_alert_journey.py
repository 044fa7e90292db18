"""A candidate asks for new jobs by email from the list page, confirms from the email, gets an
alert, and unsubscribes from it in one click."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from alerts import services
from alerts.models import SavedSearch
from jobboard.celery import app as celery_app
from postings.factories import PublishedPostingFactory
from tests.alerts.conftest import links_in
from tests.e2e.conftest import check_accessibility

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _eager_tasks():
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def test_a_candidate_subscribes_confirms_gets_an_alert_and_unsubscribes(page, mailoutbox):
    PublishedPostingFactory(workplace="remote", city="", title="Remote Tax Adviser")
    page.goto("/jobs/?workplace=remote")
    box = page.locator(".alert-box")
    expect(box.get_by_role("heading")).to_have_text("Email me new jobs like these")
    check_accessibility(page)
    box.get_by_label("Your email").fill("ann@example.com")
    box.get_by_label("Weekly").check()
    box.get_by_role("button", name="Email me").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    expect(page.get_by_role("status")).to_contain_text("Remote")
    check_accessibility(page)

    [confirmation] = mail.outbox
    [link] = links_in(confirmation.body, "/alerts/confirm/")
    page.goto(link)
    check_accessibility(page)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your job alert is on")
    check_accessibility(page)
    search = SavedSearch.objects.get()
    assert search.is_active and search.frequency == "weekly" and search.query == "workplace=remote"

    # A week on, a new remote job: the alert goes out.
    week_ago = timezone.now() - timedelta(days=7)
    SavedSearch.objects.filter(pk=search.pk).update(
        confirmed_at=week_ago, covered_until=week_ago, next_alert_at=timezone.now()
    )
    new = PublishedPostingFactory(
        workplace="remote",
        city="",
        title="Remote Payroll Lead",
        posted_at=week_ago + timedelta(days=2),
    )
    assert services.alert_batch_send(search_ids=[search.pk]) == 1
    alert = mail.outbox[-1]
    assert "Remote Payroll Lead" in alert.body and new.get_absolute_url() in alert.body

    [unsubscribe] = links_in(alert.body, "/alerts/unsubscribe/")
    page.goto(unsubscribe)
    check_accessibility(page)
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    check_accessibility(page)
    search.refresh_from_db()
    assert not search.is_active


def test_the_alert_box_fits_a_phone(phone):
    phone.goto("/jobs/")
    box = phone.locator(".alert-box")
    box.scroll_into_view_if_needed()
    expect(box.get_by_label("Your email")).to_be_visible()
    check_accessibility(phone)
    width = box.evaluate("el => el.scrollWidth <= el.clientWidth")
    assert width, "the alert box overflows a 390 px screen"
