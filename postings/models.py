from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Cast, Coalesce, Upper
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import get_language
from django_countries import countries
from django_countries.fields import CountryField

from . import changes, geo
from .text import render_description, sanitize_html, summarize

# Columns derived on save to find likely duplicates (postings/duplicates.py), and their sources.
DUPLICATE_KEYS = ("title_key", "description_key", "apply_key")
KEYED_FIELDS = frozenset({"title", "description", "description_html", "apply_url"})


# What a candidate sees of a posting: a change to any of these moves ``updated_at``, and these
# are what an edit waiting for review (``PostingRevision``) may change.
CANDIDATE_FIELDS = (
    "title", "description", "city", "region", "country", "workplace", "employment_type",
    "seniority", "practice_area", "salary_min", "salary_max", "salary_currency", "salary_period",
    "deadline", "apply_url", "applies_on_board",
)  # fmt: skip


# What the job list reads of a listing: its card (templates/includes/_posting_card.html), what
# a kept page is checked by (``pagecache.fingerprint``) and what "Next" continues from (the
# sort's column). A column left out would be read by one more query per card.
CARD_FIELDS = (
    "company", "title", "slug", "summary", "city", "region", "country", "workplace",
    "employment_type", "seniority", "practice_area", "salary_min", "salary_max",
    "salary_currency", "salary_period", "status", "posted_at", "deadline", "closed_at",
    "modified_at", "view_count", "company__name", "company__modified_at",
)  # fmt: skip


def slug_for(text: str, fallback: str) -> str:
    return slugify(text)[:80].strip("-") or fallback


def choice_label(field: str, choices: Iterable[tuple[str, str]]) -> Callable[[models.Model], str]:
    """A ``get_FOO_display`` that reads a dict built once: Django's rebuilds (and hashes) the
    whole list of choices on every call, and each card of the job list shows four labels. As
    Django's, a value no choice names is shown as it is. (The labels are plain strings.)"""
    labels = dict(choices)

    def display(self: models.Model) -> str:
        value = getattr(self, field)
        return labels.get(value, value)

    display.__name__ = f"get_{field}_display"
    return display


_country_names: dict[tuple[str | None, str], str] = {}


def country_name(code: str, language: str | None = None) -> str:
    """A country's name in the active language, as ``Country.name`` gives it, found once per
    process: django-countries translates it again (a lazy string, through gettext) on every
    call, once a card. ``language``: the active one, when the caller looked it up already."""
    key = (language or get_language(), code)
    name = _country_names.get(key)
    if name is None:
        if len(_country_names) >= 4096:  # codes and languages are few; never grow without bound
            _country_names.clear()
        name = _country_names[key] = countries.name(code)
    return name


# A listing's address, from its parts worked out once per script prefix, URLconf and language
# (reverse() of a listing took a tenth of a millisecond, twenty times a page of cards): the
# address of a made-up listing, split where its id and slug go.
_SAMPLE_PK, _SAMPLE_SLUG = 918273645, "sample-slug-for-the-address"
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")  # Django's <slug:> converter: anything else is reversed
_detail_address: dict[tuple, tuple[str, str, str] | None] = {}


def address_key() -> tuple:
    """What a listing's address depends on besides its id and slug (each a context-local
    lookup of some microseconds): a page of cards looks them up once."""
    return (get_script_prefix(), get_urlconf(), get_language())


def detail_url(pk: int | None, slug: str, key: tuple | None = None) -> str:
    """``reverse("postings:detail", kwargs={"pk": pk, "slug": slug})``, faster. ``key``:
    ``address_key()``, when the caller looked it up already."""
    if type(pk) is int and pk >= 0 and _SLUG.fullmatch(slug):
        key = key or address_key()
        if key not in _detail_address:
            _detail_address[key] = _address_parts()
        parts = _detail_address[key]  # never forgotten: a few keys at most
        if parts is not None:
            return f"{parts[0]}{pk}{parts[1]}{slug}{parts[2]}"
    return reverse("postings:detail", kwargs={"pk": pk, "slug": slug})


