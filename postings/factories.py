"""Factories for companies and postings, one per state, with realistic data.

Used by the tests and by ``manage.py load_demo_data``.
"""

from __future__ import annotations

from datetime import timedelta

import factory
import factory.random
from django.utils import timezone
from django.utils.text import slugify

from .models import Company, Posting
from .text import render_description, summarize

# (city, region, country): places that agree with each other.
PLACES = [
    ("Belgrade", "", "RS"),
    ("Berlin", "Berlin", "DE"),
    ("Munich", "Bavaria", "DE"),
    ("Amsterdam", "North Holland", "NL"),
    ("London", "England", "GB"),
    ("Manchester", "England", "GB"),
    ("Dublin", "Leinster", "IE"),
    ("Paris", "Île-de-France", "FR"),
    ("Lisbon", "", "PT"),
    ("Madrid", "Community of Madrid", "ES"),
    ("Warsaw", "Masovia", "PL"),
    ("Stockholm", "", "SE"),
    ("Zurich", "Zurich", "CH"),
    ("New York", "New York", "US"),
    ("San Francisco", "California", "US"),
    ("Austin", "Texas", "US"),
    ("Chicago", "Illinois", "US"),
    ("Seattle", "Washington", "US"),
    ("Toronto", "Ontario", "CA"),
    ("Vancouver", "British Columbia", "CA"),
    ("Sydney", "New South Wales", "AU"),
    ("Singapore", "", "SG"),
    ("Bangalore", "Karnataka", "IN"),
    ("São Paulo", "São Paulo", "BR"),
]

ROLES: dict[str, list[str]] = {
    Posting.PracticeArea.ENGINEERING: [
        "Backend Engineer", "Frontend Engineer", "Site Reliability Engineer",
        "Platform Engineer", "Mobile Engineer", "Search Infrastructure Engineer",
        "Python Developer", "Full-Stack Developer", "Embedded Software Engineer",
    ],
    Posting.PracticeArea.DATA: ["Data Engineer", "Data Analyst", "Machine Learning Engineer"],
    Posting.PracticeArea.DESIGN: ["Product Designer", "UX Researcher", "Brand Designer"],
    Posting.PracticeArea.PRODUCT: ["Product Manager", "Technical Product Owner"],
    Posting.PracticeArea.MARKETING: ["Content Marketer", "Growth Marketing Manager"],
    Posting.PracticeArea.SALES: ["Account Executive", "Sales Development Representative"],
    Posting.PracticeArea.CUSTOMER_SUPPORT: ["Customer Support Specialist", "Support Engineer"],
    Posting.PracticeArea.OPERATIONS: ["Operations Manager", "Office Coordinator"],
    Posting.PracticeArea.FINANCE: ["Financial Analyst", "Accountant", "Payroll Specialist"],
    Posting.PracticeArea.PEOPLE: ["Recruiter", "People Partner"],
    Posting.PracticeArea.CORPORATE_LAW: ["Corporate Associate", "In-house Counsel"],
    Posting.PracticeArea.LITIGATION: ["Litigation Associate", "Paralegal"],
    Posting.PracticeArea.INTELLECTUAL_PROPERTY: ["Patent Attorney", "Trademark Paralegal"],
    Posting.PracticeArea.COMPLIANCE: ["Compliance Officer", "Privacy Counsel"],
    Posting.PracticeArea.HEALTHCARE: ["Registered Nurse", "Clinical Coordinator"],
    Posting.PracticeArea.EDUCATION: ["Curriculum Designer", "Teaching Assistant"],
}  # fmt: skip

LEVEL_PREFIX = {
    Posting.Seniority.INTERN: "Intern",
    Posting.Seniority.JUNIOR: "Junior",
    Posting.Seniority.MID: "",
    Posting.Seniority.SENIOR: "Senior",
    Posting.Seniority.LEAD: "Lead",
    Posting.Seniority.EXECUTIVE: "Principal",
}

SALARY_BY_LEVEL = {  # yearly, before currency; a rough but believable spread
    "intern": (20_000, 35_000),
    "junior": (40_000, 60_000),
    "mid": (60_000, 90_000),
    "senior": (90_000, 140_000),
    "lead": (120_000, 170_000),
    "executive": (160_000, 250_000),
}
CURRENCY = {"US": "USD", "GB": "GBP", "CA": "CAD", "AU": "AUD", "CH": "CHF", "SE": "SEK",
            "PL": "PLN", "IN": "INR", "BR": "BRL", "SG": "SGD", "RS": "RSD"}  # fmt: skip


# Roughly how many of each currency a euro buys, so that a salary reads as a salary there.
PER_EURO = {"USD": 1.1, "GBP": 0.85, "CAD": 1.5, "AUD": 1.6, "CHF": 0.95, "SEK": 11,
            "PLN": 4.3, "INR": 90, "BRL": 5.5, "SGD": 1.45, "RSD": 117, "EUR": 1}  # fmt: skip
# ...and how pay compares: a mid-level role does not pay the same in Bangalore and Zurich.
PAY_LEVEL = {"US": 1.4, "CH": 1.5, "GB": 1.0, "CA": 1.0, "AU": 1.1, "SE": 0.9, "PL": 0.5,
             "IN": 0.3, "BR": 0.4, "SG": 1.1, "RS": 0.4, "PT": 0.6, "ES": 0.7}  # fmt: skip


def has_pay(o) -> bool:
    return o.salary_min is not None or o.salary_max is not None


