"""Likely duplicates: the keys, the look-up, the automatic report, and the moderator's panel."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.factories import EmployerFactory, VerifiedUserFactory
from postings import duplicates, services
from postings.duplicates import (
    SAME_DESCRIPTION,
    SAME_SOURCE,
    SAME_TITLE,
    description_key,
    likely_duplicates,
    title_key,
)
from postings.factories import (
    ClosedPostingFactory,
    CompanyFactory,
    DraftPostingFactory,
    PendingReviewPostingFactory,
    PublishedPostingFactory,
    RemovedPostingFactory,
    VerifiedCompanyFactory,
)
from postings.imports import import_url
from postings.models import Posting
from reporting import services as reporting_services
from reporting.models import ModerationAction, Report
from tests.source_server import job_posting

pytestmark = pytest.mark.django_db

LONG_TEXT = (
    "You will design, build and run the services behind our shop, review code with a small "
    "team, look after the databases and queues, and help colleagues ship every week. "
    "We offer a fair salary, four weeks off and a budget for books and conferences."
)


def berlin(**fields):
    return {"city": "Berlin", "region": "Berlin", "country": "DE", "workplace": "onsite", **fields}


# --- Keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Senior Python Developer (m/w/d)", "python developer, senior"),
        ("Senior Python Developer (m/f/d)", "Senior Python Developer"),
        ("Développeur Python (H/F)", "developpeur python"),
        ("Python-Entwickler m/w/d", "Python Entwickler"),
        ("Data Engineer (all genders)", "DATA ENGINEER"),
        ("Engineer, Engineer – Backend", "backend engineer"),
    ],
)
def test_titles_that_name_the_same_role_have_the_same_key(one, other):
    assert title_key(one) == title_key(other) != ""


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Backend Engineer", "Frontend Engineer"),
        ("Senior Python Developer", "Python Developer"),
        ("Developer (m/w/d)", "Developer (Munich)"),
    ],
)
def test_titles_of_different_roles_have_different_keys(one, other):
    assert title_key(one) != title_key(other)


def test_title_key_reads_as_sorted_words():
    assert title_key("Senior Python Developer (m/w/d)") == "developer python senior"


def test_the_same_words_under_other_markup_case_and_spacing_have_the_same_description_key():
    markdown = f"## About the role\n\n{LONG_TEXT}"
    html = f"<h2>About   the ROLE</h2><p>{LONG_TEXT.upper()}</p>"
    key = description_key(markdown)
    assert key == description_key(html)
    assert len(key) == 40 and int(key, 16) >= 0


def test_html_entities_and_punctuation_are_ignored_in_the_description_key():
    text = LONG_TEXT.replace("books and conferences", "books &amp; conferences")
    assert description_key(text) == description_key(text.replace("&amp;", "&").replace(",", ""))


def test_different_descriptions_have_different_keys():
    assert description_key(LONG_TEXT) != description_key(LONG_TEXT + " Remote is fine.")


def test_a_short_description_has_no_key_so_boilerplate_matches_nothing():
    assert (
        description_key("<p>Apply on our website. We look forward to hearing from you!</p>") == ""
    )


def test_saving_a_posting_fills_its_keys_and_a_title_edit_updates_them():
    posting = PublishedPostingFactory(title="Senior Python Developer (m/w/d)")
    posting.set_description(LONG_TEXT)
    posting.save()
    posting.refresh_from_db()
    assert posting.title_key == "developer python senior"
    assert posting.description_key == description_key(LONG_TEXT)

    posting.title = "Lead Python Developer"
    posting.save(update_fields=["title"])
    posting.refresh_from_db()
    assert posting.title_key == "developer lead python"


def test_the_data_migration_fills_existing_rows_in_batches(monkeypatch):
    migration = import_module("postings.migrations.0008_fill_duplicate_keys")
    monkeypatch.setattr(migration, "BATCH", 2)
    postings = PublishedPostingFactory.create_batch(5)
    expected = {p.pk: (p.title_key, p.description_key, p.apply_key) for p in postings}
    assert all(title and described and applied for title, described, applied in expected.values())
    Posting.objects.update(title_key="", description_key="", apply_key="")

    migration.fill_keys(django_apps, connection.schema_editor())
    migration.fill_keys(django_apps, connection.schema_editor())  # again: nothing to change

    stored = Posting.objects.values_list("pk", "title_key", "description_key", "apply_key")
    assert {pk: tuple(keys) for pk, *keys in stored} == expected


# --- Finding them ---------------------------------------------------------------------------


def test_the_same_role_of_one_company_in_one_place_is_a_likely_duplicate():
    first = PublishedPostingFactory(title="Senior Python Developer", **berlin())
    again = PendingReviewPostingFactory(
        company=first.company, title="Python Developer, Senior (m/w/d)", **berlin(city="berlin")
    )
    assert likely_duplicates(again) == [(first, SAME_TITLE)]
    assert likely_duplicates(first) == [(again, SAME_TITLE)]


def test_the_same_role_elsewhere_or_at_another_company_is_not():
    first = PublishedPostingFactory(title="Senior Python Developer", **berlin())
    PublishedPostingFactory(
        company=first.company, title="Senior Python Developer", city="Munich", country="DE"
    )
    PublishedPostingFactory(title="Senior Python Developer", **berlin())  # another company
    assert likely_duplicates(first) == []


def test_remote_roles_of_one_company_match_wherever_their_home_city_is():
    first = PublishedPostingFactory(title="Support Engineer", **berlin(workplace="remote"))
    again = PublishedPostingFactory(
        company=first.company, title="Support Engineer", workplace="remote", city="", country="PT"
    )
    assert likely_duplicates(again) == [(first, SAME_TITLE)]


def test_the_same_description_at_another_company_is_a_likely_duplicate():
    first = PublishedPostingFactory(title="Backend Engineer")
    first.set_description(LONG_TEXT)
    first.save()
    again = PublishedPostingFactory(title="Platform Engineer")
    again.set_description_html(f"<p>{LONG_TEXT}</p>")
    again.save()
    assert likely_duplicates(again) == [(first, SAME_DESCRIPTION)]


def test_an_employer_linking_to_an_imported_page_is_the_same_source_page():
    imported = PublishedPostingFactory(
        source_url="https://jobs.example/acme/42", apply_url="https://jobs.example/acme/42"
    )
    employer = PendingReviewPostingFactory(apply_url="https://JOBS.example/acme/42?utm_source=x")
    assert likely_duplicates(employer) == [(imported, SAME_SOURCE)]
    assert likely_duplicates(imported) == [(employer, SAME_SOURCE)]


def test_an_apply_link_that_is_no_web_address_matches_nothing():
    PublishedPostingFactory(source_url="https://jobs.example/1", apply_url="https://jobs.example/1")
    odd = PublishedPostingFactory(apply_url="mailto:jobs@acme.example")
    assert odd.apply_key == "" and likely_duplicates(odd) == []


def test_two_employer_listings_sharing_a_careers_page_are_not_the_same_source():
    one = PublishedPostingFactory(apply_url="https://acme.example/careers")
    PublishedPostingFactory(apply_url="https://acme.example/careers")
    assert likely_duplicates(one) == []


def test_several_reasons_are_named_together_strongest_first():
    first = PublishedPostingFactory(title="Data Analyst", **berlin())
    first.set_description(LONG_TEXT)
    first.save()
    again = PublishedPostingFactory(company=first.company, title="data analyst", **berlin())
    again.set_description(LONG_TEXT)
    again.save()
    assert likely_duplicates(again) == [(first, "Same company, title and place; same description")]


def test_open_listings_come_first_then_the_newest():
    now = timezone.now()
    first = PublishedPostingFactory(title="Data Analyst", posted_at=now - timedelta(days=9))
    kwargs = {"company": first.company, "title": "Data Analyst", "city": first.city}
    kwargs["country"] = first.country
    closed = ClosedPostingFactory(posted_at=now - timedelta(days=1), **kwargs)
    newer = PublishedPostingFactory(posted_at=now - timedelta(days=2), **kwargs)
    this = PendingReviewPostingFactory(**kwargs)
    assert [other for other, _ in likely_duplicates(this)] == [newer, first, closed]


def test_drafts_removed_listings_marked_duplicates_and_itself_are_left_out():
    first = PublishedPostingFactory(title="Data Analyst", **berlin())
    same = {"company": first.company, "title": "Data Analyst", **berlin()}
    DraftPostingFactory(**same)
    RemovedPostingFactory(**same)
    ClosedPostingFactory(duplicate_of=first, **same)
    this = PendingReviewPostingFactory(**same)
    assert likely_duplicates(this) == [(first, SAME_TITLE)]


# --- The automatic report -------------------------------------------------------------------


def automatic_reports(posting):
    return Report.objects.filter(posting=posting, reason=Report.Reason.LIKELY_DUPLICATE)


@pytest.fixture
def owner():
    return EmployerFactory(company=VerifiedCompanyFactory())


def test_publishing_a_duplicate_files_one_automatic_report_even_when_run_twice(
    owner, django_capture_on_commit_callbacks
):
    first = PublishedPostingFactory(company=owner.company, title="Senior Data Analyst", **berlin())
    draft = DraftPostingFactory(
        company=owner.company, title="Data Analyst, Senior (m/w/d)", **berlin()
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.posting_publish(posting=draft, by=owner.user)
    duplicates.flag_likely_duplicates(posting_id=draft.pk)  # a second run: nothing new

    (report,) = automatic_reports(draft)
    assert report.status == Report.Status.OPEN
    assert report.duplicate_of == first
    assert report.reporter.startswith(reporting_services.DUPLICATE_CHECK_REPORTER)
    assert f"Listing {first.pk}" in report.details and SAME_TITLE in report.details
    assert Posting.objects.get(pk=draft.pk).status == Posting.Status.PUBLISHED  # only flagged


def test_publishing_into_review_is_flagged_too(django_capture_on_commit_callbacks):
    owner = EmployerFactory()  # an unverified company: its listing waits for review
    PublishedPostingFactory(company=owner.company, title="Paralegal", **berlin())
    draft = DraftPostingFactory(company=owner.company, title="Paralegal (m/w/d)", **berlin())
    with django_capture_on_commit_callbacks(execute=True):
        services.posting_publish(posting=draft, by=owner.user)
    assert Posting.objects.get(pk=draft.pk).status == Posting.Status.PENDING_REVIEW
    assert automatic_reports(draft).count() == 1


def test_only_open_matches_are_reported(owner, django_capture_on_commit_callbacks):
    ClosedPostingFactory(company=owner.company, title="Senior Data Analyst", **berlin())
    draft = DraftPostingFactory(company=owner.company, title="Data Analyst Senior", **berlin())
    with django_capture_on_commit_callbacks(execute=True):
        services.posting_publish(posting=draft, by=owner.user)
    assert not automatic_reports(draft).exists()


def test_publishing_a_new_role_files_nothing(owner, django_capture_on_commit_callbacks):
    draft = DraftPostingFactory(company=owner.company, title="Patent Attorney", **berlin())
    with django_capture_on_commit_callbacks(execute=True):
        services.posting_publish(posting=draft, by=owner.user)
    assert not Report.objects.exists()


def test_a_handled_automatic_report_may_be_followed_by_a_new_one():
    first = PublishedPostingFactory(title="Data Analyst", **berlin())
    this = PublishedPostingFactory(company=first.company, title="Analyst, Data", **berlin())
    report = reporting_services.report_likely_duplicate(posting_id=this.pk)
    reporting_services.report_dismiss(report=report, by=None, note="Two openings.")
    assert reporting_services.report_likely_duplicate(posting_id=this.pk) is not None
    assert automatic_reports(this).count() == 2
    assert automatic_reports(this).open().count() == 1


def test_a_failing_check_is_logged_and_never_raised(monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(reporting_services, "report_likely_duplicate", broken)
    duplicates.flag_likely_duplicates(posting_id=1)
    assert "could not look for duplicates of posting 1" in caplog.text


def test_importing_a_page_an_employer_already_listed_files_one_report(
    quick_sources, source_server, django_capture_on_commit_callbacks
):
    company = CompanyFactory(name="Example GmbH")
    url = source_server.json_ld_page("/jobs/7", job_posting(title="Backend Developer (m/w/d)"))
    employer = PublishedPostingFactory(
        company=company, title="Backend Developer", apply_url=url, **berlin()
    )
    with django_capture_on_commit_callbacks(execute=True):
        imported = import_url(url).posting
    with django_capture_on_commit_callbacks(execute=True):
        assert not import_url(url).created  # imported again: the same listing, checked

    (report,) = automatic_reports(imported)
    assert report.duplicate_of == employer
    assert "Same source page; same company, title and place" in report.details


def test_visitors_cannot_file_the_automatic_duplicate_reason(client):
    posting = PublishedPostingFactory()
    client.post(f"/jobs/{posting.pk}/report/", {"reason": "likely_duplicate"})
    assert not Report.objects.filter(posting=posting).exists()


# --- The moderator's panel ------------------------------------------------------------------


@pytest.fixture
def moderator():
    user = VerifiedUserFactory(email="moderator@example.com")
    user.groups.add(Group.objects.get(name="Moderators"))
    return user


@pytest.fixture
def pair():
    """An open listing, and the same role listed again later by its company."""
    first = PublishedPostingFactory(
        title="Senior Data Analyst <script>alert(1)</script>", **berlin()
    )
    again = PublishedPostingFactory(
        company=first.company, title="<script>alert(1)</script> Data Analyst (Senior)", **berlin()
    )
    return first, again


def test_the_moderator_page_shows_likely_duplicates_with_a_one_click_mark(client, moderator, pair):
    first, again = pair
    client.force_login(moderator)
    response = client.get(reverse("moderation:posting", args=[again.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Likely duplicates" in page and f'id="likely-duplicate-{first.pk}"' in page
    assert reverse("moderation:posting", args=[first.pk]) in page
    assert first.get_absolute_url() in page and SAME_TITLE in page
    assert first.company.name in page and "Berlin" in page
    assert f'<input type="hidden" name="other" value="{first.pk}">' in page
    assert "Mark this listing a duplicate of it" in page


def test_the_moderator_page_escapes_the_other_listing_title(client, moderator, pair):
    first, _again = pair
    client.force_login(moderator)
    page = client.get(reverse("moderation:posting", args=[first.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Data Analyst (Senior)" in page
    assert "<script>alert(1)" not in page


def test_a_listing_waiting_for_review_is_not_a_target(client, moderator, pair):
    first, _again = pair
    waiting = PendingReviewPostingFactory(
        company=first.company, title=f"{first.title} (m/w/d)", **berlin()
    )
    client.force_login(moderator)
    page = client.get(reverse("moderation:posting", args=[first.pk])).content.decode()
    assert f'id="likely-duplicate-{waiting.pk}"' in page
    assert f'name="other" value="{waiting.pk}"' not in page
    assert "candidates cannot be sent there" in page


def test_a_listing_never_public_is_sent_back_instead_of_closed(client, moderator, pair):
    first, _again = pair  # both open: the newer one is offered first
    waiting = PendingReviewPostingFactory(
        company=first.company, title=f"{first.title} (m/w/d)", **berlin()
    )
    with pytest.raises(reporting_services.ModerationError, match="never public"):
        reporting_services.posting_mark_duplicate(
            posting=waiting, other=first, by=moderator, note="Same job."
        )
    client.force_login(moderator)
    page = client.get(reverse("moderation:posting", args=[waiting.pk])).content.decode()
    assert "Send this listing back: it repeats this one" in page
    note = page.split('name="action" value="reject">', 1)[1]
    note = note.split('name="note" value="', 1)[1].split('"', 1)[0]
    client.post(
        reverse("moderation:posting_act", args=[waiting.pk]), {"action": "reject", "note": note}
    )
    waiting.refresh_from_db()
    assert waiting.status == Posting.Status.DRAFT and waiting.duplicate_of is None
    assert waiting.closed_reason.startswith("This job is already listed here: http://testserver/")
    assert any(other.get_absolute_url() in waiting.closed_reason for other in pair)


def test_the_one_click_mark_closes_the_listing_as_a_duplicate(client, moderator, pair):
    first, again = pair
    client.force_login(moderator)
    page = client.get(reverse("moderation:posting", args=[again.pk])).content.decode()
    note = page.split('name="note" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        reverse("moderation:posting_duplicate", args=[again.pk]),
        {"other": str(first.pk), "note": note},
    )
    assert response.status_code == 302
    again.refresh_from_db()
    assert again.status == Posting.Status.CLOSED and again.duplicate_of == first
    action = ModerationAction.objects.get(posting=again)
    assert action.kind == ModerationAction.Kind.MARK_DUPLICATE and action.actor == moderator
    assert action.note.startswith(f"Likely duplicate of listing {first.pk}")


def test_anonymous_visitors_are_sent_to_log_in(client, pair):
    first, again = pair
    for response in (
        client.get(reverse("moderation:posting", args=[again.pk])),
        client.post(
            reverse("moderation:posting_duplicate", args=[again.pk]),
            {"other": str(first.pk), "note": "Same job."},
        ),
    ):
        assert response.status_code == 302
        assert reverse("accounts:login") in response["Location"]
    assert Posting.objects.get(pk=again.pk).duplicate_of is None


def test_non_moderators_are_refused(client, pair):
    first, again = pair
    client.force_login(EmployerFactory(company=again.company).user)
    assert client.get(reverse("moderation:posting", args=[again.pk])).status_code == 403
    response = client.post(
        reverse("moderation:posting_duplicate", args=[again.pk]),
        {"other": str(first.pk), "note": "Same job."},
    )
    assert response.status_code == 403
    assert Posting.objects.get(pk=again.pk).duplicate_of is None


def test_a_listing_marked_a_duplicate_leaves_the_public_list(client, moderator):
    first = PublishedPostingFactory(title="Senior Data Analyst", **berlin())
    again = PublishedPostingFactory(
        company=first.company, title="Data Analyst, Senior", city="Munich", country="DE"
    )
    listed = client.get(reverse("postings:list")).content.decode()
    assert again.get_absolute_url() in listed and first.get_absolute_url() in listed

    reporting_services.posting_mark_duplicate(
        posting=again, other=first, by=moderator, note="Same job."
    )
    listed = client.get(reverse("postings:list")).content.decode()
    assert again.get_absolute_url() not in listed and first.get_absolute_url() in listed
