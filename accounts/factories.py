"""Factories for users, employers and invitations, one per state.

Every user's password is ``PASSWORD``, so tests and demo data can log in as anyone.
"""

from __future__ import annotations

import factory
from django.utils import timezone

from postings.factories import CompanyFactory
from postings.models import Membership

from .models import Invitation, User

PASSWORD = "correct-horse-battery-staple"  # noqa: S105 (a known test and demo password)


class UserFactory(factory.django.DjangoModelFactory):
    """A user who signed up and has not yet followed the verification link."""

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    full_name = factory.Faker("name")
    password = PASSWORD

    @classmethod
    def _create(cls, model_class, *args, **kwargs) -> User:
        return model_class.objects.create_user(*args, **kwargs)


class VerifiedUserFactory(UserFactory):
    email_verified_at = factory.LazyFunction(timezone.now)


class EmployerFactory(factory.django.DjangoModelFactory):
    """An owner: a verified user, a company and the membership that makes them its owner.

    The factory returns the membership: ``employer.user``, ``employer.company``.
    """

    class Meta:
        model = Membership

    user = factory.SubFactory(VerifiedUserFactory)
    company = factory.SubFactory(CompanyFactory)
    role = Membership.Role.OWNER


class MemberFactory(EmployerFactory):
    """A colleague who joined someone's company (not an owner)."""

    role = Membership.Role.MEMBER


class InvitationFactory(factory.django.DjangoModelFactory):
    """A pending invitation from a company's owner."""

    class Meta:
        model = Invitation

    company = factory.SubFactory(CompanyFactory)
    email = factory.Sequence(lambda n: f"colleague{n}@example.com")
    invited_by = factory.SubFactory(VerifiedUserFactory)
