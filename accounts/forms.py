from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import (
    AuthenticationForm,
    PasswordChangeForm,
    PasswordResetForm,
    SetPasswordForm,
)
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.template.defaultfilters import filesizeformat

from jobboard.mailbox import email_allowed
from postings.models import Company
from postings.text import is_one_line, without_control_characters

from .lockout import normalize_email
from .models import User
from .services import LOGO_FORMATS

LOGO_MAX_BYTES = 1024 * 1024
LOGO_MAX_SIDE = 4000
# Long enough for any passphrase; a cap keeps the similarity validator from chewing on megabytes.
PASSWORD_MAX_LENGTH = 1024


def email_field(**kwargs) -> forms.EmailField:
    return forms.EmailField(
        max_length=254,
        error_messages={"required": "Enter an email address."},
        widget=forms.EmailInput(attrs={"autocomplete": "email", "spellcheck": "false"}),
        **kwargs,
    )


def one_line(value: str) -> None:
    """Names go into email subjects and greetings: a line break there (Unicode has several)
    could forge a message, a bidi override disguise one. The other control characters are
    dropped by the form instead (``without_control_characters``)."""
    if not is_one_line(without_control_characters(value)):
        raise forms.ValidationError("Keep this to a single line of plain text.")


class SignupForm(forms.Form):
    email = email_field(label="Work email")
    full_name = forms.CharField(
        label="Full name",
        required=False,
        max_length=150,
        help_text="Optional: shown to colleagues who join your company.",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        validators=[one_line],
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        error_messages={"required": "Choose a password."},
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters; not only numbers, and not a common password.",
    )
    # The signed invitation link a colleague's sign-up started from, if any.
    invitation = forms.CharField(required=False, widget=forms.HiddenInput, max_length=500)

    def clean_full_name(self) -> str:
        return without_control_characters(self.cleaned_data["full_name"]).strip()

    def clean_email(self) -> str:
        # Whether the address has an account is never said here: see services.user_signup.
        return normalize_email(self.cleaned_data["email"])

    def clean(self) -> dict:
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            candidate = User(email=cleaned.get("email", ""), full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(password, candidate)
            except ValidationError as error:
                self.add_error("password", error)
        return cleaned


class LoginForm(AuthenticationForm):
    """Django's log-in form with the email as the username (the field keeps the name
    ``username``, which django-axes reads)."""

    username = forms.CharField(
        label="Email",
        max_length=254,
        error_messages={"required": "Enter the email you signed up with."},
        widget=forms.EmailInput(
            attrs={"autofocus": True, "autocomplete": "email", "spellcheck": "false"}
        ),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        error_messages={"required": "Enter your password."},
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": (
            "That email and password do not match an account. Check both, or reset your password."
        ),
    }

    def clean_username(self) -> str:
        return normalize_email(self.cleaned_data["username"])


class LogoField(forms.ImageField):
    """An optional image Pillow recognises as PNG, JPEG, GIF or WebP, at most 1 MB."""

    default_error_messages = {
        "invalid_image": "Upload a PNG, JPEG, GIF or WebP image; this file is not one.",
    }

    def to_python(self, data):
        if data in self.empty_values:
            return None
        if data.size > LOGO_MAX_BYTES:
            raise ValidationError(
                f"The logo is {filesizeformat(data.size)}; it can be at most "
                f"{filesizeformat(LOGO_MAX_BYTES)}."
            )
        image_file = super().to_python(data)  # opens and verifies it with Pillow
        image = image_file.image
        if image.format not in LOGO_FORMATS:
            raise ValidationError(self.error_messages["invalid_image"], code="invalid_image")
        if max(image.size) > LOGO_MAX_SIDE:
            raise ValidationError(
                f"The logo is {image.size[0]} × {image.size[1]} pixels; it can be at most "
                f"{LOGO_MAX_SIDE} pixels on a side."
            )
        return image_file


class LogoInput(forms.ClearableFileInput):
    initial_text = "Now"
    input_text = "Replace with"
    clear_checkbox_label = "Remove the logo"


class CurrentLogo:
    """The saved logo as the file input shows it, linked through our logo view: media files
    have no public URL of their own."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __str__(self) -> str:
        return "the current logo"


class CompanyForm(forms.Form):
    """The company profile. A plain form, not a ModelForm, so that a failed edit never changes
    the company object the page still shows."""

    name = forms.CharField(
        label="Company name",
        max_length=200,
        error_messages={"required": "Enter the company's name."},
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
        validators=[one_line],
    )
    company_type = forms.ChoiceField(
        label="Type of company",
        choices=Company.CompanyType.choices,
        initial="corporation",
        error_messages={"required": "Choose the type of company."},
    )
    website = forms.URLField(
        label="Website",
        required=False,
        max_length=200,
        assume_scheme="https",
        help_text="e.g. https://acme.example",
        widget=forms.URLInput(attrs={"autocomplete": "url", "spellcheck": "false"}),
    )
    description = forms.CharField(
        label="Short description",
        required=False,
        max_length=1000,
        help_text="A few sentences candidates see beside your jobs (at most 1,000 characters).",
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    logo = LogoField(
        label="Logo",
        required=False,
        help_text="Optional: a square PNG, JPEG, GIF or WebP image, at most 1 MB.",
        widget=LogoInput(attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}),
    )

    def clean_name(self) -> str:
        name = without_control_characters(self.cleaned_data["name"]).strip()
        if not name:
            raise ValidationError("Enter the company's name.")
        return name

    def service_kwargs(self) -> dict:
        """The cleaned values in the shape company_create/company_update take."""
        data = self.cleaned_data
        logo = data.get("logo")
        return {
            "name": data["name"],
            "company_type": data["company_type"],
            "website": data.get("website", ""),
            "description": data.get("description", ""),
            # Only a new upload; the current file (unchanged) and False ("Clear") are not one.
            "logo": logo if hasattr(logo, "image") else None,
        }

    @property
    def logo_cleared(self) -> bool:
        return self.cleaned_data.get("logo") is False


class InviteForm(forms.Form):
    email = email_field(label="Colleague's email")

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


class _PasswordCap:
    """A new password no longer than the log-in form takes (``PASSWORD_MAX_LENGTH``): else one
    could be set that can never be used, and a huge one costs the hasher."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("old_password", "new_password1", "new_password2"):
            if name in self.fields:
                field = self.fields[name]
                field.max_length = PASSWORD_MAX_LENGTH
                field.validators.append(MaxLengthValidator(PASSWORD_MAX_LENGTH))
                field.widget.attrs["maxlength"] = str(PASSWORD_MAX_LENGTH)


class NewPasswordForm(_PasswordCap, SetPasswordForm):
    pass


class ChangePasswordForm(_PasswordCap, PasswordChangeForm):
    pass


class ResetPasswordForm(PasswordResetForm):
    """Django's form, sending one mailbox at most ``ACCOUNT_EMAILS_PER_DAY`` reset emails a day
    (jobboard/mailbox.py). Past that nothing is sent, and the page still says only "if an account
    uses that address, we have sent it a link"."""

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email,
                  html_email_template_name=None):  # fmt: skip
        if email_allowed(
            kind="password_reset", to=to_email, per_day=settings.ACCOUNT_EMAILS_PER_DAY
        ):
            super().send_mail(
                subject_template_name, email_template_name, context, from_email, to_email,
                html_email_template_name,
            )  # fmt: skip
