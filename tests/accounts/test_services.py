"""The account services and helpers, called directly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import RequestFactory

from accounts import lockout, services
from accounts.factories import (
    EmployerFactory,
    InvitationFactory,
    MemberFactory,
    UserFactory,
    VerifiedUserFactory,
)
from accounts.models import User
from accounts.templatetags.account_tags import duration
from postings.factories import CompanyFactory
from postings.models import Membership

pytestmark = pytest.mark.django_db


def test_user_signup_stores_the_email_lower_cased_and_sends_one_email():
    user = services.user_signup(
        email=" Grace@Navy.MIL ", password="x-very-long-pw-1", site_url="https://jobs.example"
    )
    assert user.email == "grace@navy.mil"
    assert not user.is_email_verified
    assert len(mail.outbox) == 1
    assert "https://jobs.example/accounts/verify/" in mail.outbox[0].body


def test_user_signup_for_a_taken_address_creates_nothing_and_emails_its_owner():
    VerifiedUserFactory(email="grace@navy.mil")
    user = services.user_signup(
        email="Grace@navy.mil", password="x-very-long-pw-1", site_url="https://jobs.example"
    )
    assert user is None
    assert User.objects.count() == 1
    [message] = mail.outbox
    assert message.to == ["grace@navy.mil"]
    assert "https://jobs.example/accounts/password/reset/" in message.body


def test_user_signup_from_an_invitation_to_a_taken_address_says_to_log_in():
    invitation = InvitationFactory(email="grace@navy.mil")
    VerifiedUserFactory(email="grace@navy.mil")
    with pytest.raises(ValidationError, match=r"already exists\. Log in to join"):
        services.user_signup(
            email="grace@navy.mil", password="x-very-long-pw-1", site_url="", invitation=invitation
        )
    assert mail.outbox == []


def test_signup_mark_is_bound_to_the_account_and_its_password():
    ada, grace = UserFactory(), UserFactory()
    mark = services.signup_mark(ada)
    assert services.signup_mark_matches(mark, ada)
    assert not services.signup_mark_matches(mark, grace)
    ada.set_password("another-long-password-7")
    assert not services.signup_mark_matches(mark, ada)
    for not_a_mark in [None, "", 12, ["x"], services.signup_mark(None)]:
        assert not services.signup_mark_matches(not_a_mark, grace)


def test_signup_mark_for_a_taken_address_is_random_and_looks_like_a_real_one():
    taken = {services.signup_mark(None) for _ in range(3)}
    assert len(taken) == 3
    assert {len(mark) for mark in taken} == {len(services.signup_mark(UserFactory()))}
    assert all(set(mark) <= set("0123456789abcdef") for mark in taken)


def test_user_verify_email_marks_the_user_and_refuses_a_second_time():
    user = UserFactory()
    token = services.verification_token(user)
    assert services.user_verify_email(token=token).is_email_verified
    with pytest.raises(services.LinkUsed):
        services.user_verify_email(token=token)


def test_a_verification_link_for_a_deleted_user_is_not_valid():
    user = UserFactory()
    token = services.verification_token(user)
    user.delete()
    with pytest.raises(services.LinkInvalid):
        services.user_verify_email(token=token)


def test_emails_are_plain_text_without_html_escaping():
    owner = EmployerFactory(company__name="Smith & Sons <Ltd>", user__full_name="Ann O'Neil")
    services.invitation_send(
        company=owner.company, email="c@example.com", invited_by=owner.user, site_url="http://x"
    )
    message = mail.outbox[0]
    assert message.subject == "Ann O'Neil invited you to join Smith & Sons <Ltd> on Jobboard"
    assert "Smith & Sons <Ltd>" in message.body
    assert "&amp;" not in message.body


def test_company_create_makes_one_owner_membership():
    user = VerifiedUserFactory()
    company = services.company_create(owner=user, name="  Hooli  ", company_type="corporation")
    assert company.name == "Hooli"
    membership = Membership.objects.get(company=company)
    assert (membership.user, membership.role) == (user, Membership.Role.OWNER)


def test_company_update_by_a_member_is_refused():
    member = MemberFactory()
    with pytest.raises(PermissionDenied):
        services.company_update(
            company=member.company,
            by=member.user,
            name="X",
            company_type="startup",
            website="",
            description="",
        )


def test_invitation_send_by_a_member_is_refused():
    member = MemberFactory()
    with pytest.raises(PermissionDenied):
        services.invitation_send(
            company=member.company, email="a@b.example", invited_by=member.user, site_url=""
        )


def test_invitation_accept_twice_is_refused_and_leaves_one_membership():
    invitation = InvitationFactory(email="new@example.com")
    user = UserFactory(email="new@example.com")
    services.invitation_accept(invitation=invitation, user=user)
    with pytest.raises(services.LinkUsed):
        services.invitation_accept(invitation=invitation, user=user)
    assert Membership.objects.filter(user=user).count() == 1


def test_invitation_accept_by_another_address_is_refused():
    invitation = InvitationFactory(email="new@example.com")
    with pytest.raises(ValidationError):
        services.invitation_accept(invitation=invitation, user=UserFactory())
    assert not Membership.objects.filter(company=invitation.company).exists()


def test_invitation_cancel_by_a_non_owner_is_refused():
    invitation = InvitationFactory(company=CompanyFactory())
    with pytest.raises(PermissionDenied):
        services.invitation_cancel(invitation=invitation, by=VerifiedUserFactory())


def test_invitation_tokens_expire_after_the_setting(settings):
    invitation = InvitationFactory()
    token = services.invitation_token(invitation)
    settings.INVITATION_MAX_AGE = timedelta(seconds=-1)
    with pytest.raises(services.LinkExpired):
        services.invitation_from_token(token=token)


@pytest.mark.parametrize(
    ("post", "credentials", "expected"),
    [
        ({"username": " Ann@X.COM "}, None, "ann@x.com"),
        ({}, {"username": "BOB@Y.org"}, "bob@y.org"),
        ({}, None, ""),
    ],
)
def test_axes_counts_failures_against_the_lower_cased_email(post, credentials, expected):
    request = RequestFactory().post("/accounts/login/", post)
    assert lockout.username(request, credentials) == expected


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(minutes=15), "15 minutes"),
        (timedelta(minutes=14, seconds=59), "15 minutes"),
        (timedelta(seconds=20), "1 minute"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=2, minutes=1), "2 hours 1 minute"),
        (None, ""),
    ],
)
def test_the_lockout_wait_reads_in_words(delta, words):
    assert duration(delta) == words
