"""Company and Posting: database constraints, validation, and the facts derived from a row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError
from django.urls import NoReverseMatch, reverse, set_script_prefix
from django.utils import timezone, translation

from postings.factories import (
    ClosedPostingFactory,
    CompanyFactory,
    DraftPostingFactory,
    ExpiredPostingFactory,
    PastDeadlinePostingFactory,
    PendingReviewPostingFactory,
    PublishedPostingFactory,
    RemovedPostingFactory,
)
from postings.models import Company, Posting, slug_for

# --- What the database itself refuses -------------------------------------------------------

# (constraint, changes that break it); "posted_at - 1 day" is resolved against the row.
CONSTRAINT_VIOLATIONS = [
    ("posting_salary_min_lte_max", {"salary_min": 90_000, "salary_max": 60_000}),
    ("posting_salary_has_currency_and_period", {"salary_currency": ""}),
    ("posting_salary_has_currency_and_period", {"salary_period": ""}),
    ("posting_public_has_posted_at", {"posted_at": None, "updated_at": None}),
    ("posting_public_has_posted_at", {"status": "removed", "posted_at": None, "updated_at": None}),
    ("posting_updated_not_before_posted", {"updated_at": "posted_at - 1 day"}),
    ("posting_onsite_or_hybrid_has_city", {"workplace": "onsite", "city": ""}),
    ("posting_onsite_or_hybrid_has_city", {"workplace": "hybrid", "city": ""}),
]
VIOLATION_IDS = [f"{name}-{'-'.join(changes)}" for name, changes in CONSTRAINT_VIOLATIONS]


def resolved(changes: dict, posting: Posting) -> dict:
    changes = dict(changes)
    if changes.get("updated_at") == "posted_at - 1 day":
        changes["updated_at"] = posting.posted_at - timedelta(days=1)
    return changes


def test_every_named_check_constraint_of_posting_has_a_violation_case():
    names = {c.name for c in Posting._meta.constraints if isinstance(c, models.CheckConstraint)}
    assert names == {name for name, _ in CONSTRAINT_VIOLATIONS}


@pytest.mark.django_db
def test_one_source_page_is_one_listing_and_listings_without_a_source_are_many():
    PublishedPostingFactory.create_batch(2, source_url="")
    PublishedPostingFactory(source_url="https://jobs.example/1")
    with pytest.raises(IntegrityError, match="posting_source_url_unique"), transaction.atomic():
        PublishedPostingFactory(source_url="https://jobs.example/1")


@pytest.mark.django_db
@pytest.mark.parametrize(("constraint", "changes"), CONSTRAINT_VIOLATIONS, ids=VIOLATION_IDS)
def test_the_database_refuses_an_update_that_breaks_the_check_constraint(constraint, changes):
    posting = PublishedPostingFactory(workplace="remote")

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Posting.objects.filter(pk=posting.pk).update(**resolved(changes, posting))

    assert constraint in str(raised.value)
    posting.refresh_from_db()
    assert posting.status == Posting.Status.PUBLISHED  # the row is unchanged
    assert posting.posted_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(("constraint", "changes"), CONSTRAINT_VIOLATIONS, ids=VIOLATION_IDS)
def test_the_database_refuses_to_insert_a_row_that_breaks_the_check_constraint(constraint, changes):
    posting = PublishedPostingFactory.build(company=CompanyFactory(), workplace="remote")
    for name, value in resolved(changes, posting).items():
        setattr(posting, name, value)

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        posting.save()

    assert constraint in str(raised.value)
    assert not Posting.objects.exists()


@pytest.mark.django_db
def test_negative_counts_and_salaries_are_refused_by_the_database():
    posting = PublishedPostingFactory()
    for changes in ({"view_count": -1}, {"salary_min": -5}, {"apply_click_count": -1}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Posting.objects.filter(pk=posting.pk).update(**changes)


@pytest.mark.django_db
def test_rows_the_constraints_allow_are_stored():
    company = CompanyFactory()
    allowed = [
        # remote without a city, no salary at all, a draft without posted_at
        DraftPostingFactory.build(
            company=company,
            workplace="remote",
            city="",
            region="",
            salary_min=None,
            salary_max=None,
            salary_currency="",
            salary_period="",
        ),
        # pending review, not yet posted
        PendingReviewPostingFactory.build(company=company),
        # only a minimum salary; min equal to max; updated exactly when posted
        PublishedPostingFactory.build(company=company, salary_max=None),
        PublishedPostingFactory.build(company=company, salary_min=70_000, salary_max=70_000),
        PastDeadlinePostingFactory.build(company=company),
    ]
    for posting in allowed:
        posting.save()
    assert Posting.objects.count() == len(allowed)


@pytest.mark.django_db
def test_a_company_with_postings_cannot_be_deleted():
    posting = PublishedPostingFactory()
    with pytest.raises(ProtectedError), transaction.atomic():
        posting.company.delete()
    assert Posting.objects.filter(pk=posting.pk).exists()


@pytest.mark.django_db
def test_company_slugs_are_unique():
    CompanyFactory(name="Acme", slug="acme")
    with pytest.raises(IntegrityError), transaction.atomic():
        Company.objects.create(name="Acme again", slug="acme")
    assert Company.objects.filter(slug="acme").count() == 1


# --- clean(): what a form tells the employer ------------------------------------------------


def posting_for_clean(**overrides) -> Posting:
    return PublishedPostingFactory.build(company=CompanyFactory.build(), **overrides)


def errors_of(posting: Posting) -> dict[str, list[str]]:
    try:
        posting.clean()
    except ValidationError as exc:
        return exc.message_dict
    return {}


def test_belgrade_filed_under_the_united_states_is_a_country_error_naming_serbia():
    errors = errors_of(posting_for_clean(city="Belgrade", region="", country="US"))
    assert list(errors) == ["country"]
    assert errors["country"] == [
        "Belgrade is a city in Serbia, not in United States of America. "
        "Check the city or the country."
    ]


def test_belgrade_in_serbia_is_fine():
    assert errors_of(posting_for_clean(city="Belgrade", region="", country="RS")) == {}


def test_a_place_geonames_does_not_know_is_taken_on_the_employers_word():
    assert errors_of(posting_for_clean(city="Smallville-on-Nowhere", country="US")) == {}


@pytest.mark.parametrize("workplace", ["onsite", "hybrid"])
def test_an_onsite_or_hybrid_role_without_a_city_asks_for_the_city(workplace):
    errors = errors_of(posting_for_clean(workplace=workplace, city=""))
    assert errors == {"city": ["An on-site or hybrid role needs the city where the work happens."]}


def test_a_remote_role_needs_no_city():
    assert errors_of(posting_for_clean(workplace="remote", city="", region="")) == {}


def test_a_maximum_salary_below_the_minimum_is_an_error_on_the_maximum():
    errors = errors_of(posting_for_clean(salary_min=100_000, salary_max=50_000))
    assert errors == {"salary_max": ["The maximum salary must be at least the minimum."]}


@pytest.mark.parametrize("missing", ["salary_currency", "salary_period"])
def test_a_salary_without_currency_or_period_asks_for_both(missing):
    errors = errors_of(posting_for_clean(**{missing: ""}))
    assert errors == {
        "salary_currency": ["Give the salary's currency and period, e.g. EUR per year."]
    }


def test_no_salary_needs_no_currency():
    posting = posting_for_clean(
        salary_min=None, salary_max=None, salary_currency="", salary_period=""
    )
    assert errors_of(posting) == {}


def test_every_problem_is_reported_at_once():
    posting = posting_for_clean(
        workplace="onsite", city="", salary_min=10, salary_max=5, salary_currency=""
    )
    assert set(errors_of(posting)) == {"city", "salary_max", "salary_currency"}


@pytest.mark.django_db
def test_full_clean_also_checks_the_named_constraints():
    posting = PublishedPostingFactory.build(company=CompanyFactory())
    posting.posted_at = posting.updated_at = None
    with pytest.raises(ValidationError) as raised:
        posting.full_clean()
    assert "posting_public_has_posted_at" in str(raised.value)


# --- state and the facts derived from it ----------------------------------------------------

STATES = [
    (DraftPostingFactory, "draft", False),
    (PendingReviewPostingFactory, "pending_review", False),
    (PublishedPostingFactory, "open", True),
    (PastDeadlinePostingFactory, "expired", False),
    (ExpiredPostingFactory, "expired", False),
    (ClosedPostingFactory, "closed", False),
    (RemovedPostingFactory, "removed", False),
]


@pytest.mark.parametrize(("factory_class", "state", "is_open"), STATES)
def test_each_factory_state_reads_as_a_candidate_should_see_it(factory_class, state, is_open):
    posting = factory_class.build()
    assert posting.state == state
    assert posting.is_open is is_open


def test_a_published_posting_past_its_deadline_is_expired_before_any_worker_runs():
    posting = PastDeadlinePostingFactory.build()
    assert posting.status == Posting.Status.PUBLISHED
    assert posting.is_past_deadline
    assert not posting.is_open
    assert posting.state == "expired"
    assert posting.closes_in is None
    assert not posting.can_apply


def test_a_deadline_exactly_now_has_passed(monkeypatch):
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    posting = PublishedPostingFactory.build(deadline=now)
    assert posting.is_past_deadline
    assert posting.state == "expired"


def test_a_published_posting_without_a_deadline_stays_open():
    posting = PublishedPostingFactory.build(deadline=None)
    assert posting.is_open
    assert posting.state == "open"
    assert posting.closes_in is None


def test_closes_in_counts_down_to_the_deadline_of_an_open_posting():
    posting = PublishedPostingFactory.build(deadline=timezone.now() + timedelta(days=3))
    assert timedelta(days=2, hours=23) < posting.closes_in <= timedelta(days=3)


def test_a_closed_posting_does_not_count_down_even_with_a_future_deadline():
    posting = ClosedPostingFactory.build(deadline=timezone.now() + timedelta(days=3))
    assert posting.closes_in is None


def test_only_an_open_posting_with_an_apply_link_can_be_applied_to():
    assert PublishedPostingFactory.build().can_apply
    assert not PublishedPostingFactory.build(apply_url="").can_apply
    assert not ClosedPostingFactory.build().can_apply
    assert not ExpiredPostingFactory.build().can_apply
    assert not DraftPostingFactory.build().can_apply


@pytest.mark.parametrize(
    ("city", "region", "country", "shown"),
    [
        ("Belgrade", "", "RS", "Belgrade, Serbia"),
        ("Austin", "Texas", "US", "Austin, Texas, United States of America"),
        ("", "", "DE", "Germany"),
    ],
)
def test_location_reads_city_region_country_and_skips_what_is_missing(city, region, country, shown):
    posting = PublishedPostingFactory.build(
        workplace="remote", city=city, region=region, country=country
    )
    assert posting.location_display == shown


def test_location_names_the_country_in_the_active_language():
    posting = PublishedPostingFactory.build(workplace="remote", city="", region="", country="DE")
    assert posting.location_display == "Germany"
    with translation.override("de"):
        assert posting.location_display == "Deutschland"
    with translation.override("fr"):
        assert posting.location_display == "Allemagne"
    assert posting.location_display == "Germany"
    posting.country = "gb"  # as django-countries reads a code: in capitals
    assert posting.location_display == "United Kingdom"


@pytest.mark.parametrize(
    "field", ["workplace", "employment_type", "seniority", "practice_area", "salary_period"]
)
def test_a_label_is_the_one_django_would_show(field):
    posting = PublishedPostingFactory.build()
    model_field = Posting._meta.get_field(field)
    for value in [*(v for v, _label in model_field.choices), "", "not-a-choice"]:
        setattr(posting, field, value)
        expected = posting._get_FIELD_display(model_field)  # Django's own
        assert getattr(posting, f"get_{field}_display")() == expected


@pytest.mark.parametrize(
    ("pk", "slug"),
    [(1, "engineer"), (987654321, "senior-engineer_2"), (5, ""), (7, "ç-unicode"),
     (8, "with space"), (9, "918273645"), (10, "sample-slug-for-the-address")],
)  # fmt: skip
def test_a_listings_address_is_the_one_reverse_gives(pk, slug):
    posting = PublishedPostingFactory.build(pk=pk, slug=slug)
    try:
        expected = reverse("postings:detail", kwargs={"pk": pk, "slug": slug or "job"})
    except NoReverseMatch:
        with pytest.raises(NoReverseMatch):
            posting.get_absolute_url()
    else:
        assert posting.get_absolute_url() == expected
        set_script_prefix("/board/")  # served under a path: the address follows
        try:
            assert posting.get_absolute_url() == "/board" + expected
        finally:
            set_script_prefix("/")
        assert posting.get_absolute_url() == expected


def test_an_unsaved_listing_has_no_address():
    with pytest.raises(NoReverseMatch):
        PublishedPostingFactory.build(pk=None).get_absolute_url()


def test_has_salary_with_either_end_of_the_range():
    assert PublishedPostingFactory.build(salary_min=None).has_salary
    assert PublishedPostingFactory.build(salary_max=None).has_salary
    assert not PublishedPostingFactory.build(salary_min=None, salary_max=None).has_salary


def test_set_description_stores_markdown_sanitized_html_and_a_summary():
    posting = DraftPostingFactory.build()
    posting.set_description("## Role\n\nWrite **Python**.<script>alert(1)</script>")
    assert posting.description.startswith("## Role")
    assert "<strong>Python</strong>" in posting.description_html
    assert "<script" not in posting.description_html
    assert posting.summary == "Write Python."


@pytest.mark.django_db
def test_saving_without_a_slug_makes_one_from_the_title():
    posting = PublishedPostingFactory(title="Senior Backend Engineer (Go/Rust)", slug="")
    assert posting.slug == "senior-backend-engineer-gorust"
    assert posting.get_absolute_url() == f"/jobs/{posting.pk}-senior-backend-engineer-gorust/"


def test_a_title_without_letters_gets_a_fallback_slug():
    assert slug_for("!!! ???", "job") == "job"
    assert len(slug_for("x" * 300, "job")) <= 80


@pytest.mark.django_db
def test_a_posting_reads_as_its_title_at_its_company():
    posting = PublishedPostingFactory(title="Data Engineer", company__name="Acme Ltd")
    assert str(posting) == "Data Engineer at Acme Ltd"
    assert str(posting.company) == "Acme Ltd"


# --- the yearly salary the database computes for the salary filter --------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("salary_min", "salary_max", "period", "yearly"),
    [
        (50, 60, "hour", 60 * 2080),
        (400, None, "day", 400 * 260),
        (1_000, 1_200, "week", 1_200 * 52),
        (5_000, None, "month", 5_000 * 12),
        (None, 90_000, "year", 90_000),
    ],
)
def test_the_yearly_top_of_the_range_is_computed_for_every_period(
    salary_min, salary_max, period, yearly
):
    posting = PublishedPostingFactory(
        salary_min=salary_min, salary_max=salary_max, salary_period=period
    )
    posting.refresh_from_db()
    assert posting.salary_yearly_max == yearly


@pytest.mark.django_db
def test_a_posting_without_a_salary_has_no_yearly_salary():
    posting = PublishedPostingFactory(
        salary_min=None, salary_max=None, salary_currency="", salary_period=""
    )
    posting.refresh_from_db()
    assert posting.salary_yearly_max is None


@pytest.mark.django_db
def test_a_large_monthly_salary_in_a_small_unit_currency_is_stored():
    # 250 million Iranian rials a month is an ordinary salary; a year of it passes 2**31.
    posting = PublishedPostingFactory(
        salary_min=200_000_000,
        salary_max=250_000_000,
        salary_currency="IRR",
        salary_period="month",
    )
    posting.refresh_from_db()
    assert posting.salary_yearly_max == 3_000_000_000
