"""The site's pages are Jinja2 templates, rendered through Django's own Jinja2 backend.

Django's template language cost about 70 % of a fresh page (some 11,000 variable lookups on a
list page); Jinja2 compiles each template to Python once. This is the one place that says what
a template may call: Django's ``url`` and ``static``, the product's own helpers (times,
deadlines, salaries, the report form), and filters named and behaving as Django's do, so a
template reads as it did. Django's admin and form widgets keep Django's own templates.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.contrib.humanize.templatetags import humanize
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import defaultfilters
from django.templatetags.static import static as django_static
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.safestring import SafeString
from django.utils.timezone import template_localtime
from django.utils.translation import get_language
from jinja2 import ChainableUndefined, Environment, pass_context

from accounts.templatetags import account_tags
from postings.templatetags import postings_tags
from reporting.templatetags import reporting_tags

# Addresses split where their ids go, worked out once per name, number of ids, script prefix,
# URLconf and language: reverse() took a tenth of a millisecond, a dozen times a listing's page.
_SAMPLE_IDS = (918273645, 918273646, 918273647, 918273648)
_addresses: dict[tuple, tuple[str, ...] | None] = {}
_UNKNOWN: Any = object()


def url(name: str, *args: Any, **kwargs: Any) -> str:
    """``{{ url("postings:detail", posting.pk, posting.slug) }}``: Django's ``reverse``. Names
    without arguments, or with ids only (non-negative integers), from their parts kept."""
    if not kwargs and len(args) <= len(_SAMPLE_IDS) and all(_is_id(arg) for arg in args):
        key = (name, len(args), get_script_prefix(), get_urlconf(), get_language())
        parts = _addresses.get(key, _UNKNOWN)
        if parts is _UNKNOWN:
            if len(_addresses) >= 1024:  # names come from templates: few; never grow unbounded
                _addresses.clear()
            parts = _addresses[key] = _address_parts(name, len(args))
        if parts is not None:
            return _joined(parts, args)
    return reverse(name, args=args or None, kwargs=kwargs or None)


def _joined(parts: tuple[str, ...] | list[str], ids: Any) -> str:
    return "".join(part + str(pk) for part, pk in zip(parts, ids, strict=False)) + parts[-1]


def _is_id(value: Any) -> bool:
    return type(value) is int and value >= 0


def _address_parts(name: str, count: int) -> tuple[str, ...] | None:
    """The address of ``name`` around its ``count`` ids: the text before each and after the
    last; None (reverse() every time) unless reversing made-up ids finds each once, in order,
    and other ids (a shorter one, one of each length) give the same address as the parts."""
    samples = [str(pk) for pk in _SAMPLE_IDS[:count]]
    try:
        address = reverse(name, args=list(_SAMPLE_IDS[:count]) or None)
    except NoReverseMatch:
        return None
    parts = []
    for sample in samples:
        if address.count(sample) != 1:
            return None
        head, _sample, address = address.partition(sample)
        parts.append(head)
    parts.append(address)
    for check in ([7] * count, list(range(10, 10 + count))):
        try:
            expected = reverse(name, args=check or None)
        except NoReverseMatch:
            return None
        if _joined(parts, check) != expected:
            return None
    return tuple(parts)


_static_addresses: dict[str, str] = {}


def static(path: str) -> str:
    """Django's ``static``, kept per file outside DEBUG: the hashed name's lookup and the URL
    joining took a twentieth of a millisecond, five times a page."""
    if settings.DEBUG:
        return django_static(path)
    found = _static_addresses.get(path)
    if found is None:
        if len(_static_addresses) >= 1024:
            _static_addresses.clear()
        found = _static_addresses[path] = django_static(path)
    return found


@receiver(setting_changed)
def _forget_addresses(*, setting: str, **kwargs: Any) -> None:
    # Tests change where addresses and static files go.
    if setting in {"ROOT_URLCONF", "STATIC_URL", "STORAGES", "DEBUG", "FORCE_SCRIPT_NAME"}:
        _addresses.clear()
        _static_addresses.clear()


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


def truncatechars(value: Any, length: Any) -> Any:
    """Django's ``truncatechars``; a text no longer than ``length`` comes back as Django gives
    it (NFC-normalized, which only shortens it) without counting it character by character."""
    if type(value) is str and type(length) is int and length > 0 and len(value) <= length:
        return unicodedata.normalize("NFC", value)
    return defaultfilters.truncatechars(value, length)


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
        truncatechars=truncatechars,
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
