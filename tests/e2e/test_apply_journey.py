"""A candidate applies with a CV, without an account; the employer sees them and downloads it."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core import mail
from django.core.files.storage import FileSystemStorage
from django.test import Client
from playwright.sync_api import expect

from accounts.factories import EmployerFactory
from jobboard.celery import app as celery_app
from postings.application_factories import pdf_bytes
from postings.factories import CompanyFactory, PublishedPostingFactory
from postings.models import Application, Posting
from tests.e2e.conftest import check_accessibility

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


@pytest.fixture(autouse=True)
def cv_storage(tmp_path, monkeypatch):
    storage = FileSystemStorage(location=tmp_path / "private", base_url=None)
    monkeypatch.setattr(Application._meta.get_field("cv"), "storage", storage)
    return storage


@pytest.fixture(autouse=True)
def _eager_tasks():
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def board():
    employer = EmployerFactory(
        user__email="hiring@acme.example",
        company=CompanyFactory(name="Acme Robotics", slug="acme-robotics"),
    )
    posting = PublishedPostingFactory(
        company=employer.company,
        title="Senior Search Engineer",
        workplace=Posting.Workplace.REMOTE,
        applies_on_board=True,
        apply_url="",
    )
    stranger = EmployerFactory(user__email="boss@globex.example")
    return {"posting": posting, "employer": employer.user, "stranger": stranger.user}


def logged_in_context(browser, live_server, user):
    """A browser context carrying a session for ``user``, as if they had logged in."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=live_server.url, accept_downloads=True
    )
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    context.set_default_timeout(10_000)
    return context


def test_candidate_applies_with_a_pdf_and_the_employer_sees_and_downloads_it(
    page, browser, live_server, board
):
    posting = board["posting"]

    # The candidate opens the listing and follows Apply: a form, here, no account needed.
    page.goto(posting.get_absolute_url())
    expect(page.locator("[data-stat=applicants]")).to_have_text("0 applicants")
    check_accessibility(page)
    page.get_by_role("link", name="Apply for this job").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Apply for Senior Search Engineer")
    check_accessibility(page)

    page.get_by_label("Full name").fill("Ann Example")
    page.get_by_label("Email").fill("Ann@Example.com")
    page.get_by_label("Phone").fill("+381 64 123 4567")
    page.get_by_label("Links").fill("https://github.com/ann")
    page.get_by_label("Cover note").fill("I have built search systems for eight years.")

    # A picture renamed to .pdf is refused; everything typed is still there, the file is not.
    page.get_by_label("CV").set_input_files(
        files=[{"name": "Ann CV.pdf", "mimeType": "application/pdf", "buffer": PNG}]
    )
    page.get_by_role("button", name="Send application").click()
    expect(page.locator("#id_cv_error")).to_contain_text("must be a PDF or a Word (.docx)")
    expect(page.get_by_text("please choose it again")).to_be_visible()
    check_accessibility(page)
    expect(page.get_by_label("Full name")).to_have_value("Ann Example")
    expect(page.get_by_label("Cover note")).to_have_value(
        "I have built search systems for eight years."
    )

    page.get_by_label("CV").set_input_files(
        files=[{"name": "Ann Example CV.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes()}]
    )
    page.get_by_role("button", name="Send application").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        "Thank you, Ann Example: your application was sent"
    )
    check_accessibility(page)
    expect(page.get_by_text("ann@example.com")).to_be_visible()
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.com", "hiring@acme.example"]

    # Reloading the thank-you page sends nothing twice (post/redirect/get).
    page.reload()
    assert Application.objects.count() == 1

    page.goto(posting.get_absolute_url())
    expect(page.locator("[data-stat=applicants]")).to_have_text("1 applicant")

    # The employer sees the applicant, downloads the CV and shortlists them.
    employer = logged_in_context(browser, live_server, board["employer"]).new_page()
    employer.goto(f"/employer/postings/{posting.pk}/applicants/")
    expect(employer.get_by_role("heading", level=1)).to_have_text(
        "Applicants for Senior Search Engineer"
    )
    check_accessibility(employer)
    row = employer.get_by_role("row", name="Ann Example")
    expect(row).to_contain_text("ann@example.com")
    expect(row).to_contain_text("+381 64 123 4567")
    with employer.expect_download() as download_info:
        row.get_by_role("link", name="Ann Example CV.pdf").click()
    download = download_info.value
    assert download.suggested_filename == "Ann Example CV.pdf"
    with open(download.path(), "rb") as downloaded:
        assert downloaded.read() == pdf_bytes()

    row.get_by_label("Status of Ann Example").select_option(label="Shortlisted")
    row.get_by_role("button", name="Save").click()
    expect(employer.get_by_text("Ann Example is now marked Shortlisted.")).to_be_visible()
    filters = employer.get_by_role("navigation", name="Filter applicants by status")
    filters.get_by_role("link", name="Shortlisted").click()
    expect(employer.get_by_role("row", name="Ann Example")).to_be_visible()
    filters.get_by_role("link", name="New").click()
    expect(employer.get_by_text("No applicants marked “new”")).to_be_visible()
    check_accessibility(employer)
    employer.context.close()

    # Another company's member cannot get the CV, nor the applicants page.
    application = Application.objects.get()
    stranger = logged_in_context(browser, live_server, board["stranger"]).new_page()
    response = stranger.goto(f"/employer/applications/{application.pk}/cv/")
    assert response.status == 404
    response = stranger.goto(f"/employer/postings/{posting.pk}/applicants/")
    assert response.status == 404
    stranger.context.close()

    # And without logging in, the CV address asks for a log-in.
    page.goto(f"/employer/applications/{application.pk}/cv/")
    assert "/accounts/login/" in page.url
