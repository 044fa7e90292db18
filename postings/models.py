from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Cast, Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django_countries.fields import CountryField

from . import geo
from .text import render_description, summarize


def slug_for(text: str, fallback: str) -> str:
    return slugify(text)[:80].strip("-") or fallback


class Company(models.Model):
    class CompanyType(models.TextChoices):
        CORPORATION = "corporation", "Corporation"
        STARTUP = "startup", "Startup"
        SMALL_BUSINESS = "small_business", "Small business"
        LAW_FIRM = "law_firm", "Law firm"
        AGENCY = "agency", "Recruitment agency"
        NONPROFIT = "nonprofit", "Non-profit"
        GOVERNMENT = "government", "Government"
        ACADEMIC = "academic", "Academic institution"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True, help_text="Used in links, e.g. acme-corp")
    company_type = models.CharField(
        max_length=20, choices=CompanyType.choices, default=CompanyType.CORPORATION
    )
    website = models.URLField(blank=True, help_text="e.g. https://acme.example")
    description = models.TextField(blank=True)
    is_verified = models.BooleanField(
        default=False, help_text="Verified companies' postings publish without review."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PostingQuerySet(models.QuerySet["Posting"]):
    def public(self) -> PostingQuerySet:
        """Listings anyone may open: live ones and those that have ended (shown as closed)."""
        return self.filter(status__in=Posting.PUBLIC_STATUSES)

    def open(self, now: datetime | None = None) -> PostingQuerySet:
        """Published and not past the deadline, whether or not a worker has expired it yet."""
        now = now or timezone.now()
        return self.filter(status=Posting.Status.PUBLISHED).filter(
            Q(deadline__isnull=True) | Q(deadline__gt=now)
        )

    def ended(self, now: datetime | None = None) -> PostingQuerySet:
        """Public listings that are no longer open: closed, expired, or past their deadline."""
        now = now or timezone.now()
        return self.public().exclude(pk__in=self.open(now).values("pk"))

    def posted_since(self, moment: datetime) -> PostingQuerySet:
        return self.filter(posted_at__gte=moment)

    def by_company(self, company: Company) -> PostingQuerySet:
        return self.filter(company=company)

    def for_cards(self) -> PostingQuerySet:
        """What a list of posting cards needs, without the long description columns."""
        return self.select_related("company").defer(
            "description", "description_html", "search_vector"
        )


class Posting(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PENDING_REVIEW = "pending_review", "Pending review"
        PUBLISHED = "published", "Published"
        CLOSED = "closed", "Closed"
        EXPIRED = "expired", "Expired"
        REMOVED = "removed", "Removed"

    class Workplace(models.TextChoices):
        ONSITE = "onsite", "On-site"
        HYBRID = "hybrid", "Hybrid"
        REMOTE = "remote", "Remote"

    class EmploymentType(models.TextChoices):
        FULL_TIME = "full_time", "Full time"
        PART_TIME = "part_time", "Part time"
        CONTRACT = "contract", "Contract"
        INTERNSHIP = "internship", "Internship"
        TEMPORARY = "temporary", "Temporary"
        VOLUNTEER = "volunteer", "Volunteer"

    class Seniority(models.TextChoices):
        INTERN = "intern", "Intern"
        JUNIOR = "junior", "Junior"
        MID = "mid", "Mid"
        SENIOR = "senior", "Senior"
        LEAD = "lead", "Lead"
        EXECUTIVE = "executive", "Executive"

    class PracticeArea(models.TextChoices):
        ENGINEERING = "engineering", "Engineering"
        DATA = "data", "Data & analytics"
        DESIGN = "design", "Design"
        PRODUCT = "product", "Product"
        MARKETING = "marketing", "Marketing"
        SALES = "sales", "Sales"
        CUSTOMER_SUPPORT = "customer_support", "Customer support"
        OPERATIONS = "operations", "Operations"
        FINANCE = "finance", "Finance & accounting"
        PEOPLE = "people", "People & HR"
        CORPORATE_LAW = "corporate_law", "Corporate law"
        LITIGATION = "litigation", "Litigation"
        INTELLECTUAL_PROPERTY = "intellectual_property", "Intellectual property"
        COMPLIANCE = "compliance", "Compliance & regulatory"
        HEALTHCARE = "healthcare", "Healthcare"
        EDUCATION = "education", "Education"

    class SalaryPeriod(models.TextChoices):
        HOUR = "hour", "per hour"
        DAY = "day", "per day"
        WEEK = "week", "per week"
        MONTH = "month", "per month"
        YEAR = "year", "per year"

    # Statuses whose page anyone may open; draft, pending and removed ones are not public.
    PUBLIC_STATUSES = (Status.PUBLISHED, Status.CLOSED, Status.EXPIRED)
    # How many of each period make a working year, to compare salaries across periods.
    PERIODS_PER_YEAR = {"hour": 2080, "day": 260, "week": 52, "month": 12, "year": 1}

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="postings")
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    description = models.TextField(help_text="Markdown: ## headings, lists, **bold**, links.")
    description_html = models.TextField(editable=False, default="")
    summary = models.CharField(max_length=300, editable=False, default="")

    city = models.CharField(max_length=100, blank=True, help_text="e.g. Belgrade")
    region = models.CharField(max_length=100, blank=True, help_text="State or region, e.g. Texas")
    country = CountryField(help_text="The country the city is in.")
    workplace = models.CharField(max_length=10, choices=Workplace.choices)
    employment_type = models.CharField(max_length=20, choices=EmploymentType.choices)
    seniority = models.CharField(max_length=20, choices=Seniority.choices)
    practice_area = models.CharField(max_length=30, choices=PracticeArea.choices)

    salary_min = models.PositiveIntegerField(null=True, blank=True)
    salary_max = models.PositiveIntegerField(null=True, blank=True)
    salary_currency = models.CharField(max_length=3, blank=True, help_text="ISO code, e.g. EUR")
    salary_period = models.CharField(max_length=10, choices=SalaryPeriod.choices, blank=True)
    # The top of the range over a working year, so "at least 60,000 a year" also finds hourly roles.
    # Widened to bigint before multiplying: a month of 250,000,000 (rials, dong) is over 2**31.
    salary_yearly_max = models.GeneratedField(
        expression=Case(
            *[
                When(
                    salary_period=period,
                    then=Cast(Coalesce("salary_max", "salary_min"), models.BigIntegerField())
                    * factor,
                )
                for period, factor in PERIODS_PER_YEAR.items()
            ],
            default=Value(None),
            output_field=models.BigIntegerField(),
        ),
        output_field=models.BigIntegerField(null=True),
        db_persist=True,
    )

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    posted_at = models.DateTimeField(
        null=True, blank=True, help_text="First publication; edits never move it."
    )
    updated_at = models.DateTimeField(
        null=True, blank=True, help_text="Last change to what a candidate sees."
    )
    last_checked_at = models.DateTimeField(
        null=True, blank=True, help_text="Last time the listing was confirmed still accurate."
    )
    deadline = models.DateTimeField(null=True, blank=True, help_text="Applications close then.")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=200, blank=True)

    source_url = models.URLField(
        max_length=2000, blank=True, help_text="Where an aggregated listing came from."
    )
    apply_url = models.URLField(
        max_length=2000, blank=True, help_text="https://… where candidates apply."
    )

    view_count = models.PositiveIntegerField(default=0)
    applicant_count = models.PositiveIntegerField(default=0)
    apply_click_count = models.PositiveIntegerField(default=0)

    # Kept by a database trigger on PostgreSQL (title, company name, place, description).
    search_vector = SearchVectorField(null=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    objects = PostingQuerySet.as_manager()

    class Meta:
        ordering = ["-posted_at", "-id"]
        constraints = [
            models.CheckConstraint(
                name="posting_salary_min_lte_max",
                condition=Q(salary_min__isnull=True)
                | Q(salary_max__isnull=True)
                | Q(salary_min__lte=F("salary_max")),
            ),
            models.CheckConstraint(
                name="posting_salary_has_currency_and_period",
                condition=(Q(salary_min__isnull=True) & Q(salary_max__isnull=True))
                | (~Q(salary_currency="") & ~Q(salary_period="")),
            ),
            models.CheckConstraint(
                name="posting_public_has_posted_at",
                condition=Q(status__in=["draft", "pending_review"]) | Q(posted_at__isnull=False),
            ),
            models.CheckConstraint(
                name="posting_updated_not_before_posted",
                condition=Q(updated_at__isnull=True)
                | Q(posted_at__isnull=True)
                | Q(updated_at__gte=F("posted_at")),
            ),
            models.CheckConstraint(
                name="posting_onsite_or_hybrid_has_city",
                condition=Q(workplace="remote") | ~Q(city=""),
            ),
        ]
        indexes = [
            # The list page: open listings newest first, and the same under each filter.
            models.Index(
                F("posted_at").desc(),
                F("id").desc(),
                name="posting_pub_recent",
                condition=Q(status="published"),
            ),
            models.Index(
                F("deadline").asc(),
                F("id").asc(),
                name="posting_pub_deadline",
                condition=Q(status="published"),
            ),
            models.Index(
                F("view_count").desc(),
                F("id").desc(),
                name="posting_pub_views",
                condition=Q(status="published"),
            ),
            models.Index("workplace", F("posted_at").desc(), name="posting_workplace_recent"),
            models.Index("employment_type", F("posted_at").desc(), name="posting_type_recent"),
            models.Index("seniority", F("posted_at").desc(), name="posting_seniority_recent"),
            models.Index("practice_area", F("posted_at").desc(), name="posting_area_recent"),
            models.Index("country", "city", name="posting_place"),
            models.Index("company", F("posted_at").desc(), name="posting_company_recent"),
            models.Index("salary_yearly_max", name="posting_salary_yearly"),
            models.Index("status", F("posted_at").desc(), name="posting_status_recent"),
            GinIndex(fields=["search_vector"], name="posting_search_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.title} at {self.company.name}"

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            self.slug = slug_for(self.title, "job")
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("postings:detail", kwargs={"pk": self.pk, "slug": self.slug or "job"})

    # --- facts derived from this row ---

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.PUBLISHED and not self.is_past_deadline

    @property
    def is_past_deadline(self) -> bool:
        return self.deadline is not None and self.deadline <= timezone.now()

    @property
    def state(self) -> str:
        """What a candidate is told: open, closed, expired (even before a worker marks it)."""
        if self.is_open:
            return "open"
        if self.status == self.Status.EXPIRED or (
            self.status == self.Status.PUBLISHED and self.is_past_deadline
        ):
            return "expired"
        if self.status == self.Status.CLOSED:
            return "closed"
        return self.status

    @property
    def closes_in(self) -> timedelta | None:
        if self.deadline is None or not self.is_open:
            return None
        return self.deadline - timezone.now()

    @property
    def location_display(self) -> str:
        parts = [
            p for p in (self.city, self.region, self.country.name if self.country else "") if p
        ]
        return ", ".join(parts)

    @property
    def has_salary(self) -> bool:
        return self.salary_min is not None or self.salary_max is not None

    @property
    def can_apply(self) -> bool:
        return self.is_open and bool(self.apply_url)

    def set_description(self, markdown_text: str) -> None:
        """Store the Markdown and its sanitized HTML and plain summary, rendered once on write."""
        self.description = markdown_text
        self.description_html = render_description(markdown_text)
        self.summary = summarize(self.description_html)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.workplace in (self.Workplace.ONSITE, self.Workplace.HYBRID) and not self.city:
            errors["city"] = "An on-site or hybrid role needs the city where the work happens."
        if (
            self.salary_min is not None
            and self.salary_max is not None
            and self.salary_min > self.salary_max
        ):
            errors["salary_max"] = "The maximum salary must be at least the minimum."
        if self.has_salary and not (self.salary_currency and self.salary_period):
            errors["salary_currency"] = "Give the salary's currency and period, e.g. EUR per year."
        if self.city and self.country:
            mismatch = geo.city_country_mismatch(self.city, str(self.country))
            if mismatch:
                errors["country"] = mismatch
        if errors:
            raise ValidationError(errors)


class ViewCountFlush(models.Model):
    """A batch of buffered view counts already added to postings, so no batch is added twice."""

    batch_id = models.CharField(max_length=64, unique=True)
    postings = models.PositiveIntegerField()
    views = models.PositiveIntegerField()
    flushed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.batch_id}: {self.views} views on {self.postings} postings"
