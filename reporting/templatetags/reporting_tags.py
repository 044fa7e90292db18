from functools import cache
from typing import Any

from django import template
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from markupsafe import escape

from postings.models import Posting, PostingRevision

from ..forms import ReportForm
from ..models import Report, postings_hidden_after_reports, postings_waiting_for_approval

register = template.Library()


def report_form(context, posting: Posting, form: ReportForm | None = None) -> SafeString:
    """The "Report this job" form, for the listing's page or a page of its own:
    ``{{ report_form(posting) }}``, with the page's CSRF field."""
    from jobboard.jinja2 import url  # (jobboard.jinja2 imports this module)

    action = url("reporting:report", posting.pk)
    csrf_input = context.get("csrf_input", "")
    if form is None and not settings.DEBUG and (parts := _cached_blank_form()) is not None:
        # An empty form is the same on every listing's page but for these two (escaped as the
        # template escapes them).
        head, middle, tail = parts
        return mark_safe(f"{head}{escape(action)}{middle}{escape(csrf_input)}{tail}")  # noqa: S308
    return _render_form(action, csrf_input, _blank_fields() if form is None else _fields(form))


def _render_form(action: str, csrf_input: Any, fields: SafeString) -> SafeString:
    return mark_safe(  # noqa: S308 (the template escapes what it shows)
        render_to_string(
            "reporting/_report_form.html",
            {"action": action, "fields": fields, "csrf_input": csrf_input},
        )
    )


_ACTION, _CSRF = "\x00action\x00", "\x00csrf\x00"


@cache
def _cached_blank_form() -> tuple[str, str, str] | None:
    """The empty form rendered once per process, split where its action and CSRF field go (None
    should the template not show each once, in that order)."""
    form = _render_form(_ACTION, mark_safe(_CSRF), _cached_blank_fields())  # noqa: S308
    if form.count(_ACTION) != 1 or form.count(_CSRF) != 1 or form.find(_ACTION) > form.find(_CSRF):
        return None
    head, _action, rest = form.partition(_ACTION)
    middle, _csrf, tail = rest.partition(_CSRF)
    return head, middle, tail


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
