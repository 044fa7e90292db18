from functools import cache

from django import template
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from postings.models import Posting, PostingRevision

from ..forms import ReportForm
from ..models import Report, postings_hidden_after_reports, postings_waiting_for_approval

register = template.Library()


def report_form(context, posting: Posting, form: ReportForm | None = None) -> SafeString:
    """The "Report this job" form, for the listing's page or a page of its own:
    ``{{ report_form(posting) }}``, with the page's CSRF field."""
    return mark_safe(  # noqa: S308 (the template escapes what it shows)
        render_to_string(
            "reporting/_report_form.html",
            {
                "posting": posting,
                "fields": _blank_fields() if form is None else _fields(form),
                "csrf_input": context.get("csrf_input", ""),
            },
        )
    )


def _fields(form: ReportForm) -> SafeString:
    return mark_safe(render_to_string("reporting/_report_fields.html", {"form": form}))  # noqa: S308


def _blank_fields() -> SafeString:
    """An empty form's fields are the same on every listing's page, and rendering Django's form
    widgets costs a third of that page: rendered once per process (every time while DEBUG, so
    template edits show)."""
    if settings.DEBUG:
        return _fields(ReportForm(posting=None))
    return _cached_blank_fields()


@cache
def _cached_blank_fields() -> SafeString:
    return _fields(ReportForm(posting=None))


@register.simple_tag
def moderation_counts() -> dict[str, int]:
    """How many listings each moderation queue holds, for its tab: four counts of small sets."""
    return {
        "reported": Report.objects.open().values("posting").distinct().count(),
        "hidden": postings_hidden_after_reports().count(),
        "waiting": postings_waiting_for_approval().count(),
        "revisions": PostingRevision.objects.pending().count(),
    }
