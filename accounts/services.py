"""Writes for accounts and companies: sign-up, email verification, companies and invitations.

Keyword-only and typed, named ``<thing>_<action>``, called directly from views. Links we email
are signed with ``TimestampSigner`` (one salt per purpose), so they need no token table: a
verification link carries the user's id and email, an invitation link the invitation's id and
email, and each stops working once used, because the row it points to has changed.

Emails go out in the request, after the database work has committed: the person waiting needs
the link now, ``EMAIL_TIMEOUT`` bounds the wait, and a failed send is logged and can be repeated
("send the link again", "send again" on the members page). Each kind is capped per mailbox and
day (``ACCOUNT_EMAILS_PER_DAY``, jobboard/mailbox.py): anyone can type anyone's address.

Sign-up never says whether an address has an account (log-in and password reset do not either):
both answers are "check your email", and the owner of a taken address is emailed instead. The
browser that signed up keeps a mark (``signup_mark``) so that the verification link, opened there,
logs the new account in; a taken address leaves a random mark of the same shape.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import uuid

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from PIL import Image

from jobboard.mailbox import email_allowed
from postings.models import Company, Membership, slug_for

from .lockout import normalize_email
from .models import Invitation, User

logger = logging.getLogger(__name__)

VERIFY_SALT = "accounts.verify-email"
INVITATION_SALT = "accounts.invitation"
SIGNUP_MARK_SALT = "accounts.signup-mark"
LOGO_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}


# --- Signed links ----------------------------------------------------------------------------


class LinkError(Exception):
    """A link from an email that cannot be used; the message tells the person who followed it."""


class LinkInvalid(LinkError):
    pass


class LinkExpired(LinkError):
    pass


class LinkUsed(LinkError):
    pass


def _sign(salt: str, data: dict) -> str:
    return signing.TimestampSigner(salt=salt).sign_object(data)


def _unsign(salt: str, token: str, max_age, *, expired: str, invalid: str) -> dict:
    try:
        data = signing.TimestampSigner(salt=salt).unsign_object(token, max_age=max_age)
    except signing.SignatureExpired as error:
        raise LinkExpired(expired) from error
    except (signing.BadSignature, ValueError) as error:
        raise LinkInvalid(invalid) from error
    if not isinstance(data, dict):
        raise LinkInvalid(invalid)
    return data


def verification_token(user: User) -> str:
    return _sign(VERIFY_SALT, {"u": user.pk, "e": user.email})


def invitation_token(invitation: Invitation) -> str:
    return _sign(INVITATION_SALT, {"i": invitation.pk, "e": invitation.email})


def signup_mark(user: User | None) -> str:
    """What the session that signed ``user`` up keeps, so that the verification link opened in
    that browser logs the account in (``signup_mark_matches``). Bound to the account's password
    hash, so a password reset in between undoes it. For a taken address (``None``), a random
    value of the same length: both kinds of sign-up leave the same session behind."""
    if user is None:
        return secrets.token_hex(32)
    return salted_hmac(
        SIGNUP_MARK_SALT, f"{user.pk}:{user.email}:{user.password}", algorithm="sha256"
    ).hexdigest()


def signup_mark_matches(mark: object, user: User) -> bool:
    """Whether ``mark``, from a session, is the one the sign-up of ``user`` left there."""
    return isinstance(mark, str) and constant_time_compare(mark, signup_mark(user))


# --- Email -----------------------------------------------------------------------------------


class EmailNotSent(Exception):
    """The mail server did not take the message (already logged)."""


class EmailCapReached(EmailNotSent):
    """The mailbox has had today's ``ACCOUNT_EMAILS_PER_DAY`` emails of this kind (logged)."""


def email_send(*, to: str, template: str, context: dict, kind: str) -> None:
    """Send ``accounts/email/<template>.txt`` with its ``<template>_subject.txt``, unless the
    mailbox has had today's emails of ``kind`` (then raises ``EmailCapReached``)."""
    if not email_allowed(kind=kind, to=to, per_day=settings.ACCOUNT_EMAILS_PER_DAY):
        raise EmailCapReached(f"{kind} email cap reached")
    context = {"site_name": settings.SITE_NAME, **context}
    subject = render_to_string(f"accounts/email/{template}_subject.txt", context)
    body = render_to_string(f"accounts/email/{template}.txt", context)
    try:
        send_mail(" ".join(subject.split()), body, None, [to])
    except OSError as error:  # smtplib.SMTPException and socket errors alike
        logger.exception("Could not send the %s email to user or invitee", template)
        raise EmailNotSent(str(error)) from error


# --- Users -----------------------------------------------------------------------------------


