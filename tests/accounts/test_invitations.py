"""The members page, inviting a colleague by email, and joining from the emailed link."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.core import mail
from django.urls import reverse

from accounts import services
from accounts.factories import PASSWORD, InvitationFactory, UserFactory, VerifiedUserFactory
from accounts.models import Invitation, User
from postings.models import Membership

from .conftest import ROLES

pytestmark = pytest.mark.django_db

MEMBERS = reverse("accounts:company_members")


def invitation_path(message) -> str:
    return re.search(r"http://testserver(/accounts/invitations/\S+/)", message.body).group(1)


def invite(client, email="newbie@example.com"):
    return client.post(MEMBERS, {"email": email})


# --- The members page by role ----------------------------------------------------------------

MEMBERS_GET = {
    "anonymous": 302,
    "no_company": 302,
    "member": 200,
    "owner": 200,
    "other_company": 200,
}


@pytest.mark.parametrize("role", ROLES)
def test_members_page_by_role_lists_only_the_viewers_own_company(client_as, role, people):
    InvitationFactory(company=people["owner"].memberships.get().company, email="pending@x.example")
    response = client_as(role).get(MEMBERS)
    assert response.status_code == MEMBERS_GET[role]
    if response.status_code != 200:
        expected = (
            reverse("accounts:login") if role == "anonymous" else reverse("accounts:company_create")
        )
        assert response["Location"].startswith(expected)
        return
    html = response.content.decode()
    if role == "other_company":
        assert "hank@globex.example" in html
        assert "olga@acme.example" not in html
        assert "pending@x.example" not in html
    else:
        assert "olga@acme.example" in html and "max@acme.example" in html
    # Only an owner sees pending invitations and the invite form.
    assert ("pending@x.example" in html) == (role == "owner")
    assert ("Send invitation" in html) == (role in ("owner", "other_company"))


INVITE_POST = {
    "anonymous": 302,
    "no_company": 302,
    "member": 403,
    "owner": 302,
    "other_company": 302,
}


@pytest.mark.parametrize("role", ROLES)
def test_inviting_by_role_invites_only_to_the_inviters_own_company(
    client_as, role, company, other_company
):
    response = invite(client_as(role))
    assert response.status_code == INVITE_POST[role]
    invitations = Invitation.objects.filter(email="newbie@example.com")
    if role == "owner":
        assert invitations.get().company == company
    elif role == "other_company":
        assert invitations.get().company == other_company
    else:
        assert not invitations.exists()


CANCEL_POST = {
    "anonymous": 302,
    "no_company": 302,
    "member": 403,
    "owner": 302,
    "other_company": 404,
}


@pytest.mark.parametrize("role", ROLES)
def test_cancelling_an_invitation_by_role(client_as, role, company, owner):
    invitation = InvitationFactory(company=company, invited_by=owner)
    url = reverse("accounts:invitation_cancel", args=[invitation.pk])
    response = client_as(role).post(url)
    assert response.status_code == CANCEL_POST[role]
    assert Invitation.objects.filter(pk=invitation.pk).exists() == (role != "owner")


def test_a_guessed_invitation_id_of_another_company_is_a_404(client, outsider, company, owner):
    invitation = InvitationFactory(company=company, invited_by=owner)
    client.force_login(outsider)
    assert (
        client.post(reverse("accounts:invitation_cancel", args=[invitation.pk])).status_code == 404
    )
    assert client.post(reverse("accounts:invitation_cancel", args=[999_999])).status_code == 404
    assert (
        client.get(reverse("accounts:invitation_cancel", args=[invitation.pk])).status_code == 405
    )


# --- Sending ---------------------------------------------------------------------------------


def test_owner_invites_a_colleague_by_email(client, owner, company):
    client.force_login(owner)
    response = invite(client, "  NewBie@Example.com ")
    assert response["Location"] == MEMBERS
    invitation = Invitation.objects.get()
    assert invitation.email == "newbie@example.com"
    assert invitation.invited_by == owner
    assert invitation.company == company
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["newbie@example.com"]
    assert "invited you to join Acme Robotics" in message.subject
    assert invitation_path(message)
    html = client.get(MEMBERS).content.decode()
    assert "Invitation sent to newbie@example.com" in html
    assert "newbie@example.com" in html


def test_inviting_the_same_address_again_replaces_the_old_link(client, owner):
    client.force_login(owner)
    invite(client)
    invite(client)
    assert Invitation.objects.count() == 1
    old, new = (invitation_path(m) for m in mail.outbox)
    assert client.get(old).status_code == 400
    assert "no longer valid" in client.get(old).content.decode()
    assert client.get(new).status_code == 200


def test_inviting_a_member_is_refused_next_to_the_field(client, owner, member):
    client.force_login(owner)
    response = invite(client, member.email.upper())
    assert response.status_code == 200
    assert "already a member of Acme Robotics" in " ".join(response.context["form"].errors["email"])
    assert mail.outbox == []


@pytest.mark.parametrize(
    "email", ["", "nope", "a" * 300 + "@x.example", "<b>@x.example"], ids=str.__len__
)
def test_bad_invite_addresses_are_refused_and_kept(client, owner, email):
    client.force_login(owner)
    response = invite(client, email)
    assert response.status_code == 200
    assert "email" in response.context["form"].errors
    assert not Invitation.objects.exists()


def test_an_unverified_owner_cannot_invite(client, owner):
    owner.email_verified_at = None
    owner.save()
    client.force_login(owner)
    assert "Verify your own email address first" in client.get(MEMBERS).content.decode()
    response = invite(client)
    assert response.status_code == 200
    assert "Verify your own email address first" in response.content.decode()
    assert not Invitation.objects.exists()


def test_invitations_are_rate_limited_per_owner(client, owner):
    client.force_login(owner)
    for n in range(30):
        invite(client, f"c{n}@example.com")
    response = invite(client, "one-too-many@example.com")
    assert response.status_code == 429
    assert len(mail.outbox) == 30


def test_invitations_to_one_mailbox_are_capped_per_day(client, owner, settings):
    settings.ACCOUNT_EMAILS_PER_DAY = 2
    client.force_login(owner)
    for tag in ("a", "b", "c"):
        response = invite(client, f"newbie+{tag}@example.com")
        assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["newbie+a@example.com"], ["newbie+b@example.com"]]
    page = client.get(MEMBERS).content.decode()
    assert "could not be sent just now" in page
    assert "newbie+c@example.com" in page  # saved, to send again later


# --- Following the link ----------------------------------------------------------------------


@pytest.fixture
def invitation(company, owner):
    return InvitationFactory(company=company, invited_by=owner, email="newbie@example.com")


@pytest.fixture
def link(invitation):
    return reverse("accounts:invitation", args=[services.invitation_token(invitation)])


def test_a_visitor_sees_the_invitation_with_sign_up_and_log_in(client, link):
    response = client.get(link)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Join Acme Robotics" in html
    assert "newbie@example.com" in html
    assert "Create an account" in html and "Log in to join" in html


def test_signing_up_from_the_invitation_prefills_the_email_and_joins(client, link, invitation):
    token = link.rstrip("/").rsplit("/", 1)[-1]
    response = client.get(reverse("accounts:signup"), {"invitation": token})
    assert 'value="newbie@example.com"' in response.content.decode()
    response = client.post(
        reverse("accounts:signup"),
        {"email": "newbie@example.com", "password": "tangerine-lighthouse-42", "invitation": token},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("employer:dashboard")
    user = User.objects.get(email="newbie@example.com")
    # The emailed link proved the address: no separate verification needed.
    assert user.is_email_verified
    assert mail.outbox == []
    membership = Membership.objects.get(user=user)
    assert membership.company == invitation.company
    assert membership.role == Membership.Role.MEMBER
    invitation.refresh_from_db()
    assert invitation.accepted_by == user
    assert invitation.accepted_at is not None


def test_the_sign_up_page_of_an_invitation_logs_in_back_to_it(client, link):
    token = link.rstrip("/").rsplit("/", 1)[-1]
    signup = reverse("accounts:signup") + f"?invitation={token}"
    expected = f'href="{reverse("accounts:login")}?next={quote(link)}"'
    assert expected in client.get(signup).content.decode()
    # A form sent back without its invitation field links to the one in the address; with a
    # broken one it is a plain sign-up. Never a 500.
    response = client.post(signup, {"email": "", "invitation": ""})
    assert response.status_code == 200 and expected in response.content.decode()
    response = client.post(signup, {"email": "", "invitation": "a/b"})
    assert response.status_code == 200 and "?next=" not in response.content.decode()


def test_signing_up_from_an_invitation_with_another_email_is_a_plain_signup(client, link):
    token = link.rstrip("/").rsplit("/", 1)[-1]
    client.post(
        reverse("accounts:signup"),
        {"email": "other@example.com", "password": "tangerine-lighthouse-42", "invitation": token},
    )
    user = User.objects.get(email="other@example.com")
    assert not user.is_email_verified
    assert not Membership.objects.filter(user=user).exists()
    assert len(mail.outbox) == 1  # the verification link


def test_logging_in_from_the_invitation_returns_to_it_and_joining_is_a_post(client, link):
    user = UserFactory(email="newbie@example.com")
    html = client.get(link).content.decode()
    login_url = re.search(r'href="(/accounts/login/\?next=[^"]+)"', html).group(1)
    response = client.post(
        login_url.replace("&amp;", "&"),
        {"username": "newbie@example.com", "password": PASSWORD},
        REMOTE_ADDR="10.1.1.1",
    )
    assert response["Location"] == link
    html = client.get(link).content.decode()
    assert "Join Acme Robotics</button>" in html
    response = client.post(link)
    assert response.status_code == 302
    assert Membership.objects.get(user=user).role == Membership.Role.MEMBER
    user.refresh_from_db()
    assert user.is_email_verified
    # The link works once.
    response = client.get(link)
    assert response.status_code == 400
    assert "already been accepted" in response.content.decode()


def test_joining_needs_a_login(client, link):
    response = client.post(link)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert not Membership.objects.filter(user__email="newbie@example.com").exists()


def test_someone_logged_in_with_another_email_cannot_join(client, link, loner):
    client.force_login(loner)
    html = client.get(link).content.decode()
    assert "but this invitation is for newbie@example.com" in html
    assert "Join Acme Robotics</button>" not in html
    response = client.post(link)
    assert response.status_code == 400
    assert "This invitation is for newbie@example.com" in response.content.decode()
    assert not Membership.objects.filter(user=loner).exists()


def test_someone_already_in_another_company_cannot_join_a_second(client, company, owner):
    busy = VerifiedUserFactory(email="busy@example.com")
    from accounts.factories import EmployerFactory

    EmployerFactory(user=busy)
    invitation = InvitationFactory(company=company, invited_by=owner, email=busy.email)
    link = reverse("accounts:invitation", args=[services.invitation_token(invitation)])
    client.force_login(busy)
    response = client.post(link)
    assert response.status_code == 400
    assert "an account acts for one company" in response.content.decode()
    assert not company.has_member(busy)


def test_an_expired_invitation_says_to_ask_for_a_new_one(client, link, settings):
    settings.INVITATION_MAX_AGE = timedelta(seconds=-1)
    response = client.get(link)
    assert response.status_code == 400
    assert "This invitation has expired" in response.content.decode()


def test_a_tampered_invitation_link_is_not_valid(client, link):
    response = client.get(link.replace("/invitations/", "/invitations/x"))
    assert response.status_code == 400
    assert "not valid" in response.content.decode()


def test_a_cancelled_invitation_no_longer_works(client, link, invitation, owner):
    services.invitation_cancel(invitation=invitation, by=owner)
    response = client.get(link)
    assert response.status_code == 400
    assert "cancelled or replaced" in response.content.decode()


def test_a_member_following_their_invitation_again_is_told_so(client, link, invitation):
    user = VerifiedUserFactory(email="newbie@example.com")
    Membership.objects.create(company=invitation.company, user=user)
    client.force_login(user)
    assert "You are already a member" in client.get(link).content.decode()


def test_invitation_expiry_is_reset_by_sending_again(owner, company):
    first = services.invitation_send(
        company=company, email="a@example.com", invited_by=owner, site_url="http://x"
    )
    second = services.invitation_send(
        company=company, email="a@example.com", invited_by=owner, site_url="http://x"
    )
    assert not Invitation.objects.filter(pk=first.pk).exists()
    assert services.invitation_from_token(token=services.invitation_token(second)) == second
