from __future__ import annotations

from django import forms
from django.http import QueryDict

from .models import SavedSearch
from .services import normalize_query


class SubscribeForm(forms.Form):
    email = forms.EmailField(
        label="Your email",
        max_length=254,
        help_text="We send a link to confirm it first.",
        widget=forms.EmailInput(attrs={"autocomplete": "email", "placeholder": "you@example.com"}),
    )
    frequency = forms.ChoiceField(
        label="How often",
        choices=SavedSearch.Frequency.choices,
        initial=SavedSearch.Frequency.DAILY,
        widget=forms.RadioSelect,
    )
    query = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
    # A field people never see: only bots fill it in.
    website = forms.CharField(required=False, max_length=200)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("website"))

    def clean_query(self) -> str:
        """Only valid list filters are saved, in one spelling; anything else is dropped."""
        return normalize_query(QueryDict(self.cleaned_data["query"]))


class FrequencyForm(forms.Form):
    frequency = forms.ChoiceField(
        label="How often", choices=SavedSearch.Frequency.choices, widget=forms.RadioSelect
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
