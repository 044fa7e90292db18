"""Forms for on-board applications: the candidate's form and the employer's status change."""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from .applications import CV_KINDS, cv_kind, link_lines
from .models import Application
from .text import is_one_line

COVER_NOTE_MAX = 4000
LINKS_MAX = 5
_PHONE = re.compile(r"^\+?[0-9 ().\-/]{5,39}$")
_link_field = forms.URLField(assume_scheme="https", validators=[URLValidator(["http", "https"])])


# Letters that show as blank space: the Hangul fillers.
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


def one_line(value: str, what: str) -> str:
    if not is_one_line(value):
        raise ValidationError(f"Your {what} must be a single line of text.", code="control")
    return value


class ApplicationForm(forms.Form):
    name = forms.CharField(
        label="Full name",
        max_length=150,
        help_text="As on your CV.",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    email = forms.EmailField(
        label="Email",
        max_length=254,
        help_text="We send you a confirmation; the employer replies here.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    phone = forms.CharField(
        label="Phone",
        required=False,
        max_length=40,
        help_text="Optional, e.g. +381 64 123 4567",
        widget=forms.TextInput(attrs={"autocomplete": "tel", "type": "tel"}),
    )
    links = forms.CharField(
        label="Links",
        required=False,
        max_length=LINKS_MAX * 300,
        help_text=f"Optional: portfolio, LinkedIn, GitHub; one per line, at most {LINKS_MAX}.",
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "url", "spellcheck": "false"}),
    )
    cv = forms.FileField(
        label="CV",
        help_text=(
            f"A PDF or a Word (.docx) document, at most "
            f"{settings.CV_MAX_BYTES / (1024 * 1024):g} MB."
        ),
        widget=forms.FileInput(
            attrs={"accept": ",".join([".pdf", ".docx", *CV_KINDS])},
        ),
    )
    cover_note = forms.CharField(
        label="Cover note",
        required=False,
        max_length=COVER_NOTE_MAX,
        help_text=f"Optional: why you, why this job. At most {COVER_NOTE_MAX:,} characters.",
        widget=forms.Textarea(attrs={"rows": 8}),
    )
    # A honeypot: hidden from people (and from screen readers), filled in by form-filling bots.
    homepage = forms.CharField(
        label="Leave this field empty",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")  # plain labels, as on the rest of the public site
        super().__init__(*args, **kwargs)

    def clean_name(self) -> str:
        name = one_line(self.cleaned_data["name"], "name")
        # Zero-width characters and blank-looking letters (U+3164, U+2800) are not whitespace to
        # ``strip``: without a letter or digit, the employer would get an applicant with no name.
        if not any(char.isalnum() and char not in INVISIBLE_LETTERS for char in name):
            raise ValidationError("Type your name in letters, as on your CV.", code="invisible")
        return name

    def clean_phone(self) -> str:
        phone = one_line(self.cleaned_data["phone"], "phone number")
        if phone and (not _PHONE.match(phone) or sum(c.isdigit() for c in phone) < 5):
            raise ValidationError(
                "Enter a phone number with digits, spaces and + ( ) - only, e.g. +381 64 123 4567.",
                code="phone",
            )
        return phone

    def clean_links(self) -> str:
        lines = link_lines(self.cleaned_data["links"])
        if len(lines) > LINKS_MAX:
            raise ValidationError(f"Give at most {LINKS_MAX} links.", code="too_many")
        cleaned = []
        for line in lines:
            try:
                cleaned.append(_link_field.clean(line))
            except ValidationError:
                raise ValidationError(
                    "“%(link)s” is not a web address. Give full links, e.g. "
                    "https://github.com/yourname, one per line.",
                    code="link",
                    params={"link": line[:80]},
                ) from None
        return "\n".join(cleaned)

    def clean_cv(self):
        cv = self.cleaned_data["cv"]
        cv_kind(cv)
        return cv

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("homepage", "").strip())


class ApplicationStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Application.Status.choices)
