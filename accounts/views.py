"""Accounts and the company profile. Views are wiring: a form, one service call, a redirect.

Company pages act on the user's own company (``EmployerRequiredMixin`` finds it), never on one
named in the URL, so there is no other company's id to guess; the one id in a URL, a pending
invitation's, is looked up among the user's own company's invitations (404 otherwise).
"""

from __future__ import annotations

import contextlib

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_credentials
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.http import require_GET
from django.views.generic import FormView, TemplateView
from django_ratelimit.core import is_ratelimited

from postings.counters import client_ip
from postings.models import Company
from postings.permissions import EmployerRequiredMixin, company_of

from . import services
from .forms import (
    ChangePasswordForm,
    CompanyForm,
    CurrentLogo,
    InviteForm,
    LoginForm,
    NewPasswordForm,
    ResetPasswordForm,
    SignupForm,
)
from .models import Invitation

# Emails we send on request, per visitor (or per user): enough for typos, too few to spam with.
SIGNUP_RATE = "10/h"
PASSWORD_RESET_RATE = "5/h"  # noqa: S105 (a rate, not a password)
RESEND_RATE = "3/h"
INVITE_RATE = "30/h"
# The address the visitor signed up with, for the "check your email" page.
SIGNUP_EMAIL_KEY = "accounts.signup_email"
# services.signup_mark: lets the verification link log in the browser that signed up.
SIGNUP_MARK_KEY = "accounts.signup_mark"
TOO_OFTEN = "You have done this several times in a short while. Wait an hour, then try again."

LOGO_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
# Our pages link to a logo with ?v=<version>: a new logo is a new address, so that one may be
# kept for a year; a bare logo address is rechecked hourly.
LOGO_MAX_AGE = 60 * 60
LOGO_VERSIONED_MAX_AGE = 60 * 60 * 24 * 365


def home_url(user=None) -> str:
    """Where a logged-in user starts: a moderator without a company at the moderation queue;
    everyone else at the employer dashboard (LOGIN_REDIRECT_URL), or the company page should the
    dashboard not be there."""
    if user is not None and is_moderator_only(user):
        return reverse("moderation:queue")
    try:
        return reverse(settings.LOGIN_REDIRECT_URL)
    except NoReverseMatch:
        return reverse("accounts:company")


def is_moderator_only(user) -> bool:
    """A moderator who is not also an employer: no company to tell us about, no jobs to post."""
    return user.is_authenticated and user.is_moderator and company_of(user) is None


def site_url(request: HttpRequest) -> str:
    """Scheme and host of this request, e.g. https://jobs.example, for links in emails."""
    return request.build_absolute_uri("/").rstrip("/")


def safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def _by_visitor(group: str, request: HttpRequest) -> str:
    return client_ip(request) or "unknown"


def _by_user(group: str, request: HttpRequest) -> str:
    return str(request.user.pk)


def over_rate(request: HttpRequest, *, group: str, rate: str, by_user: bool = False) -> bool:
    """Count this POST against ``rate`` and say whether it is over (django-ratelimit)."""
    return is_ratelimited(
        request,
        group=f"accounts.{group}",
        key=_by_user if by_user else _by_visitor,
        rate=rate,
        method="POST",
        increment=True,
    )


def refuse_too_often(view: FormView, form) -> HttpResponse:
    form.add_error(None, TOO_OFTEN)
    response = view.form_invalid(form)
    response.status_code = 429
    return response


class PlainLabelsMixin:
    """Labels without Django's trailing colon, as on the rest of the site."""

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "label_suffix": ""}


# --- Sign-up and verification ----------------------------------------------------------------


