"""The templates' helpers that keep parts of their answers per process answer as Django does."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.urls import reverse, set_script_prefix
from django.utils.safestring import mark_safe

from jobboard import jinja2
from postings.factories import PublishedPostingFactory
from reporting.forms import ReportForm
from reporting.templatetags import reporting_tags


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("postings:list", ()),
        ("accounts:login", ()),
        ("postings:apply", (42,)),
        ("reporting:report", (7,)),
        ("reporting:report", (1234567890123,)),
    ],
)
def test_url_gives_what_reverse_gives(name, args):
    for _ in range(2):  # worked out, then from the parts kept
        assert jinja2.url(name, *args) == reverse(name, args=args or None)


def test_url_follows_the_script_prefix():
    assert jinja2.url("reporting:report", 5) == "/jobs/5/report/"
    set_script_prefix("/board/")
    try:
        assert jinja2.url("reporting:report", 5) == "/board/jobs/5/report/"
        assert jinja2.url("postings:list") == reverse("postings:list")
    finally:
        set_script_prefix("/")


def test_url_of_other_arguments_is_reversed():
    assert jinja2.url("postings:detail", 3, "a-slug") == "/jobs/3-a-slug/"
    assert jinja2.url("postings:detail", pk=3, slug="a-slug") == "/jobs/3-a-slug/"


def test_truncatechars_as_django():
    from django.template import defaultfilters

    for text in ["", "short", "é" * 10, "e\u0301" * 6, "x" * 149, "x" * 150, "x" * 151]:
        for length in (0, 5, 150):
            assert jinja2.truncatechars(text, length) == defaultfilters.truncatechars(text, length)


@pytest.mark.django_db
def test_the_empty_report_form_kept_is_the_one_rendered(settings):
    settings.DEBUG = False
    posting = PublishedPostingFactory()
    field = mark_safe('<input type="hidden" name="csrfmiddlewaretoken" value="abc">')
    kept = reporting_tags.report_form({"csrf_input": field}, posting)
    rendered = render_to_string(
        "reporting/_report_form.html",
        {
            "action": reverse("reporting:report", args=[posting.pk]),
            "fields": reporting_tags._fields(ReportForm(posting=None)),
            "csrf_input": field,
        },
    )
    assert str(kept) == rendered
    assert f'action="/jobs/{posting.pk}/report/"' in kept and field in kept
