"""Re-checking listings in this process: verdicts, the scheduler, imports, and what pages say.

The same paths run in a real worker process in ``test_recheck_worker.py``.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from postings import freshness, sources, tasks
from postings.factories import (
    CompanyFactory,
    PastDeadlinePostingFactory,
    PublishedPostingFactory,
)
from postings.imports import ImportRefused, import_url
from postings.models import Posting
from reporting.models import Report
from tests.source_server import job_posting

pytestmark = pytest.mark.usefixtures("quick_sources")


@pytest.fixture
def imported(db, source_server):
    """A listing imported from a source page, checked an hour and a half ago."""
    source_server.json_ld_page("/jobs/1", job_posting(title="Backend Developer"))
    posting = import_url(source_server.url("/jobs/1")).posting
    long_ago = timezone.now() - timedelta(minutes=90)
    Posting.objects.filter(pk=posting.pk).update(
        last_checked_at=long_ago, check_attempted_at=long_ago, updated_at=posting.posted_at
    )
    posting.refresh_from_db()
    return posting


def salary(low: int, high: int) -> dict:
    return {"currency": "EUR", "value": {"minValue": low, "maxValue": high, "unitText": "YEAR"}}


def place(city: str, country: str) -> dict:
    return {"address": {"addressLocality": city, "addressCountry": country}}


def check(posting: Posting) -> tuple[str, Posting]:
    verdict = freshness.check_listing(posting.pk)
    posting.refresh_from_db()
    return verdict, posting


# --- Verdicts -------------------------------------------------------------------------------


def test_a_source_that_only_moved_its_ads_is_unchanged_and_updated_stays(imported):
    updated_before = imported.updated_at
    verdict, posting = check(imported)
    assert verdict == freshness.UNCHANGED
    assert posting.updated_at == updated_before
    assert posting.last_checked_at > timezone.now() - timedelta(seconds=10)
    assert posting.check_note == "Unchanged: the job at the source is the same"


def test_a_source_whose_job_changed_refreshes_the_listing_and_moves_updated(
    imported, source_server
):
    source_server.json_ld_page(
        "/jobs/1",
        job_posting(
            title="Senior Backend Developer",
            description="<p>Now with <em>Kubernetes</em>.</p>",
            baseSalary=salary(70000, 90000),
            jobLocation=place("Hamburg", "DE"),
        ),
    )
    verdict, posting = check(imported)
    assert verdict == freshness.UPDATED
    assert posting.title == "Senior Backend Developer"
    assert "<em>Kubernetes</em>" in posting.description_html
    assert (posting.city, posting.salary_min, posting.salary_max) == ("Hamburg", 70000, 90000)
    assert posting.updated_at == posting.last_checked_at
    assert posting.check_note.startswith("Updated: changed title, description, city, salary_min")
    # A second look at the same job is not another update.
    assert check(posting)[0] == freshness.UNCHANGED


def test_a_source_change_we_cannot_use_leaves_the_listing_as_it_was(imported, source_server):
    source_server.json_ld_page(
        "/jobs/1",
        job_posting(
            jobLocation={"address": {"addressLocality": "Belgrade", "addressCountry": "US"}}
        ),
    )
    verdict, posting = check(imported)
    assert verdict == freshness.UNCHANGED
    assert (posting.city, str(posting.country)) == ("Berlin", "DE")
    assert "Belgrade is a city in Serbia" in posting.check_note


@pytest.mark.parametrize("code", [404, 410])
def test_a_source_that_is_gone_closes_the_listing(imported, source_server, code):
    source_server.status("/jobs/1", code)
    verdict, posting = check(imported)
    assert verdict == freshness.CLOSED
    assert posting.status == Posting.Status.CLOSED
    assert posting.closed_reason == "The source no longer lists this job."
    assert posting.state == "closed" and posting.closed_at is not None
    assert f"the source answered {code}" in posting.check_note


def test_a_source_redirecting_to_a_page_that_is_not_a_job_closes_the_listing(
    imported, source_server
):
    source_server.page("/careers", "<html><main><h1>Our careers</h1></main></html>")
    source_server.redirect("/jobs/1", "/careers")
    verdict, posting = check(imported)
    assert verdict == freshness.CLOSED
    assert "redirects to a page that is not a job" in posting.check_note


def test_a_source_redirecting_to_the_same_job_elsewhere_is_still_open(imported, source_server):
    source_server.json_ld_page("/jobs/1-backend", job_posting(title="Backend Developer"))
    source_server.redirect("/jobs/1", "/jobs/1-backend")
    assert check(imported)[0] == freshness.UNCHANGED


@pytest.mark.parametrize(
    "other",
    [
        {"title": "Sales Manager", "description": "<p>Sell our shop's services.</p>"},
        {"hiringOrganization": {"@type": "Organization", "name": "Another Shop AG"}},
    ],
)
def test_a_source_redirecting_to_another_job_closes_the_listing_and_keeps_its_words(
    imported, source_server, other
):
    source_server.json_ld_page("/jobs/2", job_posting(**other))
    source_server.redirect("/jobs/1", "/jobs/2", code=302)
    description, updated_at = imported.description_html, imported.updated_at
    verdict, posting = check(imported)
    assert verdict == freshness.CLOSED
    assert posting.status == Posting.Status.CLOSED
    assert posting.closed_reason == "The source now points to another job."
    assert "the source now points to another job" in posting.check_note
    assert posting.title == "Backend Developer"
    assert posting.description_html == description
    assert posting.updated_at == updated_at


def test_a_source_redirecting_to_a_page_we_list_as_another_listing_closes_it(
    imported, source_server
):
    source_server.json_ld_page("/jobs/2", job_posting(title="Backend Developer"))
    other = import_url(source_server.url("/jobs/2")).posting
    source_server.redirect("/jobs/1", "/jobs/2", code=302)
    verdict, posting = check(imported)
    assert verdict == freshness.CLOSED
    assert f"listed here as #{other.pk}" in posting.check_note


def test_a_source_redirecting_to_the_same_job_with_new_words_is_updated(imported, source_server):
    moved = job_posting(title="Backend Developer (m/w/d)", description="<p>Now remote too.</p>")
    source_server.json_ld_page("/jobs/1-backend", moved)
    source_server.redirect("/jobs/1", "/jobs/1-backend")
    verdict, posting = check(imported)
    assert verdict == freshness.UPDATED
    assert posting.status == Posting.Status.PUBLISHED
    assert "Now remote too." in posting.description_html


def test_a_source_page_that_lost_its_job_posting_closes_the_listing(imported, source_server):
    source_server.page("/jobs/1", "<html><main><p>This position has been filled.</p></main></html>")
    verdict, posting = check(imported)
    assert verdict == freshness.CLOSED
    assert "no longer describes a job" in posting.check_note


def test_a_source_answering_304_is_unchanged(imported, source_server):
    source_server.json_ld_page("/jobs/1", job_posting(title="Backend Developer"), etag='"v7"')
    assert check(imported)[0] == freshness.UNCHANGED  # learns the ETag
    verdict, posting = check(imported)
    assert verdict == freshness.UNCHANGED
    assert posting.check_note == "Unchanged: the source answered 304 Not Modified"
    assert source_server.requests("/jobs/1")[-1].headers["If-None-Match"] == '"v7"'


def test_a_source_extending_its_deadline_updates_ours(imported, source_server):
    source_server.json_ld_page("/jobs/1", job_posting(validThrough="2100-01-31"))
    verdict, posting = check(imported)
    assert verdict == freshness.UPDATED
    assert posting.deadline.year == 2100


def test_a_source_whose_deadline_passed_expires_the_listing(imported, source_server):
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    source_server.json_ld_page("/jobs/1", job_posting(validThrough=yesterday))
    verdict, posting = check(imported)
    assert verdict == freshness.UPDATED
    assert posting.status == Posting.Status.EXPIRED and posting.state == "expired"


@pytest.mark.parametrize("trouble", ["500", "503", "hang", "refused"])
def test_a_source_that_cannot_be_read_is_no_verdict_and_is_retried_later(
    imported, source_server, trouble
):
    if trouble == "hang":
        source_server.hang("/jobs/1", 10)
    elif trouble == "refused":
        Posting.objects.filter(pk=imported.pk).update(source_url="http://127.0.0.1:9/jobs/1")
    else:
        source_server.status("/jobs/1", int(trouble))
    before = imported.last_checked_at
    verdict, posting = check(imported)
    assert verdict == freshness.FAILED
    assert posting.status == Posting.Status.PUBLISHED
    assert posting.last_checked_at == before  # "last checked" stays honest
    assert posting.check_failures == 1
    assert posting.next_check_at > timezone.now()  # backing off
    assert posting.check_note.startswith("Failed (1 of 5 in a row)")


def test_failing_again_and_again_asks_a_moderator_once_and_never_closes(
    imported, source_server, settings, django_capture_on_commit_callbacks
):
    settings.RECHECK_MAX_FAILURES = 3
    source_server.status("/jobs/1", 503)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            check(imported)
    imported.refresh_from_db()
    assert imported.check_failures == 5
    assert imported.status == Posting.Status.PUBLISHED
    reports = Report.objects.filter(posting=imported, reason=Report.Reason.SOURCE_UNREACHABLE)
    assert reports.count() == 1
    assert "could not read" in reports.get().details and "503" in reports.get().details
    # A verdict ends the streak.
    source_server.json_ld_page("/jobs/1", job_posting(title="Backend Developer"))
    assert check(imported)[0] == freshness.UNCHANGED
    imported.refresh_from_db()
    assert imported.check_failures == 0


def test_a_host_at_its_limit_defers_the_check_without_counting_a_failure(
    imported, source_server, settings
):
    settings.SOURCE_HOST_PER_MINUTE = 1
    sources.fetch(source_server.url("/jobs/1"))  # uses up the minute
    verdict, posting = check(imported)
    assert verdict == freshness.DEFERRED
    assert posting.check_failures == 0
    assert timezone.now() < posting.next_check_at <= timezone.now() + timedelta(seconds=61)


def test_a_listing_without_a_source_is_confirmed_open(db):
    posting = PublishedPostingFactory(last_checked_at=timezone.now() - timedelta(hours=2))
    verdict, posting = check(posting)
    assert verdict == freshness.OPEN
    assert posting.last_checked_at > timezone.now() - timedelta(seconds=10)


def test_a_listing_past_its_deadline_expires_at_its_check(db):
    posting = PastDeadlinePostingFactory()
    verdict, posting = check(posting)
    assert verdict == freshness.EXPIRED
    assert posting.status == Posting.Status.EXPIRED
    assert posting.closed_at == posting.deadline
    assert posting.closed_reason == "The deadline passed."


def test_a_routine_check_leaves_the_kept_pages_of_a_listing_and_a_closing_one_takes_them(
    imported, source_server
):
    from postings import changes

    mark = changes.mark_key(changes.LISTING, imported.pk)
    token = changes.current([imported.pk])[mark]
    modified = imported.modified_at
    assert check(imported)[0] == freshness.UNCHANGED
    assert changes.current([imported.pk])[mark] == token  # only bookkeeping moved
    assert Posting.objects.get(pk=imported.pk).modified_at == modified
    source_server.status("/jobs/1", 410)
    assert check(imported)[0] == freshness.CLOSED
    assert changes.current([imported.pk])[mark] != token


@pytest.mark.parametrize("status", ["draft", "pending_review", "closed", "expired", "removed"])
def test_only_open_listings_are_checked(db, status):
    posting = PublishedPostingFactory(status=status, closed_at=timezone.now())
    assert check(posting)[0] == freshness.SKIPPED


def test_a_batch_run_twice_checks_each_listing_once(imported, source_server):
    other = PublishedPostingFactory(last_checked_at=timezone.now() - timedelta(hours=2))
    queued_at = timezone.now()
    first = freshness.check_batch([imported.pk, other.pk], queued_at=queued_at)
    second = freshness.check_batch([imported.pk, other.pk], queued_at=queued_at)
    assert first == {freshness.UNCHANGED: 1, freshness.OPEN: 1}
    assert second == {freshness.SKIPPED: 2}
    assert len(source_server.requests("/jobs/1")) == 2  # the import, then one check


# --- The scheduler --------------------------------------------------------------------------


def test_the_scheduler_expires_past_deadline_listings_and_queues_the_due_ones_oldest_first(
    db, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.RECHECK_BATCH_SIZE = 2
    now = timezone.now()
    never = PublishedPostingFactory(last_checked_at=None)
    oldest = PublishedPostingFactory(last_checked_at=now - timedelta(hours=5))
    old = PublishedPostingFactory(last_checked_at=now - timedelta(hours=2))
    fresh = PublishedPostingFactory(last_checked_at=now - timedelta(minutes=5))
    late = PastDeadlinePostingFactory()
    closed = PublishedPostingFactory(status="closed", closed_at=now, last_checked_at=None)
    sent = []
    monkeypatch.setattr(freshness, "_send_batch", lambda ids, at: sent.append(ids))
    monkeypatch.setattr(freshness, "queue_length", lambda: 0)

    with django_capture_on_commit_callbacks(execute=True):
        assert freshness.schedule_rechecks(now=now) == 3
    late.refresh_from_db()
    assert late.status == Posting.Status.EXPIRED
    assert [pk for batch in sent for pk in batch] == [never.pk, oldest.pk, old.pk]
    assert [len(batch) for batch in sent] == [2, 1]
    assert freshness.last_beat_tick() == now
    for posting in (never, oldest, old):
        posting.refresh_from_db()
        assert posting.next_check_at > now  # marked queued
    queued = {pk for batch in sent for pk in batch}
    assert fresh.pk not in queued and closed.pk not in queued
    # The next tick does not queue them again while they wait.
    sent.clear()
    assert freshness.schedule_rechecks(now=now + timedelta(minutes=1)) == 0
    # A lost batch gives its listings back once it has been queued too long.
    assert freshness.schedule_rechecks(now=now + freshness.QUEUED_FOR + timedelta(minutes=1)) == 3


def test_the_scheduler_queues_nothing_while_the_queue_is_full(db, settings, monkeypatch):
    settings.RECHECK_MAX_QUEUE = 10
    PublishedPostingFactory(last_checked_at=None)
    monkeypatch.setattr(freshness, "queue_length", lambda: 10)
    assert freshness.schedule_rechecks() == 0
    monkeypatch.setattr(freshness, "queue_length", lambda: 9)
    monkeypatch.setattr(freshness, "_send_batch", lambda ids, at: None)
    assert freshness.schedule_rechecks() == 1


def test_the_scheduler_queues_at_most_its_limit_per_tick(db, settings, monkeypatch):
    settings.RECHECK_MAX_PER_TICK = 3
    PublishedPostingFactory.create_batch(5, last_checked_at=None)
    monkeypatch.setattr(freshness, "_send_batch", lambda ids, at: None)
    assert freshness.schedule_rechecks() == 3
    assert freshness.schedule_rechecks() == 2


def test_the_freshness_lag_is_the_age_of_the_least_recently_checked_open_listing(db):
    now = timezone.now()
    assert freshness.freshness_lag(now) is None
    PublishedPostingFactory(last_checked_at=now - timedelta(minutes=30))
    PublishedPostingFactory(last_checked_at=now - timedelta(minutes=70), status="closed")
    assert freshness.freshness_lag(now) == timedelta(minutes=30)
    never = PublishedPostingFactory(last_checked_at=None)
    assert freshness.freshness_lag(now) == now - never.posted_at


# --- A "closed" report ----------------------------------------------------------------------


def test_a_closed_report_queues_a_re_check_once_per_cooldown(
    db, client, monkeypatch, django_capture_on_commit_callbacks
):
    from postings import tasks

    posting = PublishedPostingFactory()
    queued = []
    monkeypatch.setattr(tasks.recheck_listing, "delay", lambda *args: queued.append(args))
    report_url = f"/jobs/{posting.pk}/report/"
    for address in ("203.0.113.1", "203.0.113.2"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(report_url, {"reason": "closed"}, REMOTE_ADDR=address)
        assert response.status_code in (200, 302)
    assert Report.objects.filter(posting=posting, reason="closed").count() == 2
    assert [args[0] for args in queued] == [posting.pk]  # the second report is in the cooldown


def test_other_reports_do_not_re_check(db, client, monkeypatch, django_capture_on_commit_callbacks):
    from postings import tasks

    posting = PublishedPostingFactory()
    queued = []
    monkeypatch.setattr(tasks.recheck_listing, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/jobs/{posting.pk}/report/", {"reason": "inaccurate"})
    assert queued == []


def test_visitors_cannot_file_the_automatic_report_reason(db, client):
    posting = PublishedPostingFactory()
    response = client.post(f"/jobs/{posting.pk}/report/", {"reason": "source_unreachable"})
    assert not Report.objects.filter(posting=posting).exists()
    assert response.status_code in (200, 400)


# --- Imports --------------------------------------------------------------------------------


def test_an_import_creates_an_open_listing_from_the_job_posting(db, source_server):
    url = source_server.json_ld_page("/jobs/9", job_posting(title="Data Analyst"), etag='"a"')
    result = import_url(url + "?utm_source=feed")
    posting = result.posting
    assert result.created
    assert posting.source_url == url and posting.apply_url == url
    assert posting.status == Posting.Status.PUBLISHED and posting.is_open
    assert (posting.title, posting.company.name, posting.practice_area) == (
        "Data Analyst", "Example GmbH", "data",
    )  # fmt: skip
    assert posting.posted_at.date().isoformat() == "2025-01-06"
    assert posting.updated_at == posting.posted_at
    assert posting.last_checked_at is not None and posting.source_etag == '"a"'


def test_importing_the_same_page_again_updates_instead_of_duplicating(db, source_server):
    url = source_server.json_ld_page("/jobs/9", job_posting(title="Data Analyst"))
    first = import_url(url)
    source_server.json_ld_page("/jobs/9", job_posting(title="Data Analyst II"))
    again = import_url(url.replace("127.0.0.1", "127.0.0.1") + "#top")
    assert not again.created and again.posting.pk == first.posting.pk
    assert again.verdict == freshness.UPDATED
    assert Posting.objects.count() == 1
    assert Posting.objects.get().title == "Data Analyst II"


def test_an_imported_company_is_reused_by_name(db, source_server):
    company = CompanyFactory(name="Example GmbH")
    url = source_server.json_ld_page("/jobs/9", job_posting())
    assert import_url(url).posting.company == company


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda s: s.status("/jobs/9", 404), "the page answered 404"),
        (lambda s: s.page("/jobs/9", "<p>hello</p>"), "no schema.org JobPosting"),
        (lambda s: s.json_ld_page("/jobs/9", job_posting(validThrough="2020-01-01")), "2020-01-01"),
        (
            lambda s: s.json_ld_page("/jobs/9", job_posting(jobLocation=place("Belgrade", "US"))),
            "Belgrade is a city in Serbia",
        ),
        (lambda s: s.json_ld_page("/jobs/9", job_posting(jobLocation=None)), "no country"),
    ],
)
def test_a_page_that_cannot_be_a_listing_is_refused_with_a_reason(
    db, source_server, setup, message
):
    setup(source_server)
    with pytest.raises(ImportRefused, match=message):
        import_url(source_server.url("/jobs/9"))
    assert not Posting.objects.exists()


def test_the_import_command_reads_urls_and_files_and_reports_each(db, source_server, tmp_path):
    good = source_server.json_ld_page("/jobs/1", job_posting(title="Baker"))
    source_server.status("/jobs/2", 410)
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# sources\n{good}\n\n{source_server.url('/jobs/2')}\n")
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 of 2 addresses were not imported"):
        call_command("import_jobs", file=str(listing), stdout=out, stderr=err)
    assert "created: #" in out.getvalue() and "Baker" in out.getvalue()
    assert "the page answered 410" in err.getvalue()
    out = StringIO()
    call_command("import_jobs", good, stdout=out)
    assert "already listed (unchanged)" in out.getvalue()
    assert Posting.objects.count() == 1


def test_a_source_page_that_redirects_inside_is_not_imported(db, source_server, internal_server):
    url = source_server.redirect("/jobs/17", internal_server.url("/internal/admin"), code=302)
    with pytest.raises(ImportRefused, match=f"refused 127.0.0.1:{internal_server.port}: port"):
        import_url(url)
    assert not Posting.objects.exists()
    assert internal_server.requests() == []


def test_the_import_command_says_why_an_inside_address_is_refused(db):
    err = StringIO()
    with pytest.raises(CommandError, match="1 of 1 addresses were not imported"):
        call_command("import_jobs", "http://169.254.169.254/latest/", stdout=StringIO(), stderr=err)
    assert err.getvalue() == (
        "not imported: http://169.254.169.254/latest/: "
        "refused 169.254.169.254:80: 169.254.169.254 is a link-local address\n"
    )


def test_the_import_command_refuses_an_address_httpx_cannot_fetch(db):
    err = StringIO()
    with pytest.raises(CommandError, match="1 of 1 addresses were not imported"):
        call_command("import_jobs", "http://0177.0.0.1/jobs/1", stdout=StringIO(), stderr=err)
    assert err.getvalue().startswith(
        "not imported: http://0177.0.0.1/jobs/1: Not a web address: 'http://0177.0.0.1/jobs/1'"
    )


def test_the_import_task_does_not_retry_a_refused_address(db):
    result = tasks.import_source.apply(args=["http://10.0.0.7/jobs/1"]).get()
    assert result == "not imported: refused 10.0.0.7:80: 10.0.0.7 is a private address"


def test_a_re_check_refused_inside_fails_and_reaches_a_moderator_like_any_unreachable_source(
    imported, source_server, internal_server, settings, django_capture_on_commit_callbacks
):
    settings.RECHECK_MAX_FAILURES = 2
    source_server.redirect("/jobs/1", internal_server.url("/internal/admin"), code=302)
    with django_capture_on_commit_callbacks(execute=True):
        verdicts = [check(imported)[0] for _ in range(2)]
    imported.refresh_from_db()
    assert verdicts == [freshness.FAILED, freshness.FAILED]
    assert imported.title == "Backend Developer"
    assert imported.status == Posting.Status.PUBLISHED
    assert "refused 127.0.0.1" in imported.check_note
    report = Report.objects.get(posting=imported, reason=Report.Reason.SOURCE_UNREACHABLE)
    assert "refused 127.0.0.1" in report.details
    assert internal_server.requests() == []


def test_the_import_command_explains_missing_input(db, tmp_path):
    with pytest.raises(CommandError, match="at least one URL"):
        call_command("import_jobs")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_jobs", file=str(tmp_path / "missing.txt"))


# --- What the pages say ---------------------------------------------------------------------


def test_the_listing_page_says_when_it_was_last_checked_and_closed_when_the_source_went(
    client, imported, source_server
):
    source_server.status("/jobs/1", 404)
    check(imported)
    html = client.get(imported.get_absolute_url()).content.decode()
    assert "The source no longer lists this job." in html
    assert "Last checked" in html
