"""What the log says about a request the site refused."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from accounts.factories import EmployerFactory, MemberFactory
from postings.factories import CompanyFactory

pytestmark = pytest.mark.django_db


def test_a_permission_refusal_is_one_line_with_its_reason_and_no_traceback(client, caplog):
    company = CompanyFactory()
    EmployerFactory(company=company)
    member = MemberFactory(company=company).user
    client.force_login(member)
    with caplog.at_level(logging.INFO, logger="django.request"):
        response = client.post(reverse("accounts:company"), {"name": "Taken over"})
    assert response.status_code == 403
    refusals = [r for r in caplog.records if r.name == "django.request"]
    assert len(refusals) == 1
    record = refusals[0]
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert record.getMessage() == (
        "Forbidden (Permission denied): /accounts/company/ "
        "(Only an owner can change the company profile.)"
    )
    assert "Traceback" not in caplog.text
