"""The job list's filters: one FilterSet, every filter a GET parameter so a list can be shared."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from datetime import timedelta

import django_filters
from django import forms
from django.db import connection
from django.db.models import Q, QuerySet
from django.forms.renderers import get_default_renderer
from django.utils import timezone
from django.utils.choices import BaseChoiceIterator
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django_countries import countries

from .models import Company, Posting, PostingQuerySet
from .search import has_search_terms, keyword_filter

POSTED_WITHIN = {"1": timedelta(days=1), "7": timedelta(days=7), "30": timedelta(days=30)}
POSTED_CHOICES = [("1", "Last 24 hours"), ("7", "Last 7 days"), ("30", "Last 30 days")]

MAX_KEYWORDS_LENGTH = 200
MAX_SALARY = 100_000_000


# What people type for a country that the ISO list names otherwise.
COUNTRY_ALIASES = {
    "usa": "US", "us": "US", "united states": "US", "america": "US", "uk": "GB",
    "great britain": "GB", "britain": "GB", "holland": "NL", "the netherlands": "NL",
    "south korea": "KR", "korea": "KR", "russia": "RU", "uae": "AE", "czechia": "CZ",
}  # fmt: skip


def country_codes(text: str) -> list[str]:
    """ISO codes a place name may mean: a country's name, its two-letter code or a common alias."""
    folded = text.strip().casefold()
    by_name, known = _country_names()
    codes = list(by_name.get(folded, ()))
    if len(folded) == 2 and folded.upper() in known:
        codes.append(folded.upper())
    if folded in COUNTRY_ALIASES:
        codes.append(COUNTRY_ALIASES[folded])
    return sorted(set(codes))


# Per language: each country's name, case folded, to its codes; and every code.
_names_of_countries: dict[str | None, tuple[dict[str, list[str]], frozenset[str]]] = {}


def _country_names() -> tuple[dict[str, list[str]], frozenset[str]]:
    """Worked out once per language, not by folding 250 names for each place asked for."""
    language = get_language()
    if language not in _names_of_countries:
        by_name: dict[str, list[str]] = {}
        for code, label in countries:
            by_name.setdefault(label.casefold(), []).append(code)
        _names_of_countries[language] = (by_name, frozenset(code for code, _label in countries))
    return _names_of_countries[language]


def location_parts(value: str) -> list[str]:
    """The place filter's parts: "Austin", "Texas", "Germany" or "Austin, Texas". Every part
    names the city, the region or the country (letter case aside); at most three."""
    return [part for part in (p.strip() for p in value.split(",")[:3]) if part]


class SharedChoices(BaseChoiceIterator):
    """A list of choices that is the same for every request, shared by every request's form.

    A form deep-copies its fields, choices and all, on every request. A deep copy of
    ``countries`` is a new object that translates and sorts all 250 names again (django-countries
    caches them per object, per language): that was a third of the list page's Python outside
    its templates. The other lists are only copied, but on every request too."""

    def __init__(self, choices: Iterable[tuple[str, str]]) -> None:
        self.choices = choices

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.choices)

    def __len__(self) -> int:
        return len(self.choices)  # type: ignore[arg-type]

    def __deepcopy__(self, memo: dict) -> SharedChoices:
        return self  # never changed by a form


