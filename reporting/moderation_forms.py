"""Forms for the moderation pages: the queue's filters and the one note every action needs."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.db.models import Q
from django.utils import timezone

from postings.models import Posting

from .forms import LISTING_PAGES, page_on_this_site
from .models import Report

AGES = {"day": timedelta(days=1), "week": timedelta(days=7)}


class QueueFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Listing or company")
    reason = forms.ChoiceField(required=False, choices=[("", "Any reason"), *Report.Reason.choices])
    status = forms.ChoiceField(required=False, choices=Report.Status.choices, initial="open")
    company = forms.CharField(required=False, max_length=100, label="Company")
    age = forms.ChoiceField(
        required=False,
        label="Reported",
        choices=[
            ("", "Any time"),
            ("day", "In the last day"),
            ("week", "In the last week"),
            ("older", "More than a week ago"),
        ],
    )

    def filter(self, reports):
        """The reports these filters keep; invalid input counts as no filter."""
        data = self.cleaned_data if self.is_valid() else {}
        reports = reports.filter(status=data.get("status") or Report.Status.OPEN)
        if data.get("reason"):
            reports = reports.filter(reason=data["reason"])
        if data.get("company"):
            reports = reports.filter(posting__company__name__icontains=data["company"])
        if data.get("q"):
            reports = reports.filter(
                Q(posting__title__icontains=data["q"])
                | Q(posting__company__name__icontains=data["q"])
            )
        age = data.get("age")
        if age in AGES:
            reports = reports.filter(created_at__gte=timezone.now() - AGES[age])
        elif age == "older":
            reports = reports.filter(created_at__lt=timezone.now() - AGES["week"])
        return reports


class NoteForm(forms.Form):
    note = forms.CharField(
        max_length=500,
        strip=True,
        error_messages={"required": "Write a short note saying why."},
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class BulkForm(NoteForm):
    ACTIONS = [("hide", "Hide"), ("close", "Close"), ("dismiss", "Dismiss all reports")]

    # The select starts on an empty choice: a moderator who only ticked listings and pressed
    # Apply has asked for nothing, and is told so.
    action = forms.ChoiceField(
        choices=ACTIONS,
        error_messages={
            "required": "Choose an action: nothing was changed.",
            "invalid_choice": "Choose an action from the list: nothing was changed.",
        },
    )
    postings = forms.TypedMultipleChoiceField(
        coerce=int, error_messages={"required": "Select at least one listing."}
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any id is acceptable here; the view looks each one up and says which it could not act on.
        self.fields["postings"].valid_value = lambda value: (
            str(value).isascii() and str(value).isdecimal()
        )


def posting_id_from(text: str) -> int | None:
    """The listing a moderator means: its id (“42”, “#42”) or its address on this site, full or
    from the path on. None when it names no listing."""
    text = text.strip()
    if text.lstrip("#").isascii() and text.lstrip("#").isdecimal():  # not "²": no int()
        return int(text.lstrip("#"))
    match = page_on_this_site(text)
    pages = {*LISTING_PAGES, ("moderation", "posting")}  # or its moderation page
    if match is not None and (match.namespace, match.url_name) in pages:
        return match.kwargs.get("pk")
    return None


class DuplicateForm(NoteForm):
    other = forms.CharField(
        max_length=500,
        label="The other listing (its address on this site, or its id)",
        error_messages={"required": "Give the other listing's address or id."},
    )

    def __init__(self, *args, posting: Posting, **kwargs):
        super().__init__(*args, **kwargs)
        self.posting = posting

    def clean_other(self) -> Posting:
        pk = posting_id_from(self.cleaned_data["other"])
        other = Posting.objects.filter(pk=pk).first() if pk else None
        if other is None:
            raise forms.ValidationError(
                "No listing on this site has that address or id: copy the address from the "
                "other listing's page."
            )
        if other.pk == self.posting.pk:
            raise forms.ValidationError("That is this listing: give the other one.")
        return other
