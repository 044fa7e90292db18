"""The account pages that are not about one company, opened by each kind of visitor."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import services
from accounts.factories import InvitationFactory

from .conftest import ROLES

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("employer:dashboard")
LOGIN = reverse("accounts:login")

# page -> {role: (status, where a redirect goes)}; a missing role means "same as 'member'".
PAGES = {
    "accounts:signup": {"anonymous": (200, None), "member": (302, DASHBOARD)},
    "accounts:login": {"anonymous": (200, None), "member": (302, DASHBOARD)},
    "accounts:password_change": {"anonymous": (302, LOGIN), "member": (200, None)},
    "accounts:password_change_done": {"anonymous": (302, LOGIN), "member": (200, None)},
    "accounts:password_reset": {"member": (200, None)},
    "accounts:password_reset_done": {"member": (200, None)},
    "accounts:password_reset_complete": {"member": (200, None)},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES)
def test_account_pages_by_role(client_as, role, page):
    expected = PAGES[page]
    status, location = expected.get(role, expected["member"])
    response = client_as(role).get(reverse(page))
    assert response.status_code == status
    if location:
        assert response["Location"].startswith(location)


@pytest.mark.parametrize("role", ROLES)
def test_resend_by_role(client_as, role):
    response = client_as(role).post(reverse("accounts:verify_resend"))
    assert response.status_code == 302
    if role == "anonymous":
        assert response["Location"].startswith(LOGIN)
    else:
        assert response["Location"] == DASHBOARD


@pytest.mark.parametrize("role", ROLES)
def test_logout_by_role(client_as, role):
    client = client_as(role)
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("role", ROLES)
def test_an_invitation_page_by_role_offers_what_that_visitor_can_do(
    client_as, role, company, owner
):
    invitation = InvitationFactory(company=company, invited_by=owner, email="new@example.com")
    url = reverse("accounts:invitation", args=[services.invitation_token(invitation)])
    response = client_as(role).get(url)
    assert response.status_code == 200
    html = response.content.decode()
    if role == "anonymous":
        assert "Create an account" in html
    elif role in ("member", "owner"):
        assert "You are already a member of Acme Robotics" in html
        assert "Join Acme Robotics</button>" not in html
    else:
        assert "but this invitation is for new@example.com" in html


@pytest.mark.parametrize("role", ROLES)
def test_a_verification_link_by_role_verifies_its_own_user_only(client_as, role, people):
    from accounts.factories import UserFactory

    target = UserFactory()
    url = reverse("accounts:verify", args=[services.verification_token(target)])
    assert client_as(role).get(url).status_code == 200
    target.refresh_from_db()
    assert target.is_email_verified
    for person in people.values():
        if person is not None:
            was = person.email_verified_at
            person.refresh_from_db()
            assert person.email_verified_at == was