class PrerenderedSelect(forms.Select):
    """Django's ``Select``, byte for byte, with its HTML rendered once per process (for each list
    of choices) instead of through two templates per option on every page: the country list's
    250 options were a third of the job list's rendering, and building its 250 options' contexts
    per request (``optgroups()``) was still a millisecond. Per request it only picks the
    selected option, as ``optgroups()`` does: the first whose value is among the widget's."""

    # A list of choices -> its options' HTML, unselected and selected, and the index of the first
    # option of each value.
    _rendered: dict[tuple, tuple[list[str], list[str], dict[str, int]]] = {}
    # The <select> around the options, by what it shows: its template, name and attributes.
    _shells: dict[tuple, tuple[str, str]] = {}

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        choices = tuple(self.choices)
        if (
            self.allow_multiple_selected
            or self.option_inherits_attrs
            or any(isinstance(label, list | tuple) for _value, label in choices)
        ):
            return super().render(name, value, attrs, renderer)  # as Django renders them
        # Django's context for the widget, less the options (``ChoiceWidget.get_context``).
        context = forms.Widget.get_context(self, name, value, attrs)
        plain, selected, first = self._options_html(name, choices, renderer)
        html = plain.copy()
        found = [first[v] for v in context["widget"]["value"] if v in first]
        if found:
            html[min(found)] = selected[min(found)]
        head, tail = self._shell(context, renderer)
        # Every part is the output of Django's own widget templates, escaped there.
        return mark_safe(head + "".join(html) + tail)  # noqa: S308

    def _options_html(
        self, name: str, choices: tuple, renderer
    ) -> tuple[list[str], list[str], dict[str, int]]:
        key = (choices, self.option_template_name, repr(self.checked_attribute))
        rendered = self._rendered.get(key)  # kept in a local: another thread may clear them
        if rendered is None:
            if len(self._rendered) >= 32:  # lists of choices are few; never grow without bound
                self._rendered.clear()
            options = [
                self.create_option(name, "" if v is None else v, label, False, index)
                for index, (v, label) in enumerate(choices)
            ]
            first: dict[str, int] = {}
            for index, option in enumerate(options):
                first.setdefault(str(option["value"]), index)
            rendered = self._rendered[key] = (
                [self._option_html(option, renderer) for option in options],
                [self._option_html(self._selected(option), renderer) for option in options],
                first,
            )
        return rendered

    def _shell(self, context: dict, renderer) -> tuple[str, str]:
        """The <select> without options, split where they go. (Its template shows the widget's
        value only through the options.)"""
        widget = {k: v for k, v in context["widget"].items() if k != "value"}
        key = repr(sorted(widget.items()))
        shell = self._shells.get(key)
        if shell is None:
            if len(self._shells) >= 32:
                self._shells.clear()
            empty = self._render(
                self.template_name, {**context, "widget": {**widget, "optgroups": []}}, renderer
            )
            head, end, tail = empty.rpartition("\n</select>")
            shell = self._shells[key] = (head, end + tail)
        return shell

    def _selected(self, option: dict) -> dict:
        return {**option, "selected": True, "attrs": option["attrs"] | self.checked_attribute}

    def _option_html(self, option: dict, renderer) -> str:
        # As select.html's {% include %} places each option: indented on a line of its own, and
        # not stripped (as the renderer strips a whole widget).
        template = (renderer or get_default_renderer()).get_template(option["template_name"])
        return "\n  " + template.render({"widget": option})


class CheckboxFilter(django_filters.BooleanFilter):
    """A tick box: present means yes, absent means no (a browser sends "on")."""

    field_class = forms.BooleanField


class WholeNumberFilter(django_filters.NumberFilter):
    """Whole numbers only: "1e999" or "12.5" is an error to show, not a number to query with."""

    field_class = forms.IntegerField


class PostingFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label="Keywords",
        method="filter_keywords",
        max_length=MAX_KEYWORDS_LENGTH,
        help_text='Title, company or description. "Exact phrase", -exclude.',
    )
    location = django_filters.CharFilter(label="Place", method="filter_location", max_length=200)
    country = django_filters.ChoiceFilter(
        label="Country",
        choices=SharedChoices(countries),
        empty_label="Any country",
        widget=PrerenderedSelect,
    )
    workplace = django_filters.MultipleChoiceFilter(
        distinct=False,
        choices=SharedChoices(Posting.Workplace.choices),
        widget=forms.CheckboxSelectMultiple,
    )
    employment_type = django_filters.MultipleChoiceFilter(
        distinct=False,
        label="Employment type",
        choices=SharedChoices(Posting.EmploymentType.choices),
        widget=forms.CheckboxSelectMultiple,
    )
    seniority = django_filters.MultipleChoiceFilter(
        distinct=False,
        choices=SharedChoices(Posting.Seniority.choices),
        widget=forms.CheckboxSelectMultiple,
    )
    practice_area = django_filters.MultipleChoiceFilter(
        distinct=False,
        label="Practice area",
        choices=SharedChoices(Posting.PracticeArea.choices),
        widget=forms.CheckboxSelectMultiple,
    )
    company = django_filters.CharFilter(label="Company", method="filter_company", max_length=200)
    company_type = django_filters.MultipleChoiceFilter(
        distinct=False,
        label="Company type",
        field_name="company__company_type",
        choices=SharedChoices(Company.CompanyType.choices),
        widget=forms.CheckboxSelectMultiple,
    )
    posted = django_filters.ChoiceFilter(
        label="Date posted",
        choices=SharedChoices(POSTED_CHOICES),
        method="filter_posted",
        empty_label="Any time",
        widget=forms.RadioSelect,
    )
    salary_min = WholeNumberFilter(
        label="Minimum salary (a year)",
        method="filter_salary_min",
        min_value=0,
        max_value=MAX_SALARY,
        help_text="Roles whose range reaches this much a year, in the posting's own currency.",
    )
    include_closed = CheckboxFilter(label="Include closed jobs", method="filter_include_closed")

    class Meta:
        model = Posting
        fields: list[str] = []

    # Set when every keyword is too common to search for, so the page can say so.
    ignored_keywords: str = ""

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None) -> None:
        # django-filter deep-copies every filter, with its field, for each request; a filter
        # holds nothing a request changes but its parent, so a shallow copy of each will do.
        base_filters, self.base_filters = self.base_filters, {}
        super().__init__(data, queryset, request=request, prefix=prefix)
        del self.base_filters  # the class's again
        self.filters = {name: copy.copy(filter_) for name, filter_ in base_filters.items()}
        for filter_ in self.filters.values():
            filter_.model = self.queryset.model
            filter_.parent = self
            if filter_.method is not None:
                filter_.method = filter_.method  # a method of this copy's parent, not the class's

    @classmethod
    def get_form_class(cls) -> type[forms.Form]:
        # Built once per process, not per request: its fields are the same every time, and
        # each form deep-copies them for itself.
        if "_form_class" not in cls.__dict__:
            fields = {}
            for name, base in cls.base_filters.items():
                filter_ = copy.copy(base)
                filter_.model = cls._meta.model  # as a filterset's own: labels from the model
                fields[name] = filter_.field
            cls._form_class = type(f"{cls.__name__}Form", (cls._meta.form,), fields)
        return cls._form_class

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        # "Include closed" decides the base set, so it applies even when the box is unticked.
        if self.form.cleaned_data.get("include_closed"):
            queryset = queryset.public()
        else:
            queryset = queryset.open()
        return super().filter_queryset(queryset)

    def filter_include_closed(self, queryset: PostingQuerySet, name: str, value: bool):
        return queryset

    def filter_keywords(self, queryset: PostingQuerySet, name: str, value: str):
        postgres = connection.vendor == "postgresql"
        if postgres and value.strip() and not has_search_terms(value):
            self.ignored_keywords = value.strip()
            return queryset
        return keyword_filter(queryset, value, postgres=postgres)

    def filter_company(self, queryset: PostingQuerySet, name: str, value: str):
        value = value.strip()
        if not value:
            return queryset
        # The companies first (a few rows, by index), then their listings by company: a join
        # would walk every listing, newest first, looking for one of theirs.
        ids = list(
            Company.objects.filter(Q(slug=value) | Q(name__iexact=value)).values_list(
                "pk", flat=True
            )[:50]
        )
        return queryset.filter(company__in=ids)

    def filter_location(self, queryset: PostingQuerySet, name: str, value: str):
        # With a country chosen too, a part naming a country says no more than the country
        # (that one) or nothing but the city or region (another): left out, the rest reads the
        # index of the name and the country, not every listing of the country.
        country = self.form.cleaned_data.get("country")
        for part in location_parts(value):
            codes = country_codes(part)
            if country and country in codes:
                continue  # every listing of the chosen country is in it
            matches = Q(city__iexact=part) | Q(region__iexact=part)
            if codes and not country:
                matches |= Q(country__in=codes)
            queryset = queryset.filter(matches)
        return queryset

    def filter_posted(self, queryset: PostingQuerySet, name: str, value: str):
        return queryset.posted_since(timezone.now() - POSTED_WITHIN[value])

    def filter_salary_min(self, queryset: PostingQuerySet, name: str, value: int | None):
        if not value:  # 0 asks for nothing, so it hides nothing (not even unstated salaries)
            return queryset
        return queryset.filter(salary_yearly_max__gte=value)

    @property
    def active_filters(self) -> dict[str, object]:
        """The valid, non-empty filters, for "clear" links and the feed of this exact list."""
        if not self.is_bound or not hasattr(self.form, "cleaned_data"):
            return {}
        return {k: v for k, v in self.form.cleaned_data.items() if v not in (None, "", [], False)}
