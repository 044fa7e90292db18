from __future__ import annotations

from urllib.parse import urlparse

from django import forms
from django.conf import settings
from django.http.request import validate_host
from django.urls import Resolver404, ResolverMatch, resolve

from postings.models import Posting

from .models import Report

MAX_DETAILS = 2000
# A listing's own page, whose address a visitor copies: its full address or the short one.
LISTING_PAGES = {("postings", "detail"), ("postings", "short")}


def page_on_this_site(address: str) -> ResolverMatch | None:
    """The page an address someone pasted names, when it is one of this site's: its full address
    (any of ``ALLOWED_HOSTS``) or from the path on. None for another site's address, one that
    names no page, or no address at all ("http://[x/")."""
    try:
        parts = urlparse(address.strip())
        if parts.netloc and not validate_host(parts.hostname or "", settings.ALLOWED_HOSTS):
            return None
        return resolve(parts.path or "/")
    except (ValueError, Resolver404):
        return None


class ReportForm(forms.Form):
    reason = forms.ChoiceField(
        label="What is wrong?",
        choices=[c for c in Report.Reason.choices if c[0] in Report.VISITOR_REASONS],
        widget=forms.RadioSelect,
    )
    details = forms.CharField(
        label="Details (optional)",
        required=False,
        max_length=MAX_DETAILS,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": MAX_DETAILS}),
    )
    duplicate_of = forms.CharField(
        label="Link to the other listing (for a duplicate)",
        required=False,
        max_length=500,
        help_text="Optional: the address of the same job on this site.",
    )
    email = forms.EmailField(
        label="Your email (optional)",
        required=False,
        max_length=254,
        help_text="Only if you would like us to follow up.",
    )
    # A field people never see: only bots fill it in.
    website = forms.CharField(required=False, max_length=200)

    def __init__(self, *args, posting: Posting, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.posting = posting

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("website"))

    def clean_duplicate_of(self) -> Posting | None:
        link = self.cleaned_data["duplicate_of"].strip()
        if not link:
            return None
        match = page_on_this_site(link)
        listing = match is not None and (match.namespace, match.url_name) in LISTING_PAGES
        pk = match.kwargs.get("pk") if listing else None
        other = Posting.objects.public().filter(pk=pk).first() if pk else None
        if other is None:
            raise forms.ValidationError(
                "That is not the address of a listing on this site; copy it from the other "
                "listing's page, or leave the field empty."
            )
        if other.pk == self.posting.pk:
            raise forms.ValidationError("That is this listing; give the address of the other one.")
        return other

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reason") != Report.Reason.DUPLICATED:
            cleaned["duplicate_of"] = None
        return cleaned