def _address_parts() -> tuple[str, str, str] | None:
    """The address before the id, between the id and the slug, and after the slug; None (and
    reverse() every time) should the sample's id or slug not be found once each, in order."""
    pk, slug = str(_SAMPLE_PK), _SAMPLE_SLUG
    url = reverse("postings:detail", kwargs={"pk": _SAMPLE_PK, "slug": slug})
    if url.count(pk) != 1 or url.count(slug) != 1 or url.index(pk) > url.index(slug):
        return None
    head, _pk, rest = url.partition(pk)
    middle, _slug, tail = rest.partition(slug)
    return head, middle, tail


class CompanyQuerySet(models.QuerySet["Company"]):
    def update(self, **kwargs) -> int:
        """Update (moving ``modified_at``, as a save does), and take down the kept pages showing
        these companies (``changes``)."""
        kwargs.setdefault("modified_at", timezone.now())
        return changes.updated(
            self, changes.COMPANY, lambda: super(CompanyQuerySet, self).update(**kwargs)
        )

    def of_member(self, user) -> CompanyQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


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
    is_suspended = models.BooleanField(
        default=False,
        help_text="Suspended by a moderator: its listings are hidden, it cannot post.",
    )
    logo = models.ImageField(
        upload_to="logos/", blank=True, help_text="Optional: a square PNG or JPEG, at most 1 MB."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Moved by every save and update (``CompanyQuerySet.update``): a kept page rendered while its
    # company changed is not kept (``postings/pagecache.py``).
    modified_at = models.DateTimeField(auto_now=True)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]
        # Django's own updates (a related manager's add, a deletion's SET_NULL) go through the
        # base manager: ours, so they move modified_at and the change marks too.
        base_manager_name = "objects"
        indexes = [models.Index(Upper("name"), name="company_name_upper")]  # name__iexact

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:  # auto_now moves the attribute; this writes it too
            kwargs["update_fields"] = {*update_fields, "modified_at"}
        super().save(*args, **kwargs)

    def has_member(self, user) -> bool:
        return user.is_authenticated and self.memberships.filter(user=user).exists()

    def is_owned_by(self, user) -> bool:
        return (
            user.is_authenticated
            and self.memberships.filter(user=user, role=Membership.Role.OWNER).exists()
        )


class Membership(models.Model):
    """A user who may act for a company: post, edit and see applicants."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "user"], name="membership_once_per_company")
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.company} ({self.role})"


class PostingQuerySet(models.QuerySet["Posting"]):
    def update(self, **kwargs) -> int:
        """Update, and take down the kept pages showing the listings it changed (``changes``)
        unless it only changed what they may show late (``Posting.LAGGING_FIELDS``)."""
        if Posting.LAGGING_FIELDS.issuperset(kwargs):
            return super().update(**kwargs)
        kwargs.setdefault("modified_at", timezone.now())  # as a save moves it
        return changes.updated(
            self, changes.LISTING, lambda: super(PostingQuerySet, self).update(**kwargs)
        )

    def public(self) -> PostingQuerySet:
        """Listings anyone may open: live ones and those that have ended (shown as closed)."""
        return self.filter(status__in=Posting.PUBLIC_STATUSES)

    def with_page(self) -> PostingQuerySet:
        """Public listings and those hidden for review after they were public, whose page says
        so (``Posting.is_under_review``): the ones an address given out earlier still reaches."""
        return self.filter(
            Q(status__in=Posting.PUBLIC_STATUSES)
            | Q(status=Posting.Status.PENDING_REVIEW, posted_at__isnull=False)
        )

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

    def of_member(self, user) -> PostingQuerySet:
        """Every posting, in any status, of the companies this user belongs to."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(company__memberships__user=user)

    def for_cards(self) -> PostingQuerySet:
        """What a list of posting cards needs, without the long description columns."""
        return self.select_related("company").defer(
            "description", "description_html", "search_vector"
        )

    def for_job_list(self) -> PostingQuerySet:
        """The job list's cards: only the columns ``CARD_FIELDS`` names. Twenty rows of fifty
        columns, each turned into Python, cost more than the few the page shows."""
        return self.select_related("company").only(*CARD_FIELDS)


