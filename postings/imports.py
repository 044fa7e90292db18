"""Importing aggregated listings: a source page with a JobPosting becomes (or updates) a listing.

The canonical source URL is the key: importing the same page again, under any spelling of its
address, updates the listing it made instead of making another.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import duplicates, freshness, sources
from .models import Company, Posting, slug_for

logger = logging.getLogger(__name__)


class ImportRefused(Exception):
    """The page cannot become a listing; the message says why, for the person importing."""


@dataclass(frozen=True)
class ImportResult:
    posting: Posting
    created: bool
    verdict: str = ""  # for an existing listing: what its re-check decided

    def describe(self) -> str:
        what = "created" if self.created else f"already listed ({self.verdict or 'checked'})"
        return f"{what}: #{self.posting.pk} {self.posting.title} <{self.posting.source_url}>"


def import_url(url: str) -> ImportResult:
    """Create the listing for a source page, or re-check the one that already has it."""
    try:
        canonical = sources.canonical_url(url)
    except ValueError as exc:
        raise ImportRefused(str(exc)) from exc
    existing = Posting.objects.filter(source_url=canonical).first()
    if existing is not None:
        return ImportResult(existing, created=False, verdict=freshness.check_listing(existing.pk))
    try:
        fetched = sources.fetch(canonical)
    except sources.SourceRefused as exc:  # an inside address: retrying will not help
        raise ImportRefused(str(exc)) from exc
    if fetched.status != 200:
        raise ImportRefused(f"the page answered {fetched.status}")
    page = sources.read_page(fetched.body)
    if page.job is None:
        raise ImportRefused("the page has no schema.org JobPosting (JSON-LD)")
    try:
        posting = _create(canonical, page, fetched)
    except IntegrityError:  # imported by someone else meanwhile: that one is the listing
        existing = Posting.objects.get(source_url=canonical)
        return ImportResult(existing, created=False, verdict=freshness.check_listing(existing.pk))
    logger.info("imported posting=%s from %s", posting.pk, canonical)
    return ImportResult(posting, created=True)


@transaction.atomic
def _create(canonical: str, page: sources.Page, fetched: sources.Fetched) -> Posting:
    job = page.job
    now = timezone.now()
    if job.problems:
        raise ImportRefused("the JobPosting has " + ", ".join(job.problems))
    if job.deadline is not None and job.deadline <= now:
        raise ImportRefused(f"the job closed on {job.deadline:%Y-%m-%d} (validThrough)")
    company = _company(job)
    if company.is_suspended:
        raise ImportRefused(f"{company.name} is suspended")
    posted_at = min(job.posted_at or now, now)
    posting = Posting(
        company=company,
        title=job.title,
        city=job.city,
        region=job.region,
        country=job.country,
        workplace=job.workplace or Posting.Workplace.ONSITE,
        employment_type=job.employment_type or Posting.EmploymentType.FULL_TIME,
        seniority=job.seniority,
        practice_area=job.practice_area,
        salary_min=job.salary_min,
        salary_max=job.salary_max,
        salary_currency=job.salary_currency,
        salary_period=job.salary_period,
        deadline=job.deadline,
        status=Posting.Status.PUBLISHED,
        posted_at=posted_at,
        updated_at=posted_at,
        last_checked_at=now,
        check_attempted_at=now,
        check_note="Imported: the source lists this job.",
        source_url=canonical,
        apply_url=canonical,
        source_etag=fetched.etag,
        source_last_modified=fetched.last_modified,
        source_hash=page.content_hash,
    )
    posting.set_description_html(job.description_html)
    try:
        posting.full_clean(exclude=["slug", "company"])
    except ValidationError as exc:
        raise ImportRefused("; ".join(exc.messages)) from exc
    posting.save()
    transaction.on_commit(partial(duplicates.flag_likely_duplicates, posting_id=posting.pk))
    return posting


def _company(job: sources.JobFacts) -> Company:
    name = job.company_name or "Unnamed company"
    company = Company.objects.filter(name__iexact=name).order_by("pk").first()
    if company is not None:
        return company
    base = slug_for(name, "company")
    slug, n = base, 1
    while Company.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return Company.objects.create(name=name, slug=slug, website=job.company_website)
