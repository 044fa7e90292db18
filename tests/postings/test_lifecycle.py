"""The posting lifecycle: services (the rules) and the employer's dashboard views (who may)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from postings import services
from postings.factories import (
    ClosedPostingFactory,
    CompanyFactory,
    DraftPostingFactory,
    ExpiredPostingFactory,
    PastDeadlinePostingFactory,
    PublishedPostingFactory,
    VerifiedCompanyFactory,
)
from postings.models import MODERATOR_CLOSED, Membership, Posting

pytestmark = pytest.mark.django_db

User = get_user_model()


def make_member(company, email="owner@example.com", role=Membership.Role.OWNER, verified=True):
    user = User.objects.create_user(email=email, password="correct horse battery staple")
    if verified:
        user.email_verified_at = timezone.now()
        user.save()
    Membership.objects.create(company=company, user=user, role=role)
    return user


@pytest.fixture
def company():
    return VerifiedCompanyFactory()


@pytest.fixture
def owner(company):
    return make_member(company)


@pytest.fixture
def employer_client(client, owner):
    client.force_login(owner)
    return client


def in_days(days: int):
    return timezone.now() + timedelta(days=days)


# --- Services: the rules ----------------------------------------------------------------------


def test_publishing_sets_posted_at_once_and_close_and_reopen_never_move_it(company, owner):
    posting = DraftPostingFactory(company=company, deadline=in_days(10))
    posting = services.posting_publish(posting=posting, by=owner)
    first = posting.posted_at
    assert posting.status == Posting.Status.PUBLISHED and first is not None

    services.posting_close(posting=posting, by=owner, reason="filled")
    posting = services.posting_reopen(posting=posting, by=owner)
    posting.refresh_from_db()
    assert posting.status == Posting.Status.PUBLISHED
    assert posting.posted_at == first


def test_an_unverified_company_publishes_into_the_review_queue(owner):
    newcomer = CompanyFactory(is_verified=False)
    posting = DraftPostingFactory(company=newcomer, deadline=in_days(10))
    posting = services.posting_publish(posting=posting, by=owner)
    assert posting.status == Posting.Status.PENDING_REVIEW
    assert posting.posted_at is None
    assert not Posting.objects.public().filter(pk=posting.pk).exists()

    approved = services.posting_approve(posting=posting, by=owner)
    assert approved.status == Posting.Status.PUBLISHED and approved.posted_at is not None


def test_an_unverified_email_cannot_publish(company):
    user = make_member(company, email="new@example.com", verified=False)
    posting = DraftPostingFactory(company=company, deadline=in_days(10))
    with pytest.raises(services.PostingActionError, match="Confirm your email"):
        services.posting_publish(posting=posting, by=user)


def test_editing_what_candidates_see_moves_updated_at_and_nothing_else_does(company, owner):
    posting = PublishedPostingFactory(company=company)
    posted, updated = posting.posted_at, posting.updated_at

    posting.view_count = 99  # not content
    services.posting_save(posting=posting, by=owner)
    posting.refresh_from_db()
    assert posting.updated_at == updated

    posting.title = posting.title + " (Remote-friendly)"
    services.posting_save(posting=posting, by=owner)
    posting.refresh_from_db()
    assert posting.updated_at > updated
    assert posting.posted_at == posted


def test_editing_a_draft_does_not_invent_an_update_time(company, owner):
    posting = DraftPostingFactory(company=company)
    posting.title = "Changed"
    services.posting_save(posting=posting, by=owner)
    posting.refresh_from_db()
    assert posting.updated_at is None and posting.posted_at is None


def test_a_repost_of_an_open_role_is_caught(company, owner):
    open_one = PublishedPostingFactory(company=company, title="Senior Backend Engineer",
                                       city="Berlin", region="", country="DE")  # fmt: skip
    found = services.find_repost(
        company=company, title="  senior backend-engineer ", city="berlin", country="DE"
    )
    assert found == open_one
    assert (
        services.find_repost(
            company=company, title="Senior Backend Engineer", city="Munich", country="DE"
        )
        is None
    )
    assert (
        services.find_repost(
            company=CompanyFactory(), title="Senior Backend Engineer", city="Berlin", country="DE"
        )
        is None
    )

    draft = services.posting_duplicate(posting=open_one, by=owner)
    with pytest.raises(services.PostingActionError, match="already open"):
        services.posting_publish(posting=draft, by=owner)


def test_a_closed_role_is_not_a_repost(company):
    ClosedPostingFactory(company=company, title="Designer", city="Lisbon", region="", country="PT")
    assert (
        services.find_repost(company=company, title="Designer", city="Lisbon", country="PT") is None
    )


def test_reopening_past_the_deadline_needs_a_new_deadline(company, owner):
    posting = ExpiredPostingFactory(company=company)
    with pytest.raises(services.PostingActionError, match="choose a new deadline"):
        services.posting_reopen(posting=posting, by=owner)
    reopened = services.posting_reopen(posting=posting, by=owner, deadline=in_days(20))
    assert reopened.is_open and reopened.closed_reason == ""


def test_extending_the_deadline_brings_back_a_listing_past_its_deadline(company, owner):
    posting = PastDeadlinePostingFactory(company=company)
    assert not posting.is_open
    extended = services.posting_extend_deadline(posting=posting, by=owner, deadline=in_days(14))
    assert extended.is_open
    with pytest.raises(services.PostingActionError, match="later than the current"):
        services.posting_extend_deadline(posting=extended, by=owner, deadline=in_days(3))


def test_closing_says_why_and_refuses_an_unknown_reason(company, owner):
    posting = PublishedPostingFactory(company=company)
    with pytest.raises(services.PostingActionError):
        services.posting_close(posting=posting, by=owner, reason="bored")
    closed = services.posting_close(posting=posting, by=owner, reason="withdrawn")
    assert closed.state == "closed" and "withdrew" in closed.closed_reason


def test_duplicating_makes_a_fresh_draft_without_history(company, owner):
    posting = PublishedPostingFactory(company=company, view_count=40, applicant_count=3)
    copy = services.posting_duplicate(posting=posting, by=owner)
    assert copy.pk != posting.pk and copy.status == Posting.Status.DRAFT
    assert (copy.title, copy.city, copy.description) == (
        posting.title, posting.city, posting.description,
    )  # fmt: skip
    assert copy.view_count == 0 and copy.applicant_count == 0
    assert copy.posted_at is None and copy.deadline is None and copy.created_by == owner


# --- Views: who may use them --------------------------------------------------------------------

DASHBOARD = reverse("employer:dashboard")


def test_anonymous_visitors_are_sent_to_log_in(client, company):
    posting = DraftPostingFactory(company=company)
    for url in (DASHBOARD, reverse("employer:posting_create"),
                reverse("employer:posting_edit", args=[posting.pk])):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = client.post(reverse("employer:posting_publish", args=[posting.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    posting.refresh_from_db()
    assert posting.status == Posting.Status.DRAFT


def test_a_user_without_a_company_is_sent_to_create_one(client):
    client.force_login(User.objects.create_user(email="c@example.com", password="x" * 20))
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:company_create")


def test_a_member_of_another_company_gets_404_for_every_posting_view(client, company):
    posting = PublishedPostingFactory(company=company)
    other = CompanyFactory()
    client.force_login(make_member(other, email="other@example.com"))
    for name in ("posting_edit", "posting_preview"):
        assert client.get(reverse(f"employer:{name}", args=[posting.pk])).status_code == 404
    for name in ("posting_publish", "posting_close", "posting_reopen", "posting_extend",
                 "posting_duplicate"):  # fmt: skip
        data = {"reason": "filled", "deadline": in_days(40).date().isoformat()}
        assert client.post(reverse(f"employer:{name}", args=[posting.pk]), data).status_code == 404
    posting.refresh_from_db()
    assert posting.is_open
    assert posting.title not in client.get(DASHBOARD).content.decode()


def test_a_plain_member_and_a_staff_user_outside_the_company(client, company, owner):
    posting = DraftPostingFactory(company=company)
    member = make_member(company, email="member@example.com", role=Membership.Role.MEMBER)
    client.force_login(member)
    assert client.get(reverse("employer:posting_edit", args=[posting.pk])).status_code == 200
    staff = User.objects.create_user(email="staff@example.com", password="x" * 20, is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("employer:posting_edit", args=[posting.pk])).status_code == 302


def test_the_dashboard_lists_every_fact_of_the_companys_postings(employer_client, company):
    PublishedPostingFactory(company=company, title="Open Role", view_count=12)
    DraftPostingFactory(company=company, title="Draft Role")
    PastDeadlinePostingFactory(company=company, title="Lapsed Role")
    response = employer_client.get(DASHBOARD)
    html = response.content.decode()
    assert response.status_code == 200
    assert "postings/dashboard.html" in [t.name for t in response.templates]
    for text in ("Open Role", "Draft Role", "Lapsed Role", "Views", "Applicants", "Posted",
                 "Updated", "Last checked", "Deadline", "Publish", "Close…", "Reopen…",
                 "Extend deadline…", "Duplicate", ">12<"):  # fmt: skip
        assert text in html, text
    lapsed_row = html[html.index("Lapsed Role") :].split("</tr>")[0]
    assert "Expired" in lapsed_row and "Open<" not in lapsed_row


GOOD_FORM = {
    "title": "Platform Engineer", "seniority": "senior", "employment_type": "full_time",
    "practice_area": "engineering", "workplace": "hybrid", "city": "Berlin", "region": "",
    "country": "DE", "salary_min": "70000", "salary_max": "90000", "salary_currency": "EUR",
    "salary_period": "year", "apply_by": "board", "apply_url": "", "deadline": "",
    "description": "## About\n\nYou keep our **platform** fast.",
}  # fmt: skip


def test_creating_a_posting_saves_a_draft_for_the_company(employer_client, company, owner):
    response = employer_client.post(reverse("employer:posting_create"), GOOD_FORM)
    assert response.status_code == 302 and response["Location"] == DASHBOARD
    posting = Posting.objects.get(title="Platform Engineer")
    assert posting.company == company and posting.status == Posting.Status.DRAFT
    assert posting.applies_on_board and posting.created_by == owner
    assert "<strong>platform</strong>" in posting.description_html


def test_control_characters_typed_into_a_posting_are_dropped(employer_client):
    data = {**GOOD_FORM, "city": "Berlin\x07", "region": "Land\x1b[31m", "title": "Welder\x01"}
    response = employer_client.post(reverse("employer:posting_create"), data)
    assert response.status_code == 302
    posting = Posting.objects.get(title="Welder")
    assert (posting.city, posting.region) == ("Berlin", "Land[31m")


def test_preview_renders_the_description_without_saving(employer_client):
    data = {**GOOD_FORM, "description": "Hello <script>alert(1)</script> **world**",
            "preview": "1"}  # fmt: skip
    response = employer_client.post(reverse("employer:posting_create"), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<strong>world</strong>" in html and "<script>alert(1)" not in html
    assert not Posting.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"deadline": "2020-01-01"}, "deadline", "must be in the future"),
        ({"salary_min": "90000", "salary_max": "70000"}, "salary_max", "at least its start"),
        ({"salary_currency": ""}, "salary_currency", "Which currency"),
        ({"salary_period": ""}, "salary_period", "per hour, month or year"),
        ({"country": "ZZ"}, "country", "Select a valid choice"),
        ({"city": "", "workplace": "onsite"}, "city", "needs the city"),
        ({"city": "Belgrade", "country": "US"}, "country", "Belgrade is a city in Serbia"),
        ({"apply_by": "link", "apply_url": ""}, "apply_url", "Give the https:// link"),
        ({"apply_by": "link", "apply_url": "http://plain.example/jobs"}, "apply_url", "https://"),
        ({"apply_by": "link", "apply_url": "javascript:alert(1)"}, "apply_url", "valid URL"),
        ({"salary_min": "1e999"}, "salary_min", "whole number"),
        ({"title": ""}, "title", "Fill in the title."),
        ({"description": "x" * 20_001}, "description", "at most 20000"),
        ({"deadline": "not a date"}, "deadline", "valid date"),
    ],
)
def test_the_posting_form_explains_each_mistake_and_keeps_what_was_typed(
    employer_client, changes, field, message
):
    data = {**GOOD_FORM, **changes}
    response = employer_client.post(reverse("employer:posting_create"), data)
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors, form.errors
    assert message in " ".join(form.errors[field])
    assert form["description"].value() == data["description"]
    assert not Posting.objects.exists()


def test_creating_the_same_open_role_again_offers_to_extend_it(employer_client, company):
    PublishedPostingFactory(company=company, title="Platform Engineer", city="Berlin",
                            region="", country="DE")  # fmt: skip
    response = employer_client.post(reverse("employer:posting_create"), GOOD_FORM)
    assert response.status_code == 200
    assert "You already have this role open" in response.content.decode()
    assert "Extend the deadline" in response.content.decode()
    assert Posting.objects.filter(title="Platform Engineer").count() == 1


def test_a_duplicated_draft_can_be_edited_and_is_refused_only_when_published(
    employer_client, company
):
    PublishedPostingFactory(company=company, title="Platform Engineer", city="Berlin",
                            region="", country="DE")  # fmt: skip
    draft = DraftPostingFactory(company=company, title="Platform Engineer", city="Berlin",
                                region="", country="DE", deadline=in_days(9))  # fmt: skip
    data = {**GOOD_FORM, "description": "Edited while the first one is still open."}
    response = employer_client.post(reverse("employer:posting_edit", args=[draft.pk]), data)
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.description == data["description"] and draft.status == Posting.Status.DRAFT
    employer_client.post(reverse("employer:posting_publish", args=[draft.pk]))
    draft.refresh_from_db()
    assert draft.status == Posting.Status.DRAFT  # "already open: extend its deadline instead"


def test_actions_run_from_the_dashboard(employer_client, company):
    posting = DraftPostingFactory(company=company, deadline=in_days(5))
    employer_client.post(reverse("employer:posting_publish", args=[posting.pk]))
    posting.refresh_from_db()
    assert posting.is_open

    new_deadline = in_days(30).date().isoformat()
    employer_client.post(reverse("employer:posting_extend", args=[posting.pk]),
                         {"deadline": new_deadline})  # fmt: skip
    posting.refresh_from_db()
    assert timezone.localtime(posting.deadline).date().isoformat() == new_deadline

    employer_client.post(reverse("employer:posting_close", args=[posting.pk]), {"reason": "filled"})
    posting.refresh_from_db()
    assert posting.state == "closed"

    response = employer_client.post(reverse("employer:posting_reopen", args=[posting.pk]), {},
                                    follow=True)  # fmt: skip
    posting.refresh_from_db()
    assert posting.is_open and "open again" in response.content.decode()

    employer_client.post(reverse("employer:posting_duplicate", args=[posting.pk]))
    assert Posting.objects.filter(company=company, status="draft").count() == 1


def test_a_refused_action_says_why_on_the_dashboard(employer_client, company):
    posting = ClosedPostingFactory(company=company)
    response = employer_client.post(reverse("employer:posting_close", args=[posting.pk]),
                                    {"reason": "filled"}, follow=True)  # fmt: skip
    assert "is not open" in response.content.decode()
    response = employer_client.post(reverse("employer:posting_extend", args=[posting.pk]),
                                    {"deadline": "yesterday"}, follow=True)  # fmt: skip
    assert response.status_code == 200 and "valid date" in response.content.decode()


def test_actions_are_post_only(employer_client, company):
    posting = DraftPostingFactory(company=company, deadline=in_days(5))
    assert (
        employer_client.get(reverse("employer:posting_publish", args=[posting.pk])).status_code
        == 405
    )


def test_preview_shows_a_draft_to_its_company_only(employer_client, company, client):
    posting = DraftPostingFactory(company=company, title="Secret Draft")
    response = employer_client.get(reverse("employer:posting_preview", args=[posting.pk]))
    assert response.status_code == 200 and "Preview." in response.content.decode()
    assert "Secret Draft" in response.content.decode()
    assert client.get(posting.get_absolute_url()).status_code == 404


def test_a_drafts_preview_shows_it_as_candidates_will_see_it_published(employer_client, company):
    posting = DraftPostingFactory(company=company, title="Secret Draft", deadline=None)
    page = employer_client.get(reverse("employer:posting_preview", args=[posting.pk]))
    html = page.content.decode()
    assert "it is not public yet" in html
    assert "(closed)" not in html and "This job is closed" not in html
    assert "open, no deadline" in html
    posting.refresh_from_db()
    assert posting.status == Posting.Status.DRAFT


# --- Review findings: edits keep what happened meanwhile, and change only what changed --------


def test_an_edit_keeps_a_close_and_applications_that_happened_meanwhile(company, owner):
    posting = PublishedPostingFactory(company=company, applicant_count=0)
    stale = Posting.objects.get(pk=posting.pk)  # the employer's form was opened here
    services.posting_close(posting=posting, by=owner, reason="filled")  # a colleague closes it
    Posting.objects.filter(pk=posting.pk).update(applicant_count=2)  # two applications arrive
    stale.title = "Renamed Role"
    services.posting_save(posting=stale, by=owner)
    posting.refresh_from_db()
    assert posting.title == "Renamed Role"
    assert posting.state == "closed" and posting.applicant_count == 2


def test_saving_the_form_untouched_does_not_mark_the_listing_updated(employer_client, company):
    posting = PublishedPostingFactory(
        company=company, description="Line one\nLine two", applies_on_board=True, apply_url="",
        deadline=timezone.now().replace(hour=9, minute=30) + timedelta(days=10),
    )  # fmt: skip
    updated = posting.updated_at
    form = employer_client.get(reverse("employer:posting_edit", args=[posting.pk])).context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    data["description"] = data["description"].replace("\n", "\r\n")  # as a browser sends it
    data["deadline"] = timezone.localtime(posting.deadline).date().isoformat()
    response = employer_client.post(reverse("employer:posting_edit", args=[posting.pk]), data)
    assert response.status_code == 302, response.context["form"].errors
    posting.refresh_from_db()
    assert posting.updated_at == updated
    assert posting.description == "Line one\nLine two"


def test_an_expired_posting_can_be_edited_without_choosing_a_new_deadline(employer_client, company):
    posting = ExpiredPostingFactory(company=company, applies_on_board=True, apply_url="")
    form = employer_client.get(reverse("employer:posting_edit", args=[posting.pk])).context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    data["deadline"] = timezone.localtime(posting.deadline).date().isoformat()
    data["region"] = "Somewhere else"
    response = employer_client.post(reverse("employer:posting_edit", args=[posting.pk]), data)
    assert response.status_code == 302, response.context["form"].errors
    posting.refresh_from_db()
    assert posting.region == "Somewhere else" and posting.state == "expired"


def test_rewording_an_unverified_companys_live_listing_waits_for_review_as_a_revision(owner):
    newcomer = CompanyFactory(is_verified=False)
    posting = PublishedPostingFactory(company=newcomer)
    approved = posting.description
    posting.description = "Now with a different pitch: send money to apply."
    saved = services.posting_save(posting=posting, by=owner)
    assert saved.is_open and saved.description == approved
    assert saved.revisions.pending().get().values["description"] == posting.description
    region_only = PublishedPostingFactory(company=newcomer)
    region_only.region = "Elsewhere"
    assert services.posting_save(posting=region_only, by=owner).is_open


def test_a_posting_waiting_for_review_can_be_withdrawn_to_a_draft(employer_client, owner):
    newcomer = CompanyFactory(is_verified=False)
    waiting = DraftPostingFactory(company=newcomer, status=Posting.Status.PENDING_REVIEW)
    owner.memberships.all().delete()
    Membership.objects.create(company=newcomer, user=owner, role=Membership.Role.OWNER)
    response = employer_client.post(reverse("employer:posting_withdraw", args=[waiting.pk]))
    assert response.status_code == 302
    waiting.refresh_from_db()
    assert waiting.status == Posting.Status.DRAFT


def test_verifying_a_company_lets_its_waiting_postings_go_live(owner):
    newcomer = CompanyFactory(is_verified=False)
    waiting = DraftPostingFactory(company=newcomer, status=Posting.Status.PENDING_REVIEW)
    live = services.company_verify(company=newcomer, by=owner)
    waiting.refresh_from_db()
    assert live == [waiting] and waiting.is_open and waiting.posted_at is not None
    newcomer.refresh_from_db()
    assert newcomer.is_verified


def test_a_removed_posting_cannot_be_previewed_or_duplicated(employer_client, company):
    from postings.factories import RemovedPostingFactory

    removed = RemovedPostingFactory(company=company)
    assert (
        employer_client.get(reverse("employer:posting_preview", args=[removed.pk])).status_code
        == 404
    )
    assert (
        employer_client.post(reverse("employer:posting_duplicate", args=[removed.pk])).status_code
        == 404
    )


@pytest.mark.parametrize(
    "taken_down",
    [
        {"status": Posting.Status.PENDING_REVIEW},  # hidden by a moderator after it was public
        {"status": Posting.Status.CLOSED, "closed_reason": MODERATOR_CLOSED},
    ],
)
def test_a_listing_a_moderator_took_down_cannot_be_copied_back_into_sight(
    employer_client, company, taken_down
):
    # A verified company's copy would publish at once: the moderator's decision undone.
    posting = PublishedPostingFactory(company=company, title="Easy money from home")
    Posting.objects.filter(pk=posting.pk).update(**taken_down)
    response = employer_client.post(
        reverse("employer:posting_duplicate", args=[posting.pk]), follow=True
    )
    assert Posting.objects.filter(company=company).count() == 1
    # Off the request: Jinja2's context processors run after the test client records the context.
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert "moderator" in message and "copied" in message


def test_a_salary_without_a_currency_is_explained_once(employer_client):
    data = {**GOOD_FORM, "salary_currency": ""}
    form = employer_client.post(reverse("employer:posting_create"), data).context["form"]
    assert form.errors["salary_currency"] == ["Which currency is the salary in?"]
    long_city = {**GOOD_FORM, "city": "x" * 150}
    form = employer_client.post(reverse("employer:posting_create"), long_city).context["form"]
    assert "needs the city" not in " ".join(form.errors["city"])


def test_the_employer_sees_why_a_posting_was_not_approved(employer_client, company):
    DraftPostingFactory(company=company, title="Rejected Role", closed_reason="Add a salary range.")
    html = employer_client.get(DASHBOARD).content.decode()
    assert "Not approved: Add a salary range." in html


def test_a_listing_a_moderator_closed_cannot_be_reopened_by_its_employer(company, owner):
    posting = ClosedPostingFactory(company=company, closed_reason="Closed by a moderator")
    assert posting.is_closed_by_moderator
    with pytest.raises(services.PostingActionError, match="A moderator closed"):
        services.posting_reopen(posting=posting, by=owner, deadline=in_days(20))
    posting.refresh_from_db()
    assert posting.status == Posting.Status.CLOSED


def test_a_listing_hidden_by_a_moderator_cannot_be_withdrawn_and_published_again(company, owner):
    posting = PublishedPostingFactory(company=company)
    Posting.objects.filter(pk=posting.pk).update(status=Posting.Status.PENDING_REVIEW)
    posting.refresh_from_db()
    assert posting.is_under_review
    with pytest.raises(services.PostingActionError, match="moderators are looking"):
        services.posting_withdraw(posting=posting, by=owner)
    posting.refresh_from_db()
    assert posting.status == Posting.Status.PENDING_REVIEW
    assert not Posting.objects.public().filter(pk=posting.pk).exists()
