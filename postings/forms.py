"""The employer's posting form, and the small forms of the lifecycle actions."""

from __future__ import annotations

from datetime import date, datetime, time

from django import forms
from django.db import models
from django.utils import timezone

from .models import Posting
from .text import is_one_line, without_control_characters

CURRENCIES = [
    ("EUR", "EUR — Euro"), ("USD", "USD — US dollar"), ("GBP", "GBP — Pound sterling"),
    ("CHF", "CHF — Swiss franc"), ("CAD", "CAD — Canadian dollar"),
    ("AUD", "AUD — Australian dollar"), ("NZD", "NZD — New Zealand dollar"),
    ("SEK", "SEK — Swedish krona"), ("NOK", "NOK — Norwegian krone"),
    ("DKK", "DKK — Danish krone"), ("PLN", "PLN — Polish złoty"), ("CZK", "CZK — Czech koruna"),
    ("HUF", "HUF — Hungarian forint"), ("RON", "RON — Romanian leu"),
    ("RSD", "RSD — Serbian dinar"), ("TRY", "TRY — Turkish lira"),
    ("INR", "INR — Indian rupee"), ("SGD", "SGD — Singapore dollar"),
    ("JPY", "JPY — Japanese yen"), ("CNY", "CNY — Chinese yuan"),
    ("BRL", "BRL — Brazilian real"), ("MXN", "MXN — Mexican peso"),
    ("ZAR", "ZAR — South African rand"), ("AED", "AED — UAE dirham"),
]  # fmt: skip

MAX_DESCRIPTION = 20_000
MAX_SALARY = 100_000_000


def https_formfield(field: models.Field, **kwargs) -> forms.Field | None:
    """Form fields for model fields, with links typed without a scheme taken as https."""
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


def end_of_day(day: date) -> datetime:
    """A deadline given as a date closes at the end of that day, in the site's time zone."""
    return timezone.make_aware(datetime.combine(day, time(23, 59, 59)))


