"""Log-in, lock-out after repeated failures, log-out, and changing or resetting a password."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.factories import PASSWORD, EmployerFactory, UserFactory, VerifiedUserFactory

pytestmark = pytest.mark.django_db

LOGIN = reverse("accounts:login")
NEW_PASSWORD = "quartz-meadow-lantern-7"


def log_in(client, email, password, address="10.0.0.1", **extra):
    return client.post(
        LOGIN, {"username": email, "password": password, **extra}, REMOTE_ADDR=address
    )


def test_login_page_asks_for_email_and_password(client):
    response = client.get(LOGIN)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username">Email</label>' in html
    assert 'type="email" name="username"' in html
    assert 'autocomplete="current-password"' in html
    assert "<title>Log in · Jobboard</title>" in html


def test_login_with_email_in_any_case_goes_to_the_dashboard(client, owner):
    response = log_in(client, "  OLGA@Acme.Example ", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("employer:dashboard")
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_login_follows_a_safe_next_and_ignores_an_offsite_one(client, owner):
    response = log_in(client, owner.email, PASSWORD, next="/accounts/company/members/")
    assert response["Location"] == "/accounts/company/members/"
    client.logout()
    response = log_in(client, owner.email, PASSWORD, next="https://evil.example/")
    assert response["Location"] == reverse("employer:dashboard")


def test_unverified_user_can_log_in(client):
    user = UserFactory()
    assert log_in(client, user.email, PASSWORD).status_code == 302


def test_wrong_password_says_so_and_keeps_the_email(client, owner):
    response = log_in(client, owner.email, "wrong")
    assert response.status_code == 200
    html = response.content.decode()
    assert "That email and password do not match an account" in html
    assert f'value="{owner.email}"' in html
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "data",
    [{}, {"username": "x" * 100_000, "password": "y"}, {"username": "<b>", "password": "p" * 5000}],
    ids=["missing", "huge-email", "huge-password"],
)
def test_hostile_login_input_gets_the_form_back(client, data):
    response = client.post(LOGIN, data, REMOTE_ADDR="10.0.0.9")
    assert response.status_code == 200
    assert response.context["form"].errors


def test_logged_in_user_is_sent_on_from_the_login_page(client, owner):
    client.force_login(owner)
    response = client.get(LOGIN)
    assert response.status_code == 302


# --- Lock-out (django-axes) ------------------------------------------------------------------


def test_an_account_is_locked_after_five_failures_from_any_addresses(client, owner, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    for n in range(4):
        assert log_in(client, owner.email, "wrong", address=f"10.0.1.{n}").status_code == 200
    # The fifth failure is the one that locks, and says so.
    assert log_in(client, owner.email, "wrong", address="10.0.1.4").status_code == 429
    # Even the right password, from a new address, in another case, is refused for now.
    response = log_in(client, owner.email.upper(), PASSWORD, address="10.0.2.1")
    assert response.status_code == 429
    assert "accounts/locked_out.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert "Logging in is paused" in html
    assert "Try again in <strong>15 minutes</strong>" in html
    until = re.search(r'<time datetime="([^"]*)"', html)[1]  # HTML allows no microseconds
    assert re.fullmatch(r"[-\d]{10}T\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", until), until
    assert "_auth_user_id" not in client.session


def test_other_accounts_are_not_locked_by_one_accounts_failures(client, owner, member):
    for n in range(5):
        log_in(client, owner.email, "wrong", address=f"10.0.1.{n}")
    assert log_in(client, member.email, PASSWORD, address="10.0.3.1").status_code == 302


def test_changing_the_case_of_the_email_does_not_reset_the_count(client, owner):
    for variant in [
        "olga@acme.example",
        "OLGA@acme.example",
        "Olga@Acme.example",
        "olga@ACME.EXAMPLE",
    ]:
        log_in(client, variant, "wrong", address="10.0.4.1")
    log_in(client, "oLgA@acme.example", "wrong", address="10.0.4.2")
    assert log_in(client, owner.email, PASSWORD, address="10.0.4.3").status_code == 429


def test_an_address_is_locked_after_five_failures_for_any_accounts(client, owner):
    for n in range(5):
        log_in(client, f"guess{n}@acme.example", "wrong", address="192.0.2.7")
    response = log_in(client, owner.email, PASSWORD, address="192.0.2.7")
    assert response.status_code == 429
    assert "Logging in is paused" in response.content.decode()
    # The account itself is fine from elsewhere.
    assert log_in(client, owner.email, PASSWORD, address="192.0.2.8").status_code == 302


def test_a_successful_login_clears_earlier_failures(client, owner):
    for _ in range(4):
        log_in(client, owner.email, "wrong", address="10.0.5.1")
    assert log_in(client, owner.email, PASSWORD, address="10.0.5.1").status_code == 302
    client.logout()
    for _ in range(4):
        log_in(client, owner.email, "wrong", address="10.0.5.1")
    assert log_in(client, owner.email, PASSWORD, address="10.0.5.1").status_code == 302


def test_the_lockout_time_comes_from_settings(client, owner, settings):
    from datetime import timedelta

    settings.AXES_COOLOFF_TIME = timedelta(hours=1, minutes=30)
    for _ in range(5):
        log_in(client, owner.email, "wrong")
    html = log_in(client, owner.email, PASSWORD).content.decode()
    assert "Try again in <strong>1 hour 30 minutes</strong>" in html


# --- Log-out ---------------------------------------------------------------------------------


def test_logout_is_a_post_that_ends_the_session(client, owner):
    client.force_login(owner)
    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("postings:list")
    assert "_auth_user_id" not in client.session


# --- Navigation ------------------------------------------------------------------------------


def test_visitors_see_post_a_job_and_log_in(client):
    html = client.get(reverse("postings:list")).content.decode()
    assert f'<a href="{reverse("accounts:signup")}">Post a job</a>' in html
    assert f'<a href="{LOGIN}">Log in</a>' in html
    assert "Log out" not in html


def test_logged_in_users_see_dashboard_company_and_a_log_out_button(client, owner):
    client.force_login(owner)
    html = client.get(reverse("postings:list")).content.decode()
    assert f'<a href="{reverse("employer:dashboard")}">Dashboard</a>' in html
    assert f'<a href="{reverse("accounts:company")}">Company</a>' in html
    assert f'<form method="post" action="{reverse("accounts:logout")}"' in html
    assert "Post a job</a>" not in html


# --- Password change and reset ---------------------------------------------------------------


def test_password_change_needs_a_login(client):
    response = client.get(reverse("accounts:password_change"))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_password_change_keeps_the_user_logged_in(client, owner):
    client.force_login(owner)
    assert client.get(reverse("accounts:password_change")).status_code == 200
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response["Location"] == reverse("accounts:password_change_done")
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
    assert client.get(reverse("accounts:password_change_done")).status_code == 200


def test_password_change_with_a_wrong_old_password_is_refused(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert "old_password" in response.context["form"].errors


def test_a_new_password_longer_than_log_in_takes_is_refused(client, owner):
    client.force_login(owner)
    huge = "p" * 5000
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": huge, "new_password2": huge},
    )
    assert response.status_code == 200
    assert "at most 1024 characters" in str(response.context["form"].errors)
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def reset_link(client, email: str) -> str:
    response = client.post(reverse("accounts:password_reset"), {"email": email})
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert len(mail.outbox) == 1
    return re.search(r"http://testserver(/\S+)", mail.outbox[0].body).group(1)


def test_password_reset_by_email_sets_a_new_password(client, owner):
    path = reset_link(client, "OLGA@acme.example")
    assert mail.outbox[0].subject == "Reset your password on Jobboard"
    assert mail.outbox[0].to == [owner.email]
    response = client.get(path, follow=True)
    assert response.status_code == 200
    assert "Choose a new password" in response.content.decode()
    set_password_url = response.redirect_chain[-1][0]
    response = client.post(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response["Location"] == reverse("accounts:password_reset_complete")
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
    assert client.get(path, follow=True).context["validlink"] is False


def test_a_reset_password_longer_than_log_in_takes_is_refused(client, owner):
    path = reset_link(client, owner.email)
    set_password_url = client.get(path, follow=True).redirect_chain[-1][0]
    huge = "q" * 3000
    response = client.post(set_password_url, {"new_password1": huge, "new_password2": huge})
    assert response.status_code == 200
    assert "at most 1024 characters" in str(response.context["form"].errors)
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_password_reset_for_an_unknown_email_looks_the_same_and_sends_nothing(client):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert mail.outbox == []


def test_password_reset_lifts_the_lock_on_the_account(client, owner):
    for n in range(5):
        log_in(client, owner.email, "wrong", address=f"10.0.6.{n}")
    assert log_in(client, owner.email, PASSWORD, address="10.0.7.1").status_code == 429
    path = reset_link(client, owner.email)
    set_password_url = client.get(path, follow=True).redirect_chain[-1][0]
    client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert log_in(client, owner.email, NEW_PASSWORD, address="10.0.7.1").status_code == 302


def test_password_reset_requests_are_rate_limited(client):
    VerifiedUserFactory(email="ada@example.com")
    for _ in range(5):
        client.post(reverse("accounts:password_reset"), {"email": "ada@example.com"})
    response = client.post(reverse("accounts:password_reset"), {"email": "ada@example.com"})
    assert response.status_code == 429
    assert len(mail.outbox) == 5


def test_password_reset_emails_to_one_mailbox_are_capped_from_any_visitors(settings, caplog):
    settings.ACCOUNT_EMAILS_PER_DAY = 2
    for email in ("ada@example.com", "ada+1@example.com", "Ada+2@example.com"):
        VerifiedUserFactory(email=email.lower())
    for n in range(3):
        address = ["ada@example.com", "ADA+1@example.com", "ada+2@example.com"][n]
        response = Client(REMOTE_ADDR=f"10.0.9.{n}").post(
            reverse("accounts:password_reset"), {"email": address}
        )
        # The same page as for a sent email, or for no account at all.
        assert response["Location"] == reverse("accounts:password_reset_done")
    assert [m.to for m in mail.outbox] == [["ada@example.com"], ["ada+1@example.com"]]
    assert "password_reset email not sent: its mailbox had 2 today" in caplog.text


@pytest.mark.parametrize(
    "page", ["password_reset", "password_reset_done", "password_reset_complete"]
)
def test_password_reset_pages_render_for_visitors(client, page):
    assert client.get(reverse(f"accounts:{page}")).status_code == 200


def test_a_broken_reset_link_says_so(client):
    response = client.get(
        reverse("accounts:password_reset_confirm", args=["MQ", "bad-token"]), follow=True
    )
    assert response.status_code == 200
    assert "This link cannot be used" in response.content.decode()


@pytest.fixture
def moderator(db):
    user = UserFactory(email="mona@example.com")  # moderators need not verify their address
    user.groups.add(Group.objects.get(name="Moderators"))
    return user


def test_a_moderator_lands_on_the_moderation_queue(client, moderator):
    response = log_in(client, moderator.email, PASSWORD)
    assert response["Location"] == reverse("moderation:queue")
    client.logout()
    response = log_in(client, moderator.email, PASSWORD, next="/moderation/approvals/")
    assert response["Location"] == "/moderation/approvals/"
    client.logout()
    response = log_in(client, moderator.email, PASSWORD, next="https://evil.example/")
    assert response["Location"] == reverse("moderation:queue")
    # Already logged in, the log-in and sign-up pages send them there too.
    assert client.get(LOGIN)["Location"] == reverse("moderation:queue")
    assert client.get(reverse("accounts:signup"))["Location"] == reverse("moderation:queue")


def test_a_moderator_sees_no_employer_prompts(client, moderator):
    log_in(client, moderator.email, PASSWORD)
    html = client.get(reverse("moderation:queue")).content.decode()
    assert "Please verify your email address" not in html
    assert "Tell us about your company" not in html
    assert f'href="{reverse("employer:dashboard")}"' not in html
    assert f'href="{reverse("accounts:company")}"' not in html
    assert f'href="{reverse("moderation:queue")}" aria-current="page">Moderation' in html


def test_an_unverified_employer_still_sees_the_banner_and_the_employer_links(client):
    user = UserFactory(email="erin@example.com")
    log_in(client, user.email, PASSWORD)
    html = client.get(reverse("postings:list")).content.decode()
    assert "Please verify your email address" in html
    assert f'href="{reverse("employer:dashboard")}"' in html


def test_a_moderator_who_is_also_an_employer_starts_at_the_dashboard(client, moderator):
    EmployerFactory(user=moderator)
    response = log_in(client, moderator.email, PASSWORD)
    assert response["Location"] == reverse("employer:dashboard")
    html = client.get(reverse("moderation:queue")).content.decode()
    assert "Please verify your email address" in html  # they may publish: the banner matters