def user_signup(
    *,
    email: str,
    password: str,
    full_name: str = "",
    site_url: str,
    invitation: Invitation | None = None,
) -> User | None:
    """Create an account and email it a verification link; returns it.

    For an address that already has an account, create nothing, email its owner that someone
    tried to sign up with it, and return None. The visitor gets the same "check your email"
    either way, as soon: the password is hashed and one email sent in both branches.

    Signing up from an invitation sent to the same address proves the address already, so the
    account starts verified and joins the inviting company (and only then is a taken address
    said to be taken: the emailed link shows the visitor owns it).
    """
    email = normalize_email(email)
    from_invitation = invitation is not None and invitation.email == email
    if not from_invitation and User.objects.filter(email=email).exists():
        make_password(password)  # the time creating an account takes, spent on nothing
        _signup_attempt_send(email=email, site_url=site_url)
        return None
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email,
                password=password,
                full_name=full_name.strip(),
                email_verified_at=timezone.now() if from_invitation else None,
            )
            if from_invitation:
                invitation_accept(invitation=invitation, user=user)
    except IntegrityError as error:  # two sign-ups for one address at the same moment
        if from_invitation:
            raise ValidationError(
                {"email": "An account with this email already exists. Log in to join."}
            ) from error
        _signup_attempt_send(email=email, site_url=site_url)
        return None
    if not from_invitation:
        # If the mail server is down, the banner's "send the link again" is the way out.
        with contextlib.suppress(EmailNotSent):
            user_verification_send(user=user, site_url=site_url)
    return user


def _signup_attempt_send(*, email: str, site_url: str) -> None:
    """Tell an account's owner that someone tried to sign up with their address."""
    with contextlib.suppress(EmailNotSent):
        email_send(
            to=email,
            template="signup_attempt",
            kind="signup",
            context={
                "email": email,
                "login_link": site_url + reverse("accounts:login"),
                "reset_link": site_url + reverse("accounts:password_reset"),
            },
        )


def user_verification_send(*, user: User, site_url: str) -> None:
    path = reverse("accounts:verify", kwargs={"token": verification_token(user)})
    email_send(
        to=user.email,
        template="verify_email",
        kind="signup",
        context={
            "user": user,
            "link": site_url + path,
            "days": settings.SIGNUP_LINK_MAX_AGE.days,
        },
    )


def user_verify_email(*, token: str) -> User:
    """Mark the email of the link's user verified; each link works once."""
    data = _unsign(
        VERIFY_SALT,
        token,
        settings.SIGNUP_LINK_MAX_AGE,
        expired="This link has expired. Log in and use “Send the link again” to get a new one.",
        invalid="This link is not valid. Check that you copied all of it, or ask for a new one.",
    )
    user = User.objects.filter(pk=data.get("u"), email=data.get("e")).first()
    if user is None:
        raise LinkInvalid("This link is not valid: the account it was for no longer exists.")
    verified = User.objects.filter(pk=user.pk, email_verified_at__isnull=True).update(
        email_verified_at=timezone.now()
    )
    if not verified:
        raise LinkUsed("This link has already been used: your email address is verified.")
    user.refresh_from_db(fields=["email_verified_at"])
    return user


