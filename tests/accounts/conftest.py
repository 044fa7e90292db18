"""People around one company, as every company view is tested for each of them."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.factories import EmployerFactory, MemberFactory, VerifiedUserFactory
from postings.factories import CompanyFactory

ROLES = ["anonymous", "no_company", "member", "owner", "other_company"]


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # The real hasher takes a third of a second per password; these tests hash hundreds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def company(db):
    return CompanyFactory(name="Acme Robotics", slug="acme-robotics")


@pytest.fixture
def owner(company):
    return EmployerFactory(company=company, user__email="olga@acme.example").user


@pytest.fixture
def member(company, owner):
    return MemberFactory(company=company, user__email="max@acme.example").user


@pytest.fixture
def other_company(db):
    return CompanyFactory(name="Globex", slug="globex")


@pytest.fixture
def outsider(other_company):
    """The owner of another company."""
    return EmployerFactory(company=other_company, user__email="hank@globex.example").user


@pytest.fixture
def loner(db):
    """Logged in, verified, but not (yet) in any company."""
    return VerifiedUserFactory(email="lena@example.com")


@pytest.fixture
def people(owner, member, outsider, loner):
    return {
        "anonymous": None,
        "no_company": loner,
        "member": member,
        "owner": owner,
        "other_company": outsider,
    }


@pytest.fixture
def client_as(people):
    """``client_as("member")``: a fresh test client logged in as that person."""

    def make(role: str) -> Client:
        client = Client()
        if people[role] is not None:
            client.force_login(people[role])
        return client

    return make
