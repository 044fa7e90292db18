"""Sign-up, the verification email and its link, the banner and "send the link again"."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessLog
from django.conf import settings
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core import mail, signing
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.factories import PASSWORD, UserFactory, VerifiedUserFactory
from accounts.models import User
from accounts.views import SIGNUP_EMAIL_KEY

pytestmark = pytest.mark.django_db

SIGNUP = reverse("accounts:signup")
SENT = reverse("accounts:signup_sent")
GOOD_PASSWORD = "tangerine-lighthouse-42"


def sign_up(client, follow=False, address="127.0.0.1", **data):
    form = {"email": "ada@example.com", "full_name": "Ada Lovelace", "password": GOOD_PASSWORD}
    form.update(data)
    return client.post(SIGNUP, form, follow=follow, REMOTE_ADDR=address)


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


def path_of(link: str) -> str:
    return re.sub(r"^https?://[^/]+", "", link)


def test_signup_page_shows_a_labelled_form(client):
    response = client.get(SIGNUP)
    assert response.status_code == 200
    assert "accounts/signup.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert '<label for="id_email">Work email</label>' in html
    assert 'autocomplete="new-password"' in html


def test_signup_creates_an_unverified_user_and_sends_the_link(client):
    response = sign_up(client, email="  Ada@Example.COM ")
    assert response.status_code == 302
    assert response["Location"] == SENT
    user = User.objects.get()
    assert user.email == "ada@example.com"
    assert user.full_name == "Ada Lovelace"
    assert not user.is_email_verified
    assert user.check_password(GOOD_PASSWORD)
    assert "_auth_user_id" not in client.session  # a taken address could not log in either
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ada@example.com"]
    assert message.subject == "Verify your email address for Jobboard"
    assert link_in(message).startswith("http://testserver/accounts/verify/")


def test_the_check_your_email_page_names_the_address_and_offers_to_log_in(client):
    response = sign_up(client, email="Ada@Example.com", follow=True)
    assert response.redirect_chain == [(SENT, 302)]
    html = response.content.decode()
    assert "<h1>Check your email</h1>" in html
    assert "<strong>ada@example.com</strong>" in html
    assert f'href="{reverse("accounts:login")}"' in html


def test_signup_with_a_taken_address_answers_as_for_a_new_one_and_emails_its_owner(client):
    owner = VerifiedUserFactory(email="ada@example.com", full_name="Ada Lovelace")
    new = Client().post(
        SIGNUP, {"email": "grace@example.com", "password": GOOD_PASSWORD, "full_name": "G"}
    )
    mail.outbox.clear()
    taken = sign_up(client, email="ADA@example.com", full_name="Mallory")
    assert (
        (taken.status_code, taken["Location"])
        == (new.status_code, new["Location"])
        == (
            302,
            SENT,
        )
    )
    assert "_auth_user_id" not in client.session
    page = client.get(SENT).content.decode()
    assert "<strong>ada@example.com</strong>" in page
    assert "already" not in page
    assert User.objects.filter(email="ada@example.com").count() == 1
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)  # nothing about the account changed
    assert owner.full_name == "Ada Lovelace"
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == "Someone tried to sign up to Jobboard with your address"
    assert "http://testserver/accounts/login/" in message.body
    assert "http://testserver/accounts/password/reset/" in message.body
    assert "Mallory" not in message.body


class CountingHasher(MD5PasswordHasher):
    """The MD5 hasher, counting the passwords it hashes."""

    hashed = 0

    def encode(self, password, salt):
        CountingHasher.hashed += 1
        return super().encode(password, salt)


def test_a_taken_address_costs_the_same_password_hashing_as_a_new_account(client, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    VerifiedUserFactory(email="ada@example.com")
    CountingHasher.hashed = 0
    sign_up(client, email="grace@example.com")
    for_a_new_account = CountingHasher.hashed
    CountingHasher.hashed = 0
    sign_up(Client(), email="ada@example.com")
    assert for_a_new_account == CountingHasher.hashed == 1


def test_signup_emails_to_one_mailbox_are_capped_whoever_asks(client, settings):
    settings.ACCOUNT_EMAILS_PER_DAY = 2
    VerifiedUserFactory(email="ada@gmail.com")
    sign_up(Client(REMOTE_ADDR="10.0.0.1"), email="ada@gmail.com")
    sign_up(Client(REMOTE_ADDR="10.0.0.2"), email="a.da+1@gmail.com")
    response = sign_up(Client(REMOTE_ADDR="10.0.0.3"), email="ada+2@googlemail.com")
    assert response["Location"] == SENT  # no different answer when the cap is reached
    assert [m.to for m in mail.outbox] == [["ada@gmail.com"], ["a.da+1@gmail.com"]]
    assert sign_up(Client(REMOTE_ADDR="10.0.0.4"), email="bob@gmail.com").status_code == 302
    assert mail.outbox[-1].to == ["bob@gmail.com"]


def test_full_name_is_optional(client):
    response = sign_up(client, full_name="")
    assert response.status_code == 302
    assert User.objects.get().full_name == ""


def test_verification_link_verifies_once_then_says_it_was_used(client):
    sign_up(Client())
    path = path_of(link_in(mail.outbox[0]))
    first = client.get(path)
    assert first.status_code == 200
    assert "Email verified" in first.content.decode()
    assert User.objects.get().is_email_verified
    second = client.get(path)
    assert second.status_code == 400
    assert "already been used: your email address is verified" in second.content.decode()


# --- The link logs in the browser that signed up, and only that one --------------------------


def test_the_link_opened_in_the_browser_that_signed_up_logs_in_and_goes_on_to_the_company(client):
    sign_up(client)
    signed_up_session = client.session.session_key
    response = client.get(path_of(link_in(mail.outbox[0])), follow=True)
    user = User.objects.get()
    assert user.is_email_verified
    assert response.redirect_chain == [(reverse("accounts:company_create"), 302)]
    assert "accounts/company_form.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert "Thank you: ada@example.com is verified. Now tell us about your company." in html
    assert "Please verify your email address" not in html
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session["_auth_user_backend"] == "django.contrib.auth.backends.ModelBackend"
    assert client.session.session_key != signed_up_session  # login() rotated it
    assert AccessLog.objects.filter(username="ada@example.com").count() == 1  # django-axes saw it


def test_the_link_opened_in_another_browser_verifies_without_logging_in(client):
    sign_up(client)
    elsewhere = Client()
    response = elsewhere.get(path_of(link_in(mail.outbox[0])))
    assert response.status_code == 200
    assert User.objects.get().is_email_verified
    html = response.content.decode()
    assert "Email verified" in html
    assert f'href="{reverse("accounts:login")}"' in html
    assert "_auth_user_id" not in elsewhere.session


def test_a_link_already_used_elsewhere_does_not_log_in_the_browser_that_signed_up(client):
    sign_up(client)
    path = path_of(link_in(mail.outbox[0]))
    Client().get(path)  # say, a mail scanner, or the phone
    response = client.get(path)
    assert response.status_code == 400
    assert "already been used" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_link_used_to_log_in_does_not_log_in_again(client):
    sign_up(client)
    path = path_of(link_in(mail.outbox[0]))
    assert client.get(path)["Location"] == reverse("accounts:company_create")
    client.logout()
    response = client.get(path)
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


def test_the_link_does_not_log_in_once_the_password_has_changed(client):
    sign_up(client)
    user = User.objects.get()
    user.set_password("another-long-password-7")  # say, the address's owner reset it
    user.save()
    response = client.get(path_of(link_in(mail.outbox[0])))
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_the_link_does_not_switch_a_browser_logged_in_as_someone_else(client, loner):
    sign_up(client)
    client.force_login(loner)
    response = client.get(path_of(link_in(mail.outbox[0])))
    assert response.status_code == 200
    assert User.objects.get(email="ada@example.com").is_email_verified
    assert client.session["_auth_user_id"] == str(loner.pk)


@pytest.mark.parametrize("lock", ["account", "address"])
def test_a_browser_locked_out_of_logging_in_is_not_logged_in_by_the_link(client, lock):
    sign_up(client, address="10.0.7.1")
    for n in range(5):
        client.post(
            reverse("accounts:login"),
            {
                "username": "ada@example.com" if lock == "account" else f"guess{n}@example.com",
                "password": "wrong",
            },
            REMOTE_ADDR=f"10.0.8.{n}" if lock == "account" else "10.0.7.1",
        )
    response = client.get(path_of(link_in(mail.outbox[0])), REMOTE_ADDR="10.0.7.1")
    assert response.status_code == 200
    assert User.objects.get().is_email_verified
    assert "_auth_user_id" not in client.session
    assert AccessLog.objects.count() == 0


def test_a_taken_address_leaves_the_same_cookies_and_session_as_a_new_one():
    VerifiedUserFactory(email="ada@example.com")
    new_browser, taken_browser = Client(), Client()
    new = sign_up(new_browser, email="grace@example.com")
    taken = sign_up(taken_browser, email="ada@example.com")

    def cookies(response) -> dict:
        return {
            name: (len(c.value), c["path"], c["max-age"], c["httponly"], c["samesite"])
            for name, c in response.cookies.items()
        }

    assert cookies(new) == cookies(taken)
    assert settings.SESSION_COOKIE_NAME in cookies(new)
    new_session, taken_session = dict(new_browser.session), dict(taken_browser.session)
    assert new_session.keys() == taken_session.keys()
    assert {k: len(v) for k, v in new_session.items() if k != SIGNUP_EMAIL_KEY} == {
        k: len(v) for k, v in taken_session.items() if k != SIGNUP_EMAIL_KEY
    }


def test_verification_link_works_without_being_logged_in(client):
    user = UserFactory()
    token = services.verification_token(user)
    response = client.get(reverse("accounts:verify", args=[token]))
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.is_email_verified
    assert "Log in" in response.content.decode()


def test_expired_verification_link_says_so_and_verifies_nothing(client, settings):
    user = UserFactory()
    token = services.verification_token(user)
    settings.SIGNUP_LINK_MAX_AGE = timedelta(seconds=-1)
    response = client.get(reverse("accounts:verify", args=[token]))
    assert response.status_code == 400
    assert "This link has expired" in response.content.decode()
    user.refresh_from_db()
    assert not user.is_email_verified


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: "x" + token,
        lambda token: "not-a-token",
        lambda token: "a" * 3000,
        lambda token: "<script>alert(1)<\\script>",
    ],
    ids=["signature", "payload", "garbage", "huge", "html"],
)
def test_tampered_verification_link_says_it_is_not_valid(client, tamper):
    user = UserFactory()
    token = tamper(services.verification_token(user))
    response = client.get(reverse("accounts:verify", args=[token]))
    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()
    assert "<script>alert" not in response.content.decode()
    user.refresh_from_db()
    assert not user.is_email_verified


def test_a_link_signed_for_another_purpose_is_not_a_verification_link(client):
    user = UserFactory()
    token = signing.TimestampSigner(salt="accounts.invitation").sign_object(
        {"u": user.pk, "e": user.email}
    )
    response = client.get(reverse("accounts:verify", args=[token]))
    assert response.status_code == 400
    user.refresh_from_db()
    assert not user.is_email_verified


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"email": ""}, "email", "Enter an email address."),
        ({"password": ""}, "password", "Choose a password."),
        ({"password": "short"}, "password", "This password is too short."),
        ({"password": "12345678901"}, "password", "This password is entirely numeric."),
        ({"password": "password123"}, "password", "This password is too common."),
        ({"password": "ada@example.com"}, "password", "too similar to the email address"),
        ({"email": "a" * 300 + "@example.com"}, "email", "at most 254 characters"),
        ({"full_name": "x" * 10_000}, "full_name", "at most 150 characters"),
        ({"password": "p" * 100_000}, "password", "at most 1024 characters"),
    ],
    ids=[
        "bad-email",
        "no-email",
        "no-password",
        "short",
        "numeric",
        "common",
        "like-email",
        "huge-email",
        "huge-name",
        "huge-password",
    ],
)
def test_bad_signup_input_is_shown_next_to_its_field_and_creates_nobody(
    client, data, field, message
):
    response = sign_up(client, **data)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not User.objects.exists()
    assert mail.outbox == []


def test_signup_form_keeps_what_was_typed_and_escapes_html(client):
    response = sign_up(client, full_name='<b onmouseover="x()">Ada</b>', password="short")
    html = response.content.decode()
    assert 'value="ada@example.com"' in html
    assert 'value="&lt;b onmouseover=&quot;x()&quot;&gt;Ada&lt;/b&gt;"' in html
    assert "<b onmouseover" not in html


def test_signup_with_missing_fields_does_not_fail(client):
    response = client.post(SIGNUP, {})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"email", "password"}


def test_signups_from_one_address_are_rate_limited(client):
    for n in range(10):
        assert sign_up(client, email=f"person{n}@example.com").status_code == 302
    response = sign_up(client, email="eleventh@example.com")
    assert response.status_code == 429
    assert "Wait an hour" in response.content.decode()
    assert not User.objects.filter(email="eleventh@example.com").exists()


def test_logged_in_user_is_sent_on_from_the_signup_page(client, owner):
    client.force_login(owner)
    response = client.get(SIGNUP)
    assert response.status_code == 302
    assert response["Location"] == reverse("employer:dashboard")


# --- The banner and "send the link again" ----------------------------------------------------


def test_unverified_user_sees_the_banner_with_a_resend_button(client):
    client.force_login(UserFactory(email="new@example.com"))
    html = client.get(reverse("postings:list")).content.decode()
    assert "Please verify your email address" in html
    assert "new@example.com" in html
    assert f'action="{reverse("accounts:verify_resend")}"' in html


def test_verified_user_and_visitor_see_no_banner(client, owner):
    assert "Please verify" not in client.get(reverse("postings:list")).content.decode()
    client.force_login(owner)
    assert "Please verify" not in client.get(reverse("postings:list")).content.decode()


def test_resend_sends_a_fresh_link_and_returns_to_the_page(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("accounts:verify_resend"), {"next": "/jobs/?q=python"})
    assert response.status_code == 302
    assert response["Location"] == "/jobs/?q=python"
    assert len(mail.outbox) == 1
    assert client.get(path_of(link_in(mail.outbox[0]))).status_code == 200
    user.refresh_from_db()
    assert user.is_email_verified


def test_resend_never_redirects_off_site(client):
    client.force_login(UserFactory())
    response = client.post(reverse("accounts:verify_resend"), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("employer:dashboard")


def test_resend_is_rate_limited_per_user(client):
    client.force_login(UserFactory())
    for _ in range(3):
        client.post(reverse("accounts:verify_resend"))
    response = client.post(reverse("accounts:verify_resend"), follow=True)
    assert len(mail.outbox) == 3
    assert "We have sent the link several times already" in response.content.decode()


def test_resend_keeps_to_the_mailboxs_daily_cap_of_sign_up_emails(client, settings):
    settings.ACCOUNT_EMAILS_PER_DAY = 1
    client.force_login(UserFactory(email="ada+jobs@example.com"))
    client.post(reverse("accounts:verify_resend"))
    response = client.post(reverse("accounts:verify_resend"), follow=True)
    assert len(mail.outbox) == 1
    assert "We have sent this address several emails today" in response.content.decode()


def test_resend_for_a_verified_user_sends_nothing(client, owner):
    client.force_login(owner)
    response = client.post(reverse("accounts:verify_resend"), follow=True)
    assert mail.outbox == []
    assert "already verified" in response.content.decode()


def test_resend_needs_a_login_and_a_post(client):
    response = client.post(reverse("accounts:verify_resend"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    client.force_login(UserFactory())
    assert client.get(reverse("accounts:verify_resend")).status_code == 405


def test_a_mail_server_failure_at_signup_still_creates_the_account(client, settings):
    settings.EMAIL_BACKEND = "tests.accounts.test_signup.BrokenBackend"
    response = sign_up(client)
    assert response.status_code == 302
    assert User.objects.filter(email="ada@example.com").exists()
    client.force_login(User.objects.get(email="ada@example.com"))
    response = client.post(reverse("accounts:verify_resend"), follow=True)
    assert "We could not send the email just now" in response.content.decode()


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server down")


def test_factories_password_logs_in(client):
    user = UserFactory()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize(
    "name",
    [
        "Eve\nSubject: pay now",
        "Eve\u2028Subject: pay now",  # Unicode's line separator
        "Eve\x85Subject: pay now",  # NEL
        "Eve\x9b",  # a C1 control
        "Eve\u202eed.lap",  # a right-to-left override
    ],
    ids=["line-feed", "line-separator", "nel", "c1", "rtl-override"],
)
def test_a_name_that_is_not_one_plain_line_is_refused_because_it_goes_into_emails(client, name):
    response = sign_up(client, email="eve@example.com", full_name=name)
    assert response.status_code == 200
    assert "single line" in " ".join(response.context["form"].errors["full_name"])
    assert not User.objects.exists()
