"""Load a realistic demo board: companies, a few hundred postings in every state, and the
reference listing with its facts made consistent. Safe to run again: it adds only what is missing.
"""

from __future__ import annotations

from datetime import timedelta

import factory.random
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from postings.factories import (
    ClosedPostingFactory,
    CompanyFactory,
    ExpiredPostingFactory,
    PastDeadlinePostingFactory,
    PublishedPostingFactory,
)
from postings.models import Company, Posting

SEED = 20261125

REFERENCE_DESCRIPTION = """\
Perplexity is looking for a Backend/Infrastructure Engineer Intern to support our small, \
high-impact team building the systems that power our search experience. You will work closely \
with experienced engineers to help design, build, and operate robust infrastructure and backend \
services that keep Perplexity fast, reliable, and scalable.

Internship program: 12 - 24 weeks, full-time, in-person in the Belgrade office.

## Responsibilities

- Build and maintain infrastructure that supports high-performance search systems, with \
mentorship from senior engineers.
- Design internal tools and automation to improve developer workflows and operational efficiency.
- Support the design, deployment, and monitoring of cloud-native systems on AWS.
- Contribute to improving CI/CD pipelines, testing infrastructure, and release processes.
- Debug and optimize Linux-based services, containers, and backend systems.
- Contribute to product codebases, primarily using Rust, Go or C++.

## Qualifications

- Working towards a degree in Computer Science, Engineering, or a related field, or equivalent \
practical experience.
- Familiarity with at least one programming language such as Go, Rust, or C/C++, through \
coursework or projects.
- Basic understanding or exposure to cloud infrastructure (e.g. AWS) and Linux systems is a \
plus, not a requirement.
- Interest in infrastructure, distributed systems, or backend engineering, with willingness to \
learn about CI/CD, monitoring, and performance.
- A proactive and curious learner who enjoys collaborating in a fast-paced, innovative environment.
"""


class Command(BaseCommand):
    help = (
        "Load a realistic demo board (idempotent: running it twice adds nothing the second time)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--postings", type=int, default=400, help="How many postings.")
        parser.add_argument("--companies", type=int, default=40, help="How many companies.")

    @transaction.atomic
    def handle(self, *args, postings: int, companies: int, **options) -> None:
        factory.random.reseed_random(SEED)
        now = timezone.now()
        rng = factory.random.randgen
        created = 0

        reference_company, _ = Company.objects.get_or_create(
            slug="perplexity",
            defaults={
                "name": "Perplexity",
                "company_type": Company.CompanyType.CORPORATION,
                "website": "https://www.perplexity.ai",
                "description": "Perplexity builds an answer engine that searches the web.",
                "is_verified": True,
            },
        )
        created += self._reference_listing(reference_company, now)

        company_list = [reference_company]
        for n in range(companies):
            built = CompanyFactory.build()
            company, _ = Company.objects.get_or_create(
                slug=f"demo-{n:03d}",
                defaults={
                    "name": built.name,
                    "company_type": built.company_type,
                    "website": built.website,
                    "description": built.description,
                    "is_verified": n % 4 != 0,
                },
            )
            company_list.append(company)

        seen: set[tuple[int, str, str]] = set(
            Posting.objects.filter(company__in=company_list).values_list(
                "company_id", "slug", "city"
            )
        )
        for n in range(postings):
            company = company_list[n % len(company_list)]
            roll = rng.random()
            if roll < 0.76:
                maker = PublishedPostingFactory
            elif roll < 0.84:
                maker = PastDeadlinePostingFactory  # not yet expired by a worker: must read closed
            elif roll < 0.92:
                maker = ExpiredPostingFactory
            else:
                maker = ClosedPostingFactory
            posting = maker.build(company=company)
            age = timedelta(days=rng.randint(0, 75), hours=rng.randint(0, 23))
            posting.posted_at = now - age
            posting.updated_at = posting.posted_at + (now - posting.posted_at) * rng.random()
            posting.last_checked_at = now - timedelta(minutes=rng.randint(1, 55))
            if maker is PublishedPostingFactory:
                posting.deadline = (
                    None if rng.random() < 0.15 else now + timedelta(days=rng.randint(1, 60))
                )
            else:
                posting.deadline = now - timedelta(days=rng.randint(1, 20))
                posting.posted_at = min(posting.posted_at, posting.deadline - timedelta(days=14))
                posting.updated_at = posting.posted_at + timedelta(days=1)
                if posting.closed_at is not None:
                    posting.closed_at = posting.deadline
            if posting.workplace == Posting.Workplace.REMOTE and rng.random() < 0.5:
                posting.city = posting.region = ""  # remote from anywhere in the country
            if rng.random() < 0.3:
                posting.salary_min = posting.salary_max = None
                posting.salary_currency = posting.salary_period = ""
            posting.view_count = rng.randint(0, 900)
            # Applicants are real applications only, and the demo has none; listings that send
            # candidates to the employer's site count apply clicks instead.
            if rng.random() < 0.4:
                posting.applies_on_board, posting.apply_url = True, ""
            else:
                posting.apply_click_count = rng.randint(0, 60)
            key = (company.pk, posting.slug, posting.city)
            if key in seen:
                continue
            seen.add(key)
            posting.save()
            created += 1

        total = Posting.objects.count()
        open_now = Posting.objects.open().count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {created} postings added, {total} in all, {open_now} open."
            )
        )

    def _reference_listing(self, company: Company, now) -> int:
        """The reference page's listing, with its facts made to agree with each other."""
        existing = Posting.objects.filter(
            company=company, slug="internship-search-backend-infra-engineer"
        ).first()
        if existing is not None:
            # Keep the reference's timeline as the reference page tells it, whenever the demo
            # is loaded again, so it never drifts into reading closed.
            Posting.objects.filter(pk=existing.pk).update(
                posted_at=now - timedelta(days=59),
                updated_at=now - timedelta(minutes=29),
                last_checked_at=now - timedelta(minutes=12),
                deadline=now + timedelta(days=24),
                status=Posting.Status.PUBLISHED,
            )
            return 0
        posting = Posting(
            company=company,
            title="Internship - Search Backend Infra Engineer",
            slug="internship-search-backend-infra-engineer",
            city="Belgrade",
            country="RS",  # the reference said "Belgrade, United States"
            workplace=Posting.Workplace.ONSITE,
            employment_type=Posting.EmploymentType.INTERNSHIP,
            seniority=Posting.Seniority.INTERN,  # the reference said "Mid" for an internship
            practice_area=Posting.PracticeArea.ENGINEERING,
            status=Posting.Status.PUBLISHED,
            posted_at=now - timedelta(days=59),
            updated_at=now - timedelta(minutes=29),
            last_checked_at=now - timedelta(minutes=12),
            deadline=now + timedelta(days=24),  # the reference's deadline had passed while "open"
            applies_on_board=True,  # "0 Applicants" on the reference: applications come here
            view_count=15,
            applicant_count=0,
        )
        posting.set_description(REFERENCE_DESCRIPTION)
        posting.full_clean()
        posting.save()
        return 1
