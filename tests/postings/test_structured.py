"""JobPosting structured data and link previews on a listing's page."""

from __future__ import annotations

import json
import re

import pytest

from postings.factories import (
    ClosedPostingFactory,
    ExpiredPostingFactory,
    PastDeadlinePostingFactory,
    PublishedPostingFactory,
)

pytestmark = pytest.mark.django_db

# Google's documented properties for a JobPosting (developers.google.com/search/docs/
# appearance/structured-data/job-posting).
REQUIRED = ("title", "description", "datePosted", "hiringOrganization")
RECOMMENDED = ("validThrough", "employmentType", "identifier", "directApply")
GOOGLE_EMPLOYMENT_TYPES = {
    "FULL_TIME", "PART_TIME", "CONTRACTOR", "TEMPORARY", "INTERN", "VOLUNTEER", "PER_DIEM", "OTHER",
}  # fmt: skip

LD_JSON = re.compile(r'<script[^>]*type="application/ld\+json"[^>]*>(.*?)</script>', re.DOTALL)


def structured_data(client, posting) -> list[dict]:
    html = client.get(posting.get_absolute_url()).content.decode()
    return [json.loads(block) for block in LD_JSON.findall(html)]


def test_an_open_listing_carries_every_required_and_recommended_property(client):
    posting = PublishedPostingFactory(
        workplace="onsite", city="Belgrade", region="", country="RS", employment_type="internship",
        salary_min=1000, salary_max=1500, salary_currency="EUR", salary_period="month",
        applies_on_board=True,
    )  # fmt: skip
    [data] = structured_data(client, posting)
    assert data["@context"].startswith("https://schema.org") and data["@type"] == "JobPosting"
    for name in REQUIRED + RECOMMENDED:
        assert name in data, name
    assert data["title"] == posting.title
    assert data["description"] == posting.description_html
    assert data["datePosted"] == posting.posted_at.isoformat()
    assert data["validThrough"] == posting.deadline.isoformat()
    assert data["employmentType"] == "INTERN" and data["employmentType"] in GOOGLE_EMPLOYMENT_TYPES
    assert data["hiringOrganization"]["name"] == posting.company.name
    assert data["hiringOrganization"]["sameAs"] == posting.company.website
    assert data["jobLocation"]["address"] == {
        "@type": "PostalAddress", "addressLocality": "Belgrade", "addressCountry": "RS",
    }  # fmt: skip
    assert data["baseSalary"] == {
        "@type": "MonetaryAmount",
        "currency": "EUR",
        "value": {
            "@type": "QuantitativeValue",
            "minValue": 1000,
            "maxValue": 1500,
            "unitText": "MONTH",
        },
    }
    assert data["identifier"]["value"] == str(posting.pk)
    assert data["directApply"] is True
    assert "jobLocationType" not in data


def test_a_remote_role_without_an_address_says_telecommute_and_where_applicants_may_live(client):
    posting = PublishedPostingFactory(
        workplace="remote", city="", region="", country="DE", applies_on_board=False,
        salary_min=None, salary_max=None, salary_currency="", salary_period="",
    )  # fmt: skip
    [data] = structured_data(client, posting)
    assert data["jobLocationType"] == "TELECOMMUTE"
    assert data["applicantLocationRequirements"] == {"@type": "Country", "name": "Germany"}
    assert "jobLocation" not in data
    assert "baseSalary" not in data
    assert data["directApply"] is False


@pytest.mark.parametrize(
    "factory", [ClosedPostingFactory, ExpiredPostingFactory, PastDeadlinePostingFactory]
)
def test_a_listing_that_is_not_open_has_no_job_posting_markup(client, factory):
    posting = factory()
    assert client.get(posting.get_absolute_url()).status_code == 200
    assert structured_data(client, posting) == []


def test_script_in_a_listing_cannot_break_out_of_the_structured_data(client):
    title = '</script><script>alert("x")</script>'
    posting = PublishedPostingFactory(title=title)
    html = client.get(posting.get_absolute_url()).content.decode()
    assert '<script>alert("x")' not in html
    [data] = [json.loads(block) for block in LD_JSON.findall(html)]
    assert data["title"] == title


def test_a_shared_link_previews_with_title_company_and_place_and_names_one_canonical_url(client):
    posting = PublishedPostingFactory(workplace="onsite", city="Lyon", region="", country="FR")
    html = client.get(posting.get_absolute_url()).content.decode()
    url = f"http://testserver{posting.get_absolute_url()}"
    assert f'<link rel="canonical" href="{url}">' in html
    assert f'<meta property="og:url" content="{url}">' in html
    assert f'<meta property="og:title" content="{posting.title} at {posting.company.name}">' in html
    assert '<meta property="og:description" content="Lyon, France · On-site' in html
    assert '<meta name="twitter:card" content="summary">' in html


def test_a_closed_listing_previews_as_closed(client):
    posting = ClosedPostingFactory()
    html = client.get(posting.get_absolute_url()).content.decode()
    assert f'content="{posting.title} at {posting.company.name} (closed)"' in html
