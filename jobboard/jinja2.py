"""The site's pages are Jinja2 templates, rendered through Django's own Jinja2 backend.

Django's template language cost about 70 % of a fresh page (some 11,000 variable lookups on a
list page); Jinja2 compiles each template to Python once. This is the one place that says what
a template may call: Django's ``url`` and ``static``, the product's own helpers (times,
deadlines, salaries, the report form), and filters named and behaving as Django's do, so a
template reads as it did. Django's admin and form widgets keep Django's own templates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.contrib.humanize.templatetags import humanize
from django.template import defaultfilters
from django.templatetags.static import static
from django.urls import reverse
from django.utils.safestring import SafeString
from django.utils.timezone import template_localtime
from jinja2 import ChainableUndefined, Environment, pass_context

from accounts.templatetags import account_tags
from postings.templatetags import postings_tags
from reporting.templatetags import reporting_tags


def url(name: str, *args: Any, **kwargs: Any) -> str:
    """``{{ url("postings:detail", posting.pk, posting.slug) }}``: Django's ``reverse``."""
    return reverse(name, args=args or None, kwargs=kwargs or None)


def intcomma(value: Any) -> str:
    """12345 → "12,345". Integers (the counts on every page) without Django's locale lookups."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return humanize.intcomma(value)


def default(value: Any, fallback: Any = "") -> Any:
    """Django's ``default``: the fallback for any false value, not only an undefined one."""
    return value or fallback


def date_filter(value: date | datetime | None, fmt: str | None = None) -> str:
    """Django's ``date``, in the site's time zone: ``{{ posting.deadline|date("M j, Y") }}``."""
    return defaultfilters.date(template_localtime(value), fmt)


def time_filter(value: datetime | None, fmt: str | None = None) -> str:
    return defaultfilters.time(template_localtime(value), fmt)


def linebreaksbr(value: Any) -> SafeString:
    """Django's ``linebreaksbr``, escaping the text first."""
    return defaultfilters.linebreaksbr(value, autoescape=True)


def environment(**options: Any) -> Environment:
    # Like Django's templates, a missing value (or one of its attributes) renders as nothing.
    options["undefined"] = ChainableUndefined
    env = Environment(**options)  # noqa: S701 (settings turn autoescape on for HTML)
    env.globals.update(
        url=url,
        static=static,
        timestamp=postings_tags.timestamp,
        deadline_state=postings_tags.deadline_state,
        absolute_url=pass_context(postings_tags.absolute_url),
        report_form=pass_context(reporting_tags.report_form),
        moderation_counts=reporting_tags.moderation_counts,
    )
    env.filters.update(
        # Django's filters, by their Django names.
        capfirst=defaultfilters.capfirst,
        cut=defaultfilters.cut,
        date=date_filter,
        default=default,
        floatformat=defaultfilters.floatformat,
        intcomma=intcomma,
        linebreaksbr=linebreaksbr,
        naturaltime=humanize.naturaltime,
        pluralize=defaultfilters.pluralize,
        time=time_filter,
        timeuntil=defaultfilters.timeuntil_filter,
        truncatechars=defaultfilters.truncatechars,
        urlencode=defaultfilters.urlencode,
        wordcount=defaultfilters.wordcount,  # Django's (split on spaces), not Jinja2's own
        yesno=defaultfilters.yesno,
        # The product's own.
        datetime_attr=postings_tags.datetime_attr,
        duration=account_tags.duration,
        from_now=account_tags.from_now,
        is_web_link=postings_tags.is_web_link,
        json_ld=postings_tags.json_ld,
        logo_url=account_tags.logo_url,
        relative=postings_tags.relative,
        salary=postings_tags.salary,
    )
    return env
