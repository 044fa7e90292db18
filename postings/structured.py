"""A listing as schema.org ``JobPosting`` structured data, for search engines.

Only open listings are described: a closed or expired one must never be advertised as open, so
it gets no markup at all. Everything here is also visible on the listing's page.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse

from .models import Posting

# Google's employmentType values.
EMPLOYMENT_TYPES = {
    "full_time": "FULL_TIME", "part_time": "PART_TIME", "contract": "CONTRACTOR",
    "internship": "INTERN", "temporary": "TEMPORARY", "volunteer": "VOLUNTEER",
}  # fmt: skip
SALARY_UNITS = {"hour": "HOUR", "day": "DAY", "week": "WEEK", "month": "MONTH", "year": "YEAR"}


def job_posting_data(posting: Posting, *, site_url: str = "") -> dict[str, Any] | None:
    """The JobPosting of an open listing, or None for any other."""
    if not posting.is_open:
        return None
    site_url = site_url or settings.SITE_URL
    company = posting.company
    organization: dict[str, Any] = {"@type": "Organization", "name": company.name}
    if company.website:
        organization["sameAs"] = company.website
    if company.logo:
        organization["logo"] = site_url + reverse("accounts:company_logo", args=[company.slug])
    data: dict[str, Any] = {
        "@context": "https://schema.org/",
        "@type": "JobPosting",
        "title": posting.title,
        "description": posting.description_html,
        "datePosted": posting.posted_at.isoformat(),
        "employmentType": EMPLOYMENT_TYPES[posting.employment_type],
        "hiringOrganization": organization,
        "identifier": {"@type": "PropertyValue", "name": company.name, "value": str(posting.pk)},
        "url": site_url + posting.get_absolute_url(),
        "directApply": posting.applies_on_board,
    }
    if posting.deadline:
        data["validThrough"] = posting.deadline.isoformat()
    address = {"@type": "PostalAddress", "addressCountry": str(posting.country)}
    if posting.city:
        address["addressLocality"] = posting.city
    if posting.region:
        address["addressRegion"] = posting.region
    if posting.workplace == Posting.Workplace.REMOTE:
        data["jobLocationType"] = "TELECOMMUTE"
        data["applicantLocationRequirements"] = {
            "@type": "Country",
            "name": posting.country.name,
        }
    if posting.workplace != Posting.Workplace.REMOTE or posting.city:
        data["jobLocation"] = {"@type": "Place", "address": address}
    if posting.has_salary:
        value: dict[str, Any] = {
            "@type": "QuantitativeValue",
            "unitText": SALARY_UNITS[posting.salary_period],
        }
        if posting.salary_min is not None:
            value["minValue"] = posting.salary_min
        if posting.salary_max is not None:
            value["maxValue"] = posting.salary_max
        data["baseSalary"] = {
            "@type": "MonetaryAmount",
            "currency": posting.salary_currency,
            "value": value,
        }
    return data