def yearly_salary(o, end: int) -> int | None:
    if o.employment_type == "volunteer":
        return None
    currency = CURRENCY.get(o.country, "EUR")
    amount = SALARY_BY_LEVEL[o.seniority][end] * PER_EURO[currency] * PAY_LEVEL.get(o.country, 0.9)
    return int(round(amount, -3)) or 1000


def description_markdown(o) -> str:
    """A description with the sections a real listing has, from a factory's resolved params."""
    duties = "\n".join(f"- {line}" for line in o.duties)
    needs = "\n".join(f"- {line}" for line in o.needs)
    where = f" in our {o.city} office" if o.workplace != "remote" else ", remotely"
    return (
        f"{o.company.name} is hiring: **{o.title}**, joining a small, high-impact "
        f"team{where}. {o.intro}\n\n"
        f"## Responsibilities\n\n{duties}\n\n"
        f"## Qualifications\n\n{needs}\n\n"
        f"## What we offer\n\n{o.offer}\n"
    )


def pick(options):
    return factory.random.randgen.choice(list(options))


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company
        django_get_or_create = ("slug",)

    name = factory.Faker("company")
    slug = factory.LazyAttributeSequence(lambda o, n: f"{slugify(o.name)[:80]}-{n}")
    company_type = factory.Faker("random_element", elements=Company.CompanyType.values)
    website = factory.LazyAttribute(
        lambda o: f"https://{slugify(o.name)[:40] or 'company'}.example"
    )
    description = factory.Faker("paragraph", nb_sentences=3)


class VerifiedCompanyFactory(CompanyFactory):
    is_verified = True


def _place(seed: int) -> tuple[str, str, str]:
    return PLACES[seed % len(PLACES)]


class DraftPostingFactory(factory.django.DjangoModelFactory):
    """A posting with every fact filled in, not yet published."""

    class Meta:
        model = Posting

    class Params:
        place = factory.Sequence(_place)
        intro = factory.Faker("paragraph", nb_sentences=3)
        offer = factory.Faker("paragraph", nb_sentences=2)
        duties = factory.List([factory.Faker("sentence", nb_words=10) for _ in range(4)])
        needs = factory.List([factory.Faker("sentence", nb_words=9) for _ in range(4)])

    company = factory.SubFactory(CompanyFactory)
    seniority = factory.Faker("random_element", elements=Posting.Seniority.values)
    practice_area = factory.Faker("random_element", elements=Posting.PracticeArea.values)
    title = factory.LazyAttribute(
        lambda o: " ".join(
            p
            for p in (
                LEVEL_PREFIX[o.seniority],
                pick(ROLES[o.practice_area]),
            )
            if p
        )
    )
    slug = factory.LazyAttribute(lambda o: slugify(o.title)[:80] or "job")
    workplace = factory.Faker("random_element", elements=Posting.Workplace.values)
    employment_type = factory.LazyAttribute(
        lambda o: (
            Posting.EmploymentType.INTERNSHIP
            if o.seniority == Posting.Seniority.INTERN
            else pick(
                [Posting.EmploymentType.FULL_TIME] * 6
                + [t for t in Posting.EmploymentType.values if t != "internship"]
            )
        )
    )
    # A remote role may still name a home city; on-site and hybrid ones must.
    city = factory.LazyAttribute(lambda o: o.place[0])
    region = factory.LazyAttribute(lambda o: o.place[1])
    country = factory.LazyAttribute(lambda o: o.place[2])
    description = factory.LazyAttribute(description_markdown)
    description_html = factory.LazyAttribute(lambda o: render_description(o.description))
    summary = factory.LazyAttribute(lambda o: summarize(o.description_html))
    salary_min = factory.LazyAttribute(lambda o: yearly_salary(o, 0))
    salary_max = factory.LazyAttribute(lambda o: yearly_salary(o, 1))
    salary_currency = factory.LazyAttribute(
        lambda o: CURRENCY.get(o.country, "EUR") if has_pay(o) else ""
    )
    salary_period = factory.LazyAttribute(lambda o: Posting.SalaryPeriod.YEAR if has_pay(o) else "")
    apply_url = factory.LazyAttribute(
        lambda o: f"{o.company.website or 'https://careers.example'}/careers/{o.slug}"
    )
    status = Posting.Status.DRAFT


class PublishedPostingFactory(DraftPostingFactory):
    """Open: published, recently checked, deadline ahead."""

    status = Posting.Status.PUBLISHED
    posted_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=3))
    updated_at = factory.LazyAttribute(lambda o: o.posted_at + timedelta(hours=2))
    last_checked_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=20))
    deadline = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))


class PastDeadlinePostingFactory(PublishedPostingFactory):
    """Still 'published' because no worker has run yet, but its deadline has passed."""

    posted_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=60))
    updated_at = factory.LazyAttribute(lambda o: o.posted_at)
    deadline = factory.LazyFunction(lambda: timezone.now() - timedelta(days=2))


class ExpiredPostingFactory(PastDeadlinePostingFactory):
    status = Posting.Status.EXPIRED
    closed_at = factory.LazyAttribute(lambda o: o.deadline)
    closed_reason = "The deadline passed."


class ClosedPostingFactory(PublishedPostingFactory):
    status = Posting.Status.CLOSED
    closed_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    closed_reason = "The role was filled."


class RemovedPostingFactory(PublishedPostingFactory):
    status = Posting.Status.REMOVED
    closed_reason = "Removed by a moderator."


class PendingReviewPostingFactory(DraftPostingFactory):
    status = Posting.Status.PENDING_REVIEW
