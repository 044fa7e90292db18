"""How times, deadlines and salaries read on the pages."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from html import escape

from django import template
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import _datetime_ambiguous_or_imaginary
from django.utils.translation import get_language

from ..models import Posting, address_key, detail_url

register = template.Library()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def span(delta: timedelta, *, ahead: bool = False) -> str:
    """A duration in the one unit a person would use: "29 minutes", "59 days", "3 months".

    Times ahead round up (a deadline 23 days 20 hours away "closes in 24 days"); times past
    round down ("posted 59 days ago" until the 60th day is complete).
    """
    seconds = abs(delta.total_seconds())
    whole = math.ceil if ahead else math.floor
    minutes, hours, days = whole(seconds / 60), whole(seconds / 3600), whole(seconds / 86400)
    if minutes < 60:
        return _plural(max(minutes, 1), "minute")
    if hours < 24:
        return _plural(hours, "hour")
    if days < 90:
        return _plural(days, "day")
    if days < 730:
        return _plural(days // 30, "month")
    return _plural(days // 365, "year")


@register.filter
def relative(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    now = now or timezone.now()
    delta = now - moment
    if abs(delta.total_seconds()) < 60:
        return "just now"
    return f"{span(delta)} ago" if delta.total_seconds() > 0 else f"in {span(delta, ahead=True)}"


@register.simple_tag(takes_context=True)
def absolute_url(context, path: str) -> str:
    """``path`` as a full address on the host and scheme of the request, for tags read off this
    site (Open Graph's og:image)."""
    return context["request"].build_absolute_uri(path)


@register.filter
def datetime_attr(moment: datetime | None) -> str:
    """A time for ``<time datetime="...">``, to the second: HTML allows at most three fraction
    digits, and Python's isoformat gives six."""
    if moment is None:
        return ""
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return moment.isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Rendering:
    """When, in which time zone and language and under which address prefix a page is rendered,
    looked up once for all its cards: each of these lookups goes through asgiref's
    context-local storage (some microseconds each), and a card needed about ten."""

    now: datetime
    zone: tzinfo
    language: str | None  # None: looked up where needed
    months: tuple[str, ...]  # "Jan" … "Dec" at 1 … 12, in that language
    address: tuple  # ``models.address_key()``; empty: looked up where needed

    @classmethod
    def current(cls) -> Rendering:
        language = get_language()
        zone = timezone.get_current_timezone()
        return cls(timezone.now(), zone, language, month_names(language), address_key())

    def url(self, posting: Posting) -> str:
        """``posting.get_absolute_url()``."""
        return detail_url(posting.pk, posting.slug or "job", self.address)

    def place(self, posting: Posting) -> str:
        """``posting.location_display``."""
        return posting.place(self.language)


_month_names: dict[str | None, tuple[str, ...]] = {}


def month_names(language: str | None = None) -> tuple[str, ...]:
    """Django's "M" names, translated once per language (``MONTHS_3`` holds lazy strings, each
    use of which translates again)."""
    language = language or get_language()
    names = _month_names.get(language)
    if names is None:
        names = _month_names[language] = ("", *(str(MONTHS_3[m]).title() for m in range(1, 13)))
    return names


def _rendering(given: object) -> Rendering:
    if isinstance(given, Rendering):
        return given
    # A template that set none passes Jinja's undefined value: the tag looks up only the time,
    # zone and months it needs (no language, no address: those are looked up when used).
    return Rendering(timezone.now(), timezone.get_current_timezone(), None, month_names(), ())


def _local(moment: datetime, zone: tzinfo) -> datetime:
    """``timezone.localtime(moment)`` in a zone already looked up (a naive time is kept)."""
    return moment.astimezone(zone) if moment.utcoffset() is not None else moment


def _exact_local(local: datetime, months: tuple[str, ...]) -> str:
    zone = local.tzinfo
    # As Django's "T": no name for a time that a change of the clocks makes ambiguous or skips.
    name = "" if _datetime_ambiguous_or_imaginary(local, zone) else str(zone.tzname(local))
    return (
        f"{months[local.month]} {local.day}, {local.year:04d}, "
        f"{local.hour:02d}:{local.minute:02d} {name}"
    )


def exact(moment: datetime) -> str:
    """``date_format(localtime(moment), "M j, Y, H:i T")``, "Aug 23, 2026, 14:05 UTC", written
    out as Django's formatter writes it: through the formatter it was half of a card's time."""
    return _exact_local(timezone.localtime(moment), month_names())


def _time(local: datetime, text: str, months: tuple[str, ...]) -> str:
    """``<time datetime title>text</time>``; the text is escaped, the rest is digits and names."""
    attr, title = local.isoformat(timespec="seconds"), _exact_local(local, months)
    # html.escape is Django's escape without its lazy-string wrapper.
    return f'<time datetime="{attr}" title="{title}">{escape(text)}</time>'


@register.simple_tag
def timestamp(
    moment: datetime | None, missing: str = "not yet", *, rendering: Rendering | None = None
) -> SafeString:
    """A relative time inside <time datetime>, with the exact time on hover."""
    if moment is None:
        return format_html('<span class="muted">{}</span>', missing)
    rendering = _rendering(rendering)
    return SafeString(
        _time(_local(moment, rendering.zone), relative(moment, rendering.now), rendering.months)
    )


def closes_when(deadline: datetime, now: datetime | None = None, zone: tzinfo | None = None) -> str:
    """ "in 5 hours" within a day; otherwise by calendar days: "tomorrow", "in 24 days"."""
    now = now or timezone.now()
    if deadline - now < timedelta(days=1):
        return f"in {span(deadline - now, ahead=True)}"
    zone = zone or timezone.get_current_timezone()
    days = (_local(deadline, zone).date() - _local(now, zone).date()).days
    return "tomorrow" if days == 1 else f"in {_plural(days, 'day')}"


@register.simple_tag
def deadline_state(posting: Posting, *, rendering: Rendering | None = None) -> SafeString:
    """ "closes in 3 days", "closes in 5 hours", "closed on Aug 23, 2026", "no deadline"."""
    deadline = posting.deadline
    if posting.is_open:
        if deadline is None:
            return mark_safe('<span class="state state-open">open, no deadline</span>')
        rendering = _rendering(rendering)
        when = closes_when(deadline, rendering.now, rendering.zone)
        time = _time(_local(deadline, rendering.zone), when, rendering.months)
        return SafeString(f'<span class="state state-open">closes {time}</span>')
    ended = deadline if posting.state == "expired" and deadline else posting.closed_at
    if ended is None:
        return mark_safe('<span class="state state-closed">closed</span>')
    rendering = _rendering(rendering)
    local = _local(ended, rendering.zone)
    day = f"{rendering.months[local.month]} {local.day}, {local.year:04d}"  # Django's "M j, Y"
    return SafeString(
        f'<span class="state state-closed">closed on {_time(local, day, rendering.months)}</span>'
    )


@register.filter
def salary(posting: Posting) -> str:
    if not posting.has_salary:
        return ""
    low, high = posting.salary_min, posting.salary_max
    if low is not None and high is not None and low != high:
        amount = f"{low:,}–{high:,}"
    elif low is not None and high is None:
        amount = f"from {low:,}"
    elif low is None:
        amount = f"up to {high:,}"
    else:
        amount = f"{low:,}"
    period = posting.get_salary_period_display()
    return f"{posting.salary_currency} {amount} {period}".strip()


@register.filter
def is_web_link(url: str) -> bool:
    """Only http(s) links are ever put in an href, whatever got into the database."""
    return isinstance(url, str) and url.lower().startswith(("https://", "http://"))


@register.filter
def json_ld(value) -> SafeString:
    """Structured data in a ``<script type="application/ld+json">``, escaped by ``json_script``."""
    if not value:
        return SafeString("")
    script = json_script(value)
    return SafeString(script.replace('type="application/json"', 'type="application/ld+json"', 1))