class SignupView(PlainLabelsMixin, FormView):
    form_class = SignupForm
    template_name = "accounts/signup.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return redirect(home_url(request.user))
        return super().dispatch(request, *args, **kwargs)

    def invitation(self) -> Invitation | None:
        """The invitation the sign-up came from (?invitation=<signed token>), if still valid."""
        if not hasattr(self, "_invitation"):
            token = self.request.POST.get("invitation") or self.request.GET.get("invitation")
            self._invitation = None
            if token:
                # A stale or broken invitation link still leads to an ordinary sign-up.
                with contextlib.suppress(services.LinkError):
                    self._token = token[:500]
                    self._invitation = services.invitation_from_token(token=self._token)
        return self._invitation

    def get_initial(self):
        invitation = self.invitation()
        if invitation is None:
            return {}
        return {"email": invitation.email, "invitation": self.request.GET.get("invitation")}

    def get_context_data(self, **kwargs):
        invitation = self.invitation()
        context = super().get_context_data(invitation=invitation, **kwargs)
        if invitation is not None:
            # "Log in" comes back to the invitation; its token is the one that just validated.
            context["invitation_url"] = reverse("accounts:invitation", args=[self._token])
        return context

    def form_valid(self, form):
        if over_rate(self.request, group="signup", rate=SIGNUP_RATE):
            return refuse_too_often(self, form)
        invitation = self.invitation()
        email = form.cleaned_data["email"]
        try:
            user = services.user_signup(
                email=email,
                password=form.cleaned_data["password"],
                full_name=form.cleaned_data["full_name"],
                site_url=site_url(self.request),
                invitation=invitation,
            )
        except (ValidationError, services.LinkError) as error:
            form.add_error(None, error if isinstance(error, ValidationError) else str(error))
            return self.form_invalid(form)
        if user is not None and invitation is not None and company_of(user) == invitation.company:
            login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(self.request, f"Welcome to {invitation.company.name}.")
            return redirect(home_url())
        # A new account and a taken address get the same answer (services.user_signup), down to
        # the session: both keep the address and a mark of the same shape.
        self.request.session[SIGNUP_EMAIL_KEY] = email
        self.request.session[SIGNUP_MARK_KEY] = services.signup_mark(user)
        return redirect("accounts:signup_sent")


class SignupSentView(TemplateView):
    """ "Check your email" after a sign-up, whether the address was new or had an account."""

    template_name = "accounts/signup_sent.html"

    def get_context_data(self, **kwargs):
        email = self.request.session.get(SIGNUP_EMAIL_KEY, "")
        return super().get_context_data(email=email, **kwargs)


class VerifyEmailView(View):
    """The link from the verification email. A GET, as mail clients open links: following it
    is the proof that the address receives our mail.

    Opened in the browser that signed up (its session holds the account's ``signup_mark``), the
    first use of the link also logs the account in and goes on to creating the company, as the
    sign-up did before it stopped logging in. Anywhere else, it verifies and offers to log in.
    """

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            user = services.user_verify_email(token=token)
        except services.LinkError as error:
            return TemplateResponse(
                request,
                "accounts/verify_email.html",
                {
                    "error": str(error),
                    "used": isinstance(error, services.LinkUsed),
                    "continue_url": home_url(request.user),
                },
                status=400,
            )
        if self.signed_up_here(request, user):
            # login() rotates the session key; django-axes records the log-in and clears the
            # account's earlier failures, as for a password log-in.
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request, f"Thank you: {user.email} is verified. Now tell us about your company."
            )
            return redirect("accounts:company_create")
        if request.user.is_authenticated and request.user.pk == user.pk:
            request.user.email_verified_at = user.email_verified_at  # so the banner goes now
        return TemplateResponse(
            request,
            "accounts/verify_email.html",
            {"verified_user": user, "continue_url": home_url(request.user)},
        )

    @staticmethod
    def signed_up_here(request: HttpRequest, user) -> bool:
        """Whether this browser, logged out, made the sign-up of ``user`` (the mark is then
        spent). One that django-axes has locked out, by account or by address, is not let in
        this way: it logs in with the password once the lock lifts, like any other."""
        mark = request.session.get(SIGNUP_MARK_KEY)
        if request.user.is_authenticated or not services.signup_mark_matches(mark, user):
            return False
        del request.session[SIGNUP_MARK_KEY]
        return AxesProxyHandler.is_allowed(request, get_credentials(user.email))