class DeadlineField(forms.DateField):
    """A day, closing at its end. ``require_future=False`` leaves the future check to the form
    (an edit that keeps an old deadline is not a new deadline)."""

    widget = forms.DateInput(attrs={"type": "date"})

    def __init__(self, *args, require_future: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.require_future = require_future

    def clean(self, value):
        day = super().clean(value)
        if day is None:
            return None
        if day.year > timezone.now().year + 2:
            raise forms.ValidationError("Choose a deadline within the next two years.")
        deadline = end_of_day(day)
        if self.require_future and deadline <= timezone.now():
            raise forms.ValidationError("The deadline must be in the future.")
        return deadline


class PostingForm(forms.ModelForm):
    """Every fact the detail page shows, validated so that an employer understands why."""

    class ApplyBy:
        ON_BOARD = "board"
        LINK = "link"

    apply_by = forms.ChoiceField(
        label="How candidates apply",
        choices=[
            (
                ApplyBy.ON_BOARD,
                "Here, on this board, with their CV (you see them in your dashboard)",
            ),
            (ApplyBy.LINK, "On your own site (give the link)"),
        ],
        widget=forms.RadioSelect,
        initial=ApplyBy.ON_BOARD,
    )
    deadline = DeadlineField(
        label="Application deadline",
        required=False,
        require_future=False,
        help_text="Applications close at the end of this day. Leave empty for no deadline.",
    )
    salary_min = forms.IntegerField(
        label="Salary from", required=False, min_value=0, max_value=MAX_SALARY
    )
    salary_max = forms.IntegerField(
        label="Salary up to", required=False, min_value=0, max_value=MAX_SALARY
    )
    salary_currency = forms.ChoiceField(
        label="Currency", required=False, choices=[("", "—"), *CURRENCIES]
    )
    description = forms.CharField(
        label="Description",
        max_length=MAX_DESCRIPTION,
        widget=forms.Textarea(attrs={"rows": 16}),
        help_text="Markdown: ## for a heading, - for a list item, **bold**, [text](https://…).",
    )

    class Meta:
        model = Posting
        formfield_callback = https_formfield
        fields = [
            "title", "description", "city", "region", "country",
            "workplace", "employment_type", "seniority", "practice_area", "salary_min",
            "salary_max", "salary_currency", "salary_period", "deadline", "apply_url",
        ]  # fmt: skip
        labels = {
            "seniority": "Position (seniority)",
            "apply_url": "Application link",
            "salary_period": "Salary period",
        }
        widgets = {"apply_url": forms.URLInput(attrs={"placeholder": "https://"})}

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")  # labels without colons, like the rest of the site
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["apply_by"].initial = (
                self.ApplyBy.ON_BOARD if self.instance.applies_on_board else self.ApplyBy.LINK
            )
            if self.instance.deadline:
                self.initial["deadline"] = timezone.localtime(self.instance.deadline).date()
        self.fields["salary_period"].required = False
        for field in self.fields.values():
            label = str(field.label or "").lower()
            verb = "Choose" if getattr(field, "choices", None) else "Fill in"
            field.error_messages["required"] = f"{verb} the {label}."
        self.fields["apply_url"].help_text = "Only when candidates apply on your site: https://…"
        for field in self.fields.values():
            choices = getattr(field, "choices", None)
            if choices and not isinstance(field.widget, forms.RadioSelect):
                field.choices = [("", "Choose…") if value == "" else (value, label)
                                 for value, label in field.choices]  # fmt: skip

    def clean_deadline(self):
        deadline = self.cleaned_data.get("deadline")
        kept = self.instance.deadline
        if (
            deadline
            and kept
            and timezone.localtime(kept).date() == timezone.localtime(deadline).date()
        ):
            return kept  # the same day as before: unchanged, even if it has passed
        if deadline and deadline <= timezone.now():
            raise forms.ValidationError("The deadline must be in the future.")
        return deadline

    def clean_description(self) -> str:
        # Browsers send textarea lines ending in \r\n; stored text uses \n, so an untouched
        # description compares equal and does not count as an update.
        return self.cleaned_data["description"].replace("\r\n", "\n").replace("\r", "\n")

    def clean_title(self) -> str:
        title = " ".join(without_control_characters(self.cleaned_data["title"]).split())
        if not is_one_line(title):  # a bidi override would turn the title around in emails too
            raise forms.ValidationError(
                "The title holds an invisible character that reorders text: type it again."
            )
        if len(title) < 3:
            raise forms.ValidationError("Give the role a title of at least three characters.")
        return title

    def clean_apply_url(self) -> str:
        url = self.cleaned_data.get("apply_url", "")
        if url and not url.lower().startswith("https://"):
            raise forms.ValidationError("The application link must start with https://")
        return url

    def clean(self):
        cleaned = super().clean()
        for name, value in cleaned.items():  # a bell or an escape in a city is never meant
            if isinstance(value, str):
                cleaned[name] = without_control_characters(value)
        wants_link = cleaned.get("apply_by") == self.ApplyBy.LINK
        if wants_link and not cleaned.get("apply_url") and "apply_url" not in self.errors:
            self.add_error("apply_url", "Give the https:// link where candidates apply.")
        low, high = cleaned.get("salary_min"), cleaned.get("salary_max")
        if (low is not None or high is not None) and "salary_min" not in self.errors:
            if not cleaned.get("salary_currency"):
                self.add_error("salary_currency", "Which currency is the salary in?")
            if not cleaned.get("salary_period"):
                self.add_error("salary_period", "Is the salary per hour, month or year?")
        if low is not None and high is not None and low > high:
            self.add_error("salary_max", "The top of the range must be at least its start.")
        if low is None and high is None:
            cleaned["salary_currency"] = cleaned["salary_period"] = ""
        return cleaned

    def _post_clean(self):
        # The model's own clean() speaks for the city and the country (city/country mismatch).
        self.instance.applies_on_board = self.cleaned_data.get("apply_by") == self.ApplyBy.ON_BOARD
        if self.instance.applies_on_board:
            self.cleaned_data["apply_url"] = ""
        already = {name: list(errors) for name, errors in self._errors.items()}
        super()._post_clean()
        # A field the form already explained keeps that one message: the model's checks run on
        # what was valid, so they would repeat it ("which currency") or misread a rejected value
        # as empty ("needs the city").
        for name, errors in already.items():
            self._errors[name] = self.error_class(errors)


class CloseForm(forms.Form):
    reason = forms.ChoiceField(
        choices=[("filled", "The role was filled"), ("withdrawn", "We withdrew the role")],
        widget=forms.RadioSelect,
    )


class DeadlineForm(forms.Form):
    deadline = DeadlineField(label="New deadline")


class ReopenForm(forms.Form):
    deadline = DeadlineField(
        label="New deadline", required=False, help_text="Needed when the old one has passed."
    )