# --- Companies -------------------------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slug_for(name, "company")
    taken = set(Company.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def logo_version(company: Company) -> str:
    """Changes whenever the logo does (each upload gets a new random name)."""
    return hashlib.sha256(company.logo.name.encode()).hexdigest()[:12]


def logo_url(company: Company) -> str:
    """Where the logo is served (``accounts:company_logo``), versioned; empty without one."""
    if not company.logo:
        return ""
    url = reverse("accounts:company_logo", kwargs={"slug": company.slug})
    return f"{url}?v={logo_version(company)}"


def _logo_name(logo: UploadedFile) -> str:
    # The uploader's file name is never used: a random one, with the extension of what Pillow
    # finds the image to be (forms.LogoField has checked it is one of LOGO_FORMATS).
    image = getattr(logo, "image", None)
    if image is None:
        with Image.open(logo) as image:
            pass
        logo.seek(0)
    if image.format not in LOGO_FORMATS:
        raise ValidationError({"logo": "Upload a PNG, JPEG, GIF or WebP image."})
    return f"{uuid.uuid4().hex}.{LOGO_FORMATS[image.format]}"


@transaction.atomic
def company_create(
    *,
    owner: User,
    name: str,
    company_type: str,
    website: str = "",
    description: str = "",
    logo: UploadedFile | None = None,
) -> Company:
    """Create a company owned by ``owner``, with a slug made unique from its name."""
    if Membership.objects.filter(user=owner).exists():
        raise ValidationError("You already belong to a company: an account acts for one company.")
    company = Company(
        name=name.strip(),
        company_type=company_type,
        website=website,
        description=description.strip(),
    )
    if logo:
        company.logo.save(_logo_name(logo), logo, save=False)
    for attempt in range(3):
        company.slug = _unique_slug(company.name)
        try:
            with transaction.atomic():  # a savepoint: another company may take the slug first
                company.save()
            break
        except IntegrityError:
            if attempt == 2:
                raise
    Membership.objects.create(company=company, user=owner, role=Membership.Role.OWNER)
    return company


@transaction.atomic
def company_update(
    *,
    company: Company,
    by: User,
    name: str,
    company_type: str,
    website: str,
    description: str,
    logo: UploadedFile | None = None,
    remove_logo: bool = False,
) -> Company:
    """Change the profile (owners only). The slug stays, so links to the company keep working."""
    if not company.is_owned_by(by):
        raise PermissionDenied("Only an owner can change the company profile.")
    company.name = name.strip()
    company.company_type = company_type
    company.website = website
    company.description = description.strip()
    old_logo = company.logo.name
    if logo:
        company.logo.save(_logo_name(logo), logo, save=False)
    elif remove_logo:
        company.logo = ""
    company.save()
    if old_logo and old_logo != company.logo.name:
        storage = company.logo.storage
        transaction.on_commit(lambda: storage.delete(old_logo))
    return company


# --- Invitations -----------------------------------------------------------------------------


def invitation_send(*, company: Company, email: str, invited_by: User, site_url: str) -> Invitation:
    """Invite a colleague by email. Inviting an address again replaces its pending invitation,
    so only the newest link works.

    Raises ``EmailNotSent`` after saving the invitation if the mail server refused it.
    """
    if not company.is_owned_by(invited_by):
        raise PermissionDenied("Only an owner can invite colleagues.")
    if not invited_by.is_email_verified:
        raise ValidationError("Verify your own email address before inviting colleagues.")
    email = normalize_email(email)
    with transaction.atomic():
        if company.memberships.filter(user__email=email).exists():
            raise ValidationError({"email": f"{email} is already a member of {company.name}."})
        company.invitations.filter(email=email, accepted_at__isnull=True).delete()
        invitation = Invitation.objects.create(company=company, email=email, invited_by=invited_by)
    path = reverse("accounts:invitation", kwargs={"token": invitation_token(invitation)})
    email_send(
        to=email,
        template="invitation",
        kind="invitation",
        context={
            "invitation": invitation,
            "company": company,
            "inviter": invited_by,
            "link": site_url + path,
            "days": settings.INVITATION_MAX_AGE.days,
        },
    )
    return invitation


def invitation_from_token(*, token: str) -> Invitation:
    """The pending invitation a link is for; raises ``LinkError`` saying why it cannot be used."""
    data = _unsign(
        INVITATION_SALT,
        token,
        settings.INVITATION_MAX_AGE,
        expired="This invitation has expired. Ask the colleague who invited you to send a new one.",
        invalid="This invitation link is not valid. Check that you copied all of it.",
    )
    invitation = (
        Invitation.objects.select_related("company", "invited_by")
        .filter(pk=data.get("i"), email=data.get("e"))
        .first()
    )
    if invitation is None:
        raise LinkInvalid(
            "This invitation is no longer valid: it was cancelled or replaced by a newer one. "
            "Look for a later email, or ask the colleague who invited you."
        )
    if invitation.accepted_at is not None:
        raise LinkUsed("This invitation has already been accepted.")
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Join the inviting company as a member. The invitation proves the address, so an
    unverified account becomes verified."""
    invitation = (
        Invitation.objects.select_for_update().select_related("company").get(pk=invitation.pk)
    )
    if invitation.accepted_at is not None:
        raise LinkUsed("This invitation has already been accepted.")
    if normalize_email(user.email) != invitation.email:
        raise ValidationError(
            f"This invitation is for {invitation.email}, but you are logged in as {user.email}. "
            "Log out, then open the link again."
        )
    other = Membership.objects.filter(user=user).exclude(company=invitation.company).first()
    if other is not None:
        raise ValidationError(
            f"You already belong to {other.company.name}: an account acts for one company. "
            "Ask for the invitation to go to another email address."
        )
    membership, _ = Membership.objects.get_or_create(
        company=invitation.company, user=user, defaults={"role": Membership.Role.MEMBER}
    )
    now = timezone.now()
    invitation.accepted_at = now
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    if not user.is_email_verified:
        user.email_verified_at = now
        user.save(update_fields=["email_verified_at"])
    return membership


def invitation_cancel(*, invitation: Invitation, by: User) -> None:
    if not invitation.company.is_owned_by(by):
        raise PermissionDenied("Only an owner can cancel invitations.")
    Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).delete()