class ResendVerificationView(LoginRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        back = safe_next(request, home_url(request.user))
        if request.user.is_email_verified:
            messages.info(request, "Your email address is already verified.")
        elif over_rate(request, group="resend", rate=RESEND_RATE, by_user=True):
            messages.warning(request, f"We have sent the link several times already. {TOO_OFTEN}")
        else:
            try:
                services.user_verification_send(user=request.user, site_url=site_url(request))
            except services.EmailCapReached:
                messages.warning(
                    request, f"We have sent this address several emails today. {TOO_OFTEN}"
                )
            except services.EmailNotSent:
                messages.warning(
                    request, "We could not send the email just now. Try again in a few minutes."
                )
            else:
                messages.success(
                    request,
                    f"We have sent a new link to {request.user.email}. It may take a minute to "
                    "arrive; check your spam folder too.",
                )
        return HttpResponseRedirect(back)


# --- Log-in and passwords (Django's views, our templates) ------------------------------------


class LoginView(PlainLabelsMixin, auth_views.LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return home_url(self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["site_name"] = settings.SITE_NAME  # Django's view puts the host name here
        return context


class PasswordResetView(PlainLabelsMixin, auth_views.PasswordResetView):
    form_class = ResetPasswordForm
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")
    extra_email_context = {"site_name": settings.SITE_NAME}

    def form_valid(self, form):
        if over_rate(self.request, group="password_reset", rate=PASSWORD_RESET_RATE):
            return refuse_too_often(self, form)
        return super().form_valid(form)


class PasswordResetConfirmView(PlainLabelsMixin, auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")
    form_class = NewPasswordForm

    def form_valid(self, form):
        response = super().form_valid(form)
        # Whoever set a new password from the emailed link owns the address: lift the lock on
        # the account that someone else's guessing may have caused (an address lock stays).
        axes_reset(username=form.user.email)
        return response


class PasswordChangeView(PlainLabelsMixin, auth_views.PasswordChangeView):
    template_name = "accounts/password_change_form.html"
    success_url = reverse_lazy("accounts:password_change_done")
    form_class = ChangePasswordForm


# --- The company -----------------------------------------------------------------------------


class CompanyCreateView(PlainLabelsMixin, LoginRequiredMixin, FormView):
    form_class = CompanyForm
    template_name = "accounts/company_form.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and company_of(request.user) is not None:
            messages.info(request, "You already have a company; here is its profile.")
            return redirect("accounts:company")
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            company = services.company_create(owner=self.request.user, **form.service_kwargs())
        except ValidationError as error:
            form.add_error(None, error)
            return self.form_invalid(form)
        messages.success(self.request, f"{company.name} is set up. You can post jobs for it now.")
        return redirect(home_url())


class CompanyUpdateView(PlainLabelsMixin, EmployerRequiredMixin, FormView):
    """Owners change the profile; other members see it read-only."""

    form_class = CompanyForm
    template_name = "accounts/company_form.html"

    def post(self, request, *args, **kwargs):
        if not self.company.is_owned_by(request.user):
            raise PermissionDenied("Only an owner can change the company profile.")
        return super().post(request, *args, **kwargs)

    def get_initial(self):
        company = self.company
        return {
            "name": company.name,
            "company_type": company.company_type,
            "website": company.website,
            "description": company.description,
            "logo": CurrentLogo(services.logo_url(company)) if company.logo else None,
        }

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            company=self.company, can_edit=self.company.is_owned_by(self.request.user), **kwargs
        )

    def form_valid(self, form):
        services.company_update(
            company=self.company,
            by=self.request.user,
            remove_logo=form.logo_cleared,
            **form.service_kwargs(),
        )
        messages.success(self.request, "Saved. Candidates see the new profile from now on.")
        return redirect("accounts:company")


class CompanyMembersView(PlainLabelsMixin, EmployerRequiredMixin, FormView):
    """Everyone at the company; an owner also sees pending invitations and invites."""

    form_class = InviteForm
    template_name = "accounts/company_members.html"

    def post(self, request, *args, **kwargs):
        if not self.company.is_owned_by(request.user):
            raise PermissionDenied("Only an owner can invite colleagues.")
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        is_owner = self.company.is_owned_by(self.request.user)
        return super().get_context_data(
            company=self.company,
            is_owner=is_owner,
            invitation_days=settings.INVITATION_MAX_AGE.days,
            memberships=self.company.memberships.select_related("user").order_by(
                "role", "joined_at"
            ),
            invitations=(
                self.company.invitations.filter(accepted_at__isnull=True).select_related(
                    "invited_by"
                )
                if is_owner
                else Invitation.objects.none()
            ),
            **kwargs,
        )

    def form_valid(self, form):
        if over_rate(self.request, group="invite", rate=INVITE_RATE, by_user=True):
            return refuse_too_often(self, form)
        email = form.cleaned_data["email"]
        try:
            services.invitation_send(
                company=self.company,
                email=email,
                invited_by=self.request.user,
                site_url=site_url(self.request),
            )
        except ValidationError as error:
            form.add_error(None, error)  # a dict of field errors lands by its fields
            return self.form_invalid(form)
        except services.EmailNotSent:
            messages.warning(
                self.request,
                f"The invitation for {email} is saved, but the email could not be sent just "
                "now. Use “Send again” in a few minutes.",
            )
        else:
            messages.success(self.request, f"Invitation sent to {email}.")
        return redirect("accounts:company_members")


class InvitationCancelView(EmployerRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        invitation = get_object_or_404(
            Invitation, pk=pk, company=self.company, accepted_at__isnull=True
        )
        services.invitation_cancel(invitation=invitation, by=request.user)
        messages.success(request, f"The invitation for {invitation.email} is cancelled.")
        return redirect("accounts:company_members")


class InvitationView(View):
    """The link from an invitation email: explains the invitation and lets the invited person
    join, after signing up or logging in with the invited address."""

    template_name = "accounts/invitation.html"

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            invitation = services.invitation_from_token(token=token)
        except services.LinkError as error:
            return TemplateResponse(request, self.template_name, {"error": str(error)}, status=400)
        user = request.user
        context = {
            "invitation": invitation,
            "token": token,
            "email_matches": user.is_authenticated and user.email == invitation.email,
            "already_member": invitation.company.has_member(user),
        }
        return TemplateResponse(request, self.template_name, context)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            invitation = services.invitation_from_token(token=token)
        except services.LinkError as error:
            return TemplateResponse(request, self.template_name, {"error": str(error)}, status=400)
        try:
            services.invitation_accept(invitation=invitation, user=request.user)
        except services.LinkError as error:
            return TemplateResponse(request, self.template_name, {"error": str(error)}, status=400)
        except ValidationError as error:
            context = {"invitation": invitation, "token": token, "refused": error.messages}
            return TemplateResponse(request, self.template_name, context, status=400)
        messages.success(request, f"You have joined {invitation.company.name}.")
        return redirect(home_url(request.user))


# --- Logos -----------------------------------------------------------------------------------


@require_GET
def company_logo(request: HttpRequest, slug: str) -> HttpResponse:
    """A company's logo from the default storage (WhiteNoise serves only static files)."""
    company = get_object_or_404(Company.objects.only("logo"), slug=slug)
    if not company.logo:
        raise Http404("No logo")
    version = services.logo_version(company)
    etag = f'"{version}"'
    max_age = LOGO_VERSIONED_MAX_AGE if request.GET.get("v") == version else LOGO_MAX_AGE
    cache_control = f"public, max-age={max_age}"
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()
    else:
        extension = company.logo.name.rsplit(".", 1)[-1].lower()
        try:
            handle = company.logo.open("rb")
        except FileNotFoundError as error:
            raise Http404("No logo") from error
        response = FileResponse(
            handle, content_type=LOGO_TYPES.get(extension, "application/octet-stream")
        )
        # An uploaded file is only ever an image here, never a page that could run a script.
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    return response