# "Deadline soonest" reads a listing without a deadline as closing at the end of time: one sort
# key with no NULLs, which the index posting_pub_deadline_key walks from "now" on.
NO_DEADLINE = datetime(9999, 12, 31, tzinfo=UTC)
# The closed_reason of a moderator's close: final for the employer, who cannot reopen it.
MODERATOR_CLOSED = "Closed by a moderator"


# What the list's filters read (all but the keywords), carried by its indexes so that a page's ids
# and its capped count are found without reading a row.
LIST_FILTER_COLUMNS = [
    "deadline",
    "company",
    "country",
    "city",
    "region",
    "workplace",
    "employment_type",
    "seniority",
    "practice_area",
    "salary_yearly_max",
]


def deadline_key() -> Coalesce:
    return Coalesce("deadline", Value(NO_DEADLINE))


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
    # What a kept page (``pagecache``) may show up to its keep time late, as it says: the counts
    # and the re-checker's bookkeeping. Changing any other column takes down at once the kept
    # pages that show the listing (``changes``).
    LAGGING_FIELDS = frozenset(
        {
            "view_count",
            "apply_click_count",
            "applicant_count",
            "last_checked_at",
            "check_attempted_at",
            "next_check_at",
            "check_failures",
            "check_note",
            "source_etag",
            "source_last_modified",
            "source_hash",
            "deadline_reminder_sent_at",
        }
    )
    # How many of each period make a working year, to compare salaries across periods.
    PERIODS_PER_YEAR = {"hour": 2080, "day": 260, "week": 52, "month": 12, "year": 1}

    # Not indexed on their own: posting_company_recent leads with the company, and a listing is
    # found by its id (the slug in its address is checked, not searched for).
    company = models.ForeignKey(
        Company, on_delete=models.PROTECT, related_name="postings", db_index=False
    )
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, db_index=False)
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
    duplicate_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="duplicates",
        help_text="Set by a moderator: candidates are pointed to this listing instead.",
    )
    closed_reason = models.CharField(max_length=200, blank=True)

    source_url = models.URLField(
        max_length=2000, blank=True, help_text="Where an aggregated listing came from."
    )
    apply_url = models.URLField(
        max_length=2000, blank=True, help_text="https://… where candidates apply."
    )
    applies_on_board = models.BooleanField(
        default=False, help_text="Candidates apply here, with a CV, instead of on your site."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="postings_created",
    )

    # Re-checking (postings/freshness.py): not to be queued again before ``next_check_at`` (set
    # while queued, and after a failed fetch, with backoff), when a check was last attempted, how
    # many attempts in a row failed to reach a verdict, and what the last one decided and why.
    next_check_at = models.DateTimeField(null=True, blank=True, editable=False)
    check_attempted_at = models.DateTimeField(null=True, blank=True, editable=False)
    check_failures = models.PositiveSmallIntegerField(default=0, editable=False)
    check_note = models.CharField(max_length=300, blank=True, editable=False)
    # What the source answered last time: for conditional requests and to tell a real change
    # (a hash of the normalized job content) from a page that only moved its ads and timestamps.
    source_etag = models.CharField(max_length=200, blank=True, editable=False)
    source_last_modified = models.CharField(max_length=100, blank=True, editable=False)
    source_hash = models.CharField(max_length=80, blank=True, editable=False)
    deadline_reminder_sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    view_count = models.PositiveIntegerField(default=0)
    applicant_count = models.PositiveIntegerField(default=0)
    apply_click_count = models.PositiveIntegerField(default=0)

    # Kept by a database trigger on PostgreSQL (title, company name, place, description).
    search_vector = SearchVectorField(null=True, editable=False)
    # Derived on save (postings/duplicates.py), to find the same job listed twice by index.
    title_key = models.CharField(max_length=200, blank=True, default="", editable=False)
    description_key = models.CharField(max_length=40, blank=True, default="", editable=False)
    apply_key = models.CharField(max_length=40, blank=True, default="", editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    # Moved by every change but to the columns in LAGGING_FIELDS (``save``, ``PostingQuerySet.
    # update``): a kept page rendered while the listing changed is not kept (``pagecache``).
    modified_at = models.DateTimeField(auto_now=True)

    objects = PostingQuerySet.as_manager()

    class Meta:
        ordering = ["-posted_at", "-id"]
        base_manager_name = "objects"  # as Company's
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
            # An aggregated listing is imported once: the same source page updates it.
            models.UniqueConstraint(
                fields=["source_url"],
                condition=~Q(source_url=""),
                name="posting_source_url_unique",
            ),
            models.CheckConstraint(
                name="posting_onsite_or_hybrid_has_city",
                condition=Q(workplace="remote") | ~Q(city=""),
            ),
        ]
        indexes = [
            # The list page: open listings newest first, and the same under each filter, from
            # index entries alone (browse.IdsFirst): a filter that matches one listing in twenty
            # costs a walk over narrow entries, not over rows.
            models.Index(
                fields=["-posted_at", "-id"],
                include=LIST_FILTER_COLUMNS,
                name="posting_pub_recent",
                condition=Q(status="published"),
            ),
            # The same for one country (the search bar's own filter): a country's lists walk
            # only its listings (a capped count of US, full time, $150k+: 21,000 entries read
            # over the index above, 6,000 here).
            models.Index(
                fields=["country", "-posted_at", "-id"],
                include=[c for c in LIST_FILTER_COLUMNS if c != "country"],
                name="posting_pub_country_recent",
                condition=Q(status="published"),
            ),
            models.Index(
                F("deadline").asc(),
                F("id").asc(),
                name="posting_pub_deadline",
                condition=Q(status="published"),
            ),
            # "Deadline soonest": with NULLs, "no deadline or one still ahead" is an OR the
            # walk cannot start at, and it reads every listing past its deadline not yet
            # expired first (60 ms at a million). It carries the filtered columns, as
            # posting_pub_recent does: the walk reads index entries, not rows.
            models.Index(
                deadline_key(),
                F("id"),
                name="posting_pub_deadline_key",
                condition=Q(status="published"),
                include=[*LIST_FILTER_COLUMNS, "posted_at"],
            ),
            # "Most viewed", carrying the filtered columns too: a filter that matches few of the
            # most viewed (new listings have few views) walked 67,000 rows, 300 ms at a million.
            models.Index(
                F("view_count").desc(),
                F("id").desc(),
                name="posting_pub_views",
                condition=Q(status="published"),
                include=[*LIST_FILTER_COLUMNS, "posted_at"],
            ),
            models.Index("workplace", F("posted_at").desc(), name="posting_workplace_recent"),
            models.Index("employment_type", F("posted_at").desc(), name="posting_type_recent"),
            models.Index("seniority", F("posted_at").desc(), name="posting_seniority_recent"),
            models.Index("practice_area", F("posted_at").desc(), name="posting_area_recent"),
            models.Index("country", "city", name="posting_place"),
            models.Index("company", F("posted_at").desc(), name="posting_company_recent"),
            # "Minimum salary": the open listings paid at least that much, from index entries
            # that carry the other filtered columns (a capped count of a rare combination and
            # a high floor read the whole of posting_pub_recent: 300 ms at a million).
            models.Index(
                fields=["salary_yearly_max"],
                include=[c for c in LIST_FILTER_COLUMNS if c != "salary_yearly_max"]
                + ["posted_at"],
                name="posting_pub_salary",
                condition=Q(status="published", salary_yearly_max__isnull=False),
            ),
            # "Include closed jobs": every public listing, newest first.
            models.Index(
                F("posted_at").desc(),
                F("id").desc(),
                name="posting_public_recent",
                condition=Q(status__in=["published", "closed", "expired"]),
            ),
            # Moderators' queues: the few listings no candidate sees.
            models.Index(
                "status",
                F("posted_at").desc(),
                name="posting_unlisted_status",
                condition=Q(status__in=["draft", "pending_review", "removed"]),
            ),
            # "Place": a city or region in any letter case (``iexact`` compares UPPER()), among
            # open listings (published only: else the planner ANDs a bitmap of every published
            # listing to it, 60 ms at a million). The country after the name: a place in a
            # country it is not in ("Belgrade" in the US) is no entry, where the place's own
            # entries (17,000) or the country's (270,000) took 150 ms to find no listing.
            models.Index(
                Upper("city"),
                F("country"),
                name="posting_pub_city_country",
                condition=Q(status="published"),
            ),
            models.Index(
                Upper("region"),
                F("country"),
                name="posting_pub_region_country",
                condition=Q(status="published"),
            ),
            GinIndex(fields=["search_vector"], name="posting_search_gin"),
            # Open listings of a rare combination of common choices ("academic, executive,
            # hybrid"): the lists of each choice, intersected inside the index (btree_gin), where
            # an ordered walk reads hundreds of thousands of entries before it finds a page.
            # ``browse`` asks for it when the counts snapshot says few listings match.
            GinIndex(
                fields=["workplace", "employment_type", "seniority", "practice_area", "country"],
                name="posting_pub_choices_gin",
                condition=Q(status="published"),
            ),
            # The re-check scheduler: open listings, least recently checked first.
            models.Index(
                fields=["last_checked_at"],  # as migration 0006 made it
                name="posting_pub_check_due",
                condition=Q(status="published"),
            ),
            # The status page: open listings whose source is failing, counted apart from the lag.
            models.Index(
                fields=["check_attempted_at"],
                name="posting_pub_check_failing",
                condition=Q(status="published", check_failures__gt=0),
            ),
            # Deadline reminders: open listings whose reminder is still to send.
            models.Index(
                "deadline",
                name="posting_pub_reminder_due",
                condition=Q(status="published", deadline_reminder_sent_at__isnull=True),
            ),
            # Likely duplicates (postings/duplicates.py): the same role of one company, the same
            # description, an imported page used as an employer's apply link.
            models.Index("company", "title_key", name="posting_company_title_key"),
            models.Index(
                "description_key",
                name="posting_description_key",
                condition=~Q(description_key=""),
            ),
            models.Index("apply_key", name="posting_apply_key", condition=~Q(apply_key="")),
            # Similar jobs (postings/similar.py): open listings of one area and level, newest first,
            # in one city, in one country, and remote ones anywhere. Without the city's own index
            # the planner meets a big city's listings by bitmap (0.5 s at a million).
            models.Index(
                "practice_area",
                "seniority",
                "country",
                Upper("city"),
                F("posted_at").desc(),
                name="posting_pub_similar_city",
                condition=Q(status="published"),
            ),
            models.Index(
                "practice_area",
                "seniority",
                "country",
                F("posted_at").desc(),
                name="posting_pub_similar_place",
                condition=Q(status="published"),
            ),
            models.Index(
                "practice_area",
                "seniority",
                F("posted_at").desc(),
                name="posting_pub_similar_remote",
                condition=Q(status="published", workplace="remote"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} at {self.company.name}"

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            self.slug = slug_for(self.title, "job")
        update_fields = kwargs.get("update_fields")
        if update_fields is None or KEYED_FIELDS & set(update_fields):
            # Columns derived from this row only, like the slug: kept true by every writer.
            from . import duplicates  # it queries Posting

            self.title_key = duplicates.title_key(self.title)
            self.description_key = duplicates.description_key(
                self.description_html or self.description
            )
            self.apply_key = duplicates.apply_key(self.apply_url)
            if update_fields is not None:
                update_fields = kwargs["update_fields"] = {*update_fields, *DUPLICATE_KEYS}
        if update_fields is not None and not self.LAGGING_FIELDS.issuperset(update_fields):
            # auto_now moves the attribute; this writes it too: a kept page rendered while the
            # listing changed is then not kept (``postings/pagecache.py``).
            kwargs["update_fields"] = {*update_fields, "modified_at"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return detail_url(self.pk, self.slug or "job")

    # --- facts derived from this row ---

    # The labels a card shows, from dicts built once (``choice_label``).
    get_workplace_display = choice_label("workplace", Workplace.choices)
    get_employment_type_display = choice_label("employment_type", EmploymentType.choices)
    get_seniority_display = choice_label("seniority", Seniority.choices)
    get_practice_area_display = choice_label("practice_area", PracticeArea.choices)
    get_salary_period_display = choice_label("salary_period", SalaryPeriod.choices)

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
    def is_closed_by_moderator(self) -> bool:
        """Closed for good by a moderator: the employer cannot reopen it."""
        return self.status == self.Status.CLOSED and self.closed_reason == MODERATOR_CLOSED

    @property
    def is_under_review(self) -> bool:
        """Taken out of sight after it was public (by a moderator, the safety net or a company's
        suspension) until a moderator looks at it again; its page says so."""
        return self.status == self.Status.PENDING_REVIEW and self.posted_at is not None

    @property
    def closes_in(self) -> timedelta | None:
        if self.deadline is None or not self.is_open:
            return None
        return self.deadline - timezone.now()

    @property
    def location_display(self) -> str:
        return self.place()

    def place(self, language: str | None = None) -> str:
        """City, region and country; ``language``: the active one, when looked up already."""
        # The stored code, not ``self.country``: django-countries' descriptor builds a Country
        # (and looks its code up among all the countries) on every read.
        code = self.__dict__.get("country")
        if code is None:  # deferred: the descriptor reads it
            code = self.country.code
        country = country_name(code, language) if code else ""
        return ", ".join(p for p in (self.city, self.region, country) if p)

    @property
    def has_salary(self) -> bool:
        return self.salary_min is not None or self.salary_max is not None

    @property
    def can_apply(self) -> bool:
        return self.is_open and (self.applies_on_board or bool(self.apply_url))

    def set_description(self, markdown_text: str) -> None:
        """Store the Markdown and its sanitized HTML and plain summary, rendered once on write."""
        markdown_text = (markdown_text or "").replace("\r\n", "\n")
        self.description = markdown_text
        self.description_html = render_description(markdown_text)
        self.summary = summarize(self.description_html)

    def set_description_html(self, raw_html: str) -> None:
        """Store an imported page's HTML description, sanitized (it is never edited as Markdown)."""
        clean = sanitize_html(raw_html or "")
        self.description = clean
        self.description_html = clean
        self.summary = summarize(clean)

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


@dataclass(frozen=True)
class RevisionChange:
    """One field a revision changes: its label, the value shown now and the one proposed, and
    for a long text the lines (``" "`` kept, ``"-"`` removed, ``"+"`` added)."""

    label: str
    old: str
    new: str
    lines: list[tuple[str, str]]


def _shown(posting: Posting, field: models.Field) -> str:
    """A field's value as a person reads it: the choice's label, the country's name, a date."""
    value = getattr(posting, field.name)
    if value is None or value == "":
        return "—"
    if field.choices:
        return str(getattr(posting, f"get_{field.name}_display")())
    if field.name == "country":
        return value.name
    if field.name == "applies_on_board":
        return "On this board, with a CV" if value else "On the employer's site"
    if isinstance(value, datetime):
        return f"{timezone.localtime(value):%b %-d, %Y}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class PostingRevisionQuerySet(models.QuerySet["PostingRevision"]):
    def pending(self) -> PostingRevisionQuerySet:
        return self.filter(state=PostingRevision.State.PENDING)


class PostingRevision(models.Model):
    """An unverified company's change to a listing that has been public, waiting for a moderator.

    The listing keeps showing its last approved words meanwhile: candidates, and those who
    applied, never find it gone. ``values`` holds the whole edited version (every field of
    ``CANDIDATE_FIELDS``, as the employer's form cleaned them); ``reopen`` asks for a closed or
    expired listing to open again. At most one revision per listing is pending; a later edit
    updates it.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Not approved"
        WITHDRAWN = "withdrawn", "Withdrawn"

    posting = models.ForeignKey(Posting, on_delete=models.CASCADE, related_name="revisions")
    values = models.JSONField(
        encoder=DjangoJSONEncoder,
        help_text='The edited version: field name to value, e.g. {"title": "Data engineer"}.',
    )
    reopen = models.BooleanField(
        default=False, help_text="The employer asked for the closed listing to open again."
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    submitted_at = models.DateTimeField()
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(
        max_length=500, blank=True, help_text="The moderator's reason, shown to the employer."
    )

    objects = PostingRevisionQuerySet.as_manager()

    class Meta:
        ordering = ["-submitted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["posting"],
                condition=Q(state="pending"),
                name="posting_revision_one_pending",
            ),
            models.CheckConstraint(
                name="posting_revision_reviewed_when_decided",
                condition=Q(state__in=["pending", "withdrawn"]) | Q(reviewed_at__isnull=False),
            ),
        ]
        indexes = [
            # The moderators' queue: pending revisions, oldest first.
            models.Index(
                "submitted_at", name="posting_revision_pending", condition=Q(state="pending")
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_state_display()} revision of posting {self.posting_id}"

    def apply_to(self, posting: Posting) -> Posting:
        """Set the revision's values on ``posting`` (not saved), each read back as its model
        field's type (the JSON holds a deadline as text, a country as its code). Only what a
        candidate sees is taken: never a status, a company or a count."""
        for name, value in self.values.items():
            if name in CANDIDATE_FIELDS:
                setattr(posting, name, Posting._meta.get_field(name).to_python(value))
        return posting

    def changes(self) -> list[RevisionChange]:
        """What this revision changes on its listing as it is now, field by field in the form's
        order, in the words a moderator reads (a description as lines kept, removed, added)."""
        live = self.values_of(self.posting, CANDIDATE_FIELDS)
        proposed = self.apply_to(Posting(**{name: getattr(self.posting, name) for name in live}))
        found = []
        for name in CANDIDATE_FIELDS:
            if live[name] == self.values_of(proposed, (name,))[name]:
                continue
            field = Posting._meta.get_field(name)
            old, new = _shown(self.posting, field), _shown(proposed, field)
            lines = []
            if name == "description":
                lines = [
                    (line[0], line[2:])
                    for line in difflib.ndiff(old.splitlines(), new.splitlines())
                    if line[0] in " +-"
                ]
            found.append(RevisionChange(str(field.verbose_name).capitalize(), old, new, lines))
        return found

    @classmethod
    def values_of(cls, posting: Posting, names: tuple[str, ...]) -> dict:
        """The JSON ``values`` for these fields of ``posting``."""
        values = {}
        for name in names:
            field = Posting._meta.get_field(name)
            value = field.get_prep_value(field.value_from_object(posting))
            # In full: DjangoJSONEncoder would cut a time to milliseconds, so that an unchanged
            # deadline read back would count as moved.
            values[name] = value.isoformat() if isinstance(value, datetime) else value
        return values


class ViewCountFlush(models.Model):
    """A batch of buffered view counts already added to postings, so no batch is added twice."""

    batch_id = models.CharField(max_length=64, unique=True)
    postings = models.PositiveIntegerField()
    views = models.PositiveIntegerField()
    flushed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.batch_id}: {self.views} views on {self.postings} postings"


def private_storage():
    """CVs live here: never under a public URL (STORAGES["private"])."""
    return storages["private"]


def cv_upload_to(instance: Application, filename: str) -> str:
    # The candidate's file name is kept only as a label; the stored name is random.
    return f"cvs/{instance.posting_id}/{uuid.uuid4().hex}{Path(filename).suffix.lower()[:6]}"


class ApplicationQuerySet(models.QuerySet["Application"]):
    def visible_to(self, user) -> ApplicationQuerySet:
        """Applications only the owning company's members may see."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(posting__company__memberships__user=user)


class Application(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        REVIEWED = "reviewed", "Reviewed"
        SHORTLISTED = "shortlisted", "Shortlisted"
        REJECTED = "rejected", "Rejected"

    posting = models.ForeignKey(Posting, on_delete=models.CASCADE, related_name="applications")
    name = models.CharField(max_length=150)
    email = models.EmailField(help_text="Stored lower-cased: one application per email.")
    phone = models.CharField(max_length=40, blank=True)
    links = models.TextField(blank=True, help_text="Portfolio, LinkedIn, GitHub: one per line.")
    cv = models.FileField(storage=private_storage, upload_to=cv_upload_to, max_length=300)
    cv_name = models.CharField(max_length=200, help_text="The file name the candidate sent.")
    cover_note = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    objects = ApplicationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["posting", "email"], name="application_once_per_email_per_posting"
            )
        ]
        indexes = [
            models.Index("posting", "status", F("created_at").desc(), name="application_by_status")
        ]

    def __str__(self) -> str:
        return f"{self.name} for {self.posting_id}"
