"""The job list: PostingFilter's filters and keyword search, and browse(): sort, keyset pages,
typed page numbers, capped counts, facets, and a notice (never an error) for every bad parameter."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import django_filters
import pytest
from django import forms
from django.db import DataError, connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from django_countries import Countries, countries

from postings import facets
from postings.browse import (
    SORTS,
    BadCursor,
    browse,
    decode_cursor,
    encode_cursor,
)
from postings.factories import (
    ClosedPostingFactory,
    CompanyFactory,
    DraftPostingFactory,
    ExpiredPostingFactory,
    PastDeadlinePostingFactory,
    PendingReviewPostingFactory,
    PublishedPostingFactory,
    RemovedPostingFactory,
)
from postings.filters import POSTED_CHOICES, PostingFilter, PrerenderedSelect, country_codes
from postings.models import NO_DEADLINE, Posting
from postings.search import keyword_filter

pytestmark = pytest.mark.django_db


def query(**params) -> QueryDict:
    data = QueryDict(mutable=True)
    for key, value in params.items():
        data.setlist(key, value if isinstance(value, list) else [str(value)])
    return data


def filtered(**params) -> set[Posting]:
    return set(PostingFilter(query(**params), queryset=Posting.objects.all()).qs)


def ids(postings) -> list[int]:
    return [p.pk for p in postings]


# === PostingFilter ============================================================================


@pytest.fixture
def every_state():
    return {
        "open": PublishedPostingFactory(),
        "past_deadline": PastDeadlinePostingFactory(),
        "expired": ExpiredPostingFactory(),
        "closed": ClosedPostingFactory(),
        "draft": DraftPostingFactory(),
        "pending": PendingReviewPostingFactory(),
        "removed": RemovedPostingFactory(),
    }


def test_the_list_shows_only_open_listings_by_default(every_state):
    assert filtered() == {every_state["open"]}


def test_include_closed_adds_ended_listings_but_never_unpublished_ones(every_state):
    shown = filtered(include_closed="on")
    assert shown == {every_state[name] for name in ("open", "past_deadline", "expired", "closed")}


def test_location_matches_a_city_or_region_or_country_name_ignoring_case():
    belgrade = PublishedPostingFactory(city="Belgrade", region="", country="RS")
    austin = PublishedPostingFactory(city="Austin", region="Texas", country="US")
    berlin = PublishedPostingFactory(city="Berlin", region="Berlin", country="DE")
    munich = PublishedPostingFactory(city="Munich", region="Bavaria", country="DE")
    assert filtered(location="belgrade") == {belgrade}
    assert filtered(location="TEXAS") == {austin}
    assert filtered(location=" germany ") == {berlin, munich}
    assert filtered(location="   ") == {belgrade, austin, berlin, munich}
    assert filtered(location="Atlantis") == set()


def test_a_place_of_several_parts_must_match_every_part():
    austin = PublishedPostingFactory(city="Austin", region="Texas", country="US")
    PublishedPostingFactory(city="Austin", region="Minnesota", country="US")
    berlin = PublishedPostingFactory(city="Berlin", region="Berlin", country="DE")
    assert filtered(location="Austin, Texas") == {austin}
    assert filtered(location="austin , texas, united states of america") == {austin}
    assert filtered(location="Austin, Germany") == set()
    assert filtered(location="DE") == {berlin}
    assert filtered(location=" , ,") == set(Posting.objects.all())


@pytest.mark.parametrize(
    "place", ["Germany", "Georgia", "Belgrade", "Berlin, Germany", "georgia, us", "DE", "uk"]
)
@pytest.mark.parametrize("country", ["DE", "US", "GE", "GB", "RS"])
def test_a_place_with_a_country_matches_what_each_matches(place, country):
    """A place's part naming a country is left out when a country is chosen too (it then says
    no more than the country, or nothing); the listings are those both filters match."""
    PublishedPostingFactory(city="Belgrade", region="", country="RS")
    PublishedPostingFactory(city="Belgrade", region="Montana", country="US")
    PublishedPostingFactory(city="Atlanta", region="Georgia", country="US")
    PublishedPostingFactory(city="Tbilisi", region="", country="GE")
    PublishedPostingFactory(city="Berlin", region="Berlin", country="DE")
    PublishedPostingFactory(city="Germany", region="", country="US")  # a town of that name
    PublishedPostingFactory(city="London", region="England", country="GB")
    both = PostingFilter(query(location=place, country=country), queryset=Posting.objects.all())
    assert set(both.qs) == filtered(location=place) & filtered(country=country)
    assert "IN (" not in str(both.qs.query)  # no country but the chosen one


def test_a_country_is_named_in_the_language_of_the_request():
    assert country_codes(" germany ") == ["DE"] and country_codes("Deutschland") == []
    with translation.override("de"):
        assert country_codes("deutschland") == ["DE"] and country_codes("Germany") == []
        assert country_codes("de") == ["DE"] and country_codes("USA") == ["US"]
    assert country_codes("GERMANY") == ["DE"] and country_codes("xx") == []


def test_country_keeps_listings_filed_under_that_country():
    serbia = PublishedPostingFactory(city="Belgrade", region="", country="RS")
    PublishedPostingFactory(city="Austin", region="Texas", country="US")
    assert filtered(country="RS") == {serbia}


def test_multiple_choice_filters_keep_any_of_the_ticked_options():
    remote = PublishedPostingFactory(workplace="remote")
    hybrid = PublishedPostingFactory(workplace="hybrid")
    onsite = PublishedPostingFactory(workplace="onsite")
    assert filtered(workplace=["remote", "hybrid"]) == {remote, hybrid}
    assert filtered(workplace="onsite") == {onsite}


@pytest.mark.parametrize(
    ("name", "chosen", "other"),
    [
        ("employment_type", "contract", "full_time"),
        ("seniority", "senior", "junior"),
        ("practice_area", "litigation", "engineering"),
    ],
)
def test_each_facet_filter_keeps_only_its_choice(name, chosen, other):
    match = PublishedPostingFactory(**{name: chosen})
    PublishedPostingFactory(**{name: other})
    assert filtered(**{name: chosen}) == {match}


def test_company_and_company_type_filters():
    firm = CompanyFactory(name="Lex & Co", slug="lex-and-co", company_type="law_firm")
    startup = CompanyFactory(slug="rocket", company_type="startup")
    at_firm = PublishedPostingFactory(company=firm)
    at_startup = PublishedPostingFactory(company=startup)
    assert filtered(company="lex-and-co") == {at_firm}
    assert filtered(company=" LEX & CO ") == {at_firm}
    assert filtered(company_type=["startup"]) == {at_startup}
    assert filtered(company="no-such-company") == set()


def test_date_posted_keeps_listings_posted_within_the_window():
    now = timezone.now()
    today = PublishedPostingFactory(posted_at=now - timedelta(hours=3))
    this_week = PublishedPostingFactory(posted_at=now - timedelta(days=5))
    this_month = PublishedPostingFactory(posted_at=now - timedelta(days=20))
    PublishedPostingFactory(posted_at=now - timedelta(days=45))
    assert filtered(posted="1") == {today}
    assert filtered(posted="7") == {today, this_week}
    assert filtered(posted="30") == {today, this_week, this_month}


def test_minimum_salary_compares_the_yearly_top_of_each_range_whatever_its_period():
    hourly = PublishedPostingFactory(salary_min=30, salary_max=40, salary_period="hour")  # 83,200
    yearly = PublishedPostingFactory(salary_min=50_000, salary_max=80_000, salary_period="year")
    monthly = PublishedPostingFactory(salary_min=3_000, salary_max=None, salary_period="month")
    unstated = PublishedPostingFactory(
        salary_min=None, salary_max=None, salary_currency="", salary_period=""
    )
    assert filtered(salary_min=80_000) == {hourly, yearly}
    assert filtered(salary_min=83_200) == {hourly}
    assert filtered(salary_min=36_000) == {hourly, yearly, monthly}
    # 0 asks for nothing, so it hides nothing, not even the roles without a stated salary.
    assert filtered(salary_min=0) == {hourly, yearly, monthly, unstated}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("salary_min", "1e999"),
        ("salary_min", "12.5"),
        ("salary_min", "-1"),
        ("salary_min", "100000001"),
        ("posted", "abc"),
        ("workplace", "moon"),
        ("country", "XX"),
        ("q", "x" * 201),
        ("q", "engineer\x00"),
        ("location", "Bel\x00grade"),
    ],
)
def test_an_invalid_value_is_a_form_error_and_the_filter_is_not_applied(name, value):
    postings = set(PublishedPostingFactory.create_batch(2))
    filterset = PostingFilter(query(**{name: value}), queryset=Posting.objects.all())
    assert name in filterset.errors
    assert set(filterset.qs) == postings


def test_active_filters_lists_only_valid_non_empty_filters():
    filterset = PostingFilter(
        query(workplace=["remote"], country="", posted="abc", q="python"),
        queryset=Posting.objects.all(),
    )
    filterset.qs  # noqa: B018 - validates the form
    assert filterset.active_filters == {"workplace": ["remote"], "q": "python"}


# --- a filterset per request, cheaply -------------------------------------------------------


def test_the_countries_are_not_translated_again_for_each_request(monkeypatch):
    str(PostingFilter(query(country="DE")).form["country"])  # the first may translate them
    translated = []
    original = Countries.translate_pair

    def translate_pair(self, *args, **kwargs):
        translated.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Countries, "translate_pair", translate_pair)
    filterset = PostingFilter(query(country="FR"), queryset=Posting.objects.none())
    assert filterset.is_valid()
    select = str(filterset.form["country"])
    assert '<option value="FR" selected>France</option>' in select
    assert select.count("<option") == 250
    assert translated == []


@pytest.mark.parametrize(
    ("name", "value", "attrs"),
    [("size", None, None), ("size", "m", {"id": "id_size"}), ("size", "m", {"id": "other"}),
     ("other", "m", {"id": "id_size", "required": True}), ("size", "l", None), ("size", 3, None),
     ("size", ["l", "s"], None), ("size", '"><b>', {"class": "x"}), ("size", "", None)],
)  # fmt: skip
def test_the_prerendered_select_is_djangos_select_byte_for_byte(name, value, attrs):
    # Values as a form may give them: twice ("l" first wins), None, a number, text to escape.
    choices = [("", "Any"), (None, "None"), ("s", "Small"), ("m", "M & <m>"), ("l", "Large"),
               ("l", "Large again"), (3, "Three")]  # fmt: skip
    for _ in range(2):  # rendered, then from what the first rendering kept
        shown = PrerenderedSelect(choices=choices).render(name, value, attrs)
        assert shown == forms.Select(choices=choices).render(name, value, attrs)


def test_each_filterset_has_filters_and_a_form_of_its_own():
    first = PostingFilter(query(company="acme", country="DE"))
    second = PostingFilter(query(company="globex"))
    for filterset in (first, second):
        for name, filter_ in filterset.filters.items():
            assert filter_ is not PostingFilter.base_filters[name]
            assert filter_.parent is filterset
    # A method filter calls its own filterset's method, not the class's nor another's.
    assert first.filters["company"].filter.method == first.filter_company
    assert second.filters["company"].filter.method == second.filter_company
    assert not hasattr(PostingFilter.base_filters["company"], "parent")
    assert first.form.fields["country"] is not second.form.fields["country"]
    assert first.is_valid() and second.is_valid()
    assert first.form.cleaned_data["country"] == "DE"
    assert second.form.cleaned_data["country"] == ""


def test_the_form_built_once_is_the_form_django_filter_builds():
    filterset = PostingFilter(query(country="DE", workplace=["remote"]))
    stock = django_filters.filterset.BaseFilterSet.get_form_class(filterset)(filterset.data)
    ours = filterset.form
    assert list(ours.fields) == list(stock.fields)
    for name, field in ours.fields.items():
        other = stock.fields[name]
        assert type(field) is type(other) and type(field.widget) is type(other.widget), name
        assert (field.label, field.required, field.help_text) == (
            other.label,
            other.required,
            other.help_text,
        ), name
        assert list(getattr(field, "choices", [])) == list(getattr(other, "choices", [])), name
        assert str(ours[name].label_tag()) == str(stock[name].label_tag()), name
    assert ours.is_valid() and stock.is_valid()
    assert ours.cleaned_data == stock.cleaned_data


@pytest.mark.postgres
def test_a_filter_method_reports_to_its_own_filterset():
    common = PostingFilter(query(q="the and of"), queryset=Posting.objects.all())
    rare = PostingFilter(query(q="lighthouse"), queryset=Posting.objects.all())
    list(common.qs), list(rare.qs)
    assert (common.ignored_keywords, rare.ignored_keywords) == ("the and of", "")


def test_the_choice_lists_are_the_models_choices():
    form = PostingFilter(query()).form
    assert list(form.fields["workplace"].choices) == Posting.Workplace.choices
    assert list(form.fields["posted"].choices) == [("", "Any time"), *POSTED_CHOICES]
    countries_offered = list(form.fields["country"].choices)
    assert countries_offered[0] == ("", "Any country")
    assert countries_offered[1:] == list(countries) and len(countries_offered) == 250


# --- keywords -------------------------------------------------------------------------------


@pytest.fixture
def library():
    """Listings whose every searchable word is chosen, so searches have exact answers."""

    def make(title, company, description, **extra):
        return PublishedPostingFactory(
            title=title,
            company__name=company,
            description=description,
            city="Lisbon",
            region="",
            country="PT",
            **extra,
        )

    return {
        "keeper": make("Lighthouse Keeper", "Coastal Trust", "Tend the lamp through storms."),
        "cook": make("Lighthouse Cook", "Coastal Trust", "Feed the keepers."),
        "reverse": make("Keeper of the Lighthouse Museum", "Harbour Museum", "Guide visitors."),
        "gardener": make("Gardener", "Quokkaworks", "Prune roses by the lighthouse."),
        "accountant": make("Accountant", "Ledgerly", "Close the books monthly."),
    }


def search(library, text: str) -> set[str]:
    by_pk = {p.pk: name for name, p in library.items()}
    return {by_pk[p.pk] for p in filtered(q=text)}


def test_every_keyword_must_match_in_title_company_or_description(library):
    assert search(library, "lighthouse") == {"keeper", "cook", "reverse", "gardener"}
    assert search(library, "LIGHTHOUSE cook") == {"cook"}
    assert search(library, "quokkaworks") == {"gardener"}
    assert search(library, "storms") == {"keeper"}
    assert search(library, "lighthouse ledgerly") == set()


def test_a_minus_word_excludes_listings_that_mention_it(library):
    assert search(library, "lighthouse -cook -museum") == {"keeper", "gardener"}


def test_a_quoted_phrase_matches_only_those_words_together(library):
    assert search(library, '"lighthouse keeper"') == {"keeper"}
    assert search(library, 'lighthouse -"harbour museum"') == {"keeper", "cook", "gardener"}


def test_blank_keywords_keep_every_listing(library):
    assert len(filtered(q="   ")) == len(library)


def test_the_plain_fallback_ignores_a_lone_minus_and_empty_quotes(library):
    queryset = Posting.objects.all()
    assert set(keyword_filter(queryset, 'accountant - ""', postgres=False)) == {
        library["accountant"]
    }
    assert set(keyword_filter(queryset, "  ", postgres=False)) == set(queryset)


@pytest.mark.postgres
def test_postgres_search_matches_word_forms(library):
    assert search(library, "keepers") == {"keeper", "cook", "reverse"}  # stemmed: keeper(s)
    assert search(library, "pruning") == {"gardener"}


@pytest.mark.postgres
def test_postgres_websearch_or_keeps_either_word(library):
    assert search(library, "gardener or accountant") == {"gardener", "accountant"}


@pytest.mark.postgres
def test_postgres_phrase_search_respects_word_order(library):
    # "Keeper of the Lighthouse" has both words, but not as the phrase "lighthouse keeper".
    assert "reverse" not in search(library, '"lighthouse keeper"')
    assert search(library, '"keeper of the lighthouse"') == {"reverse"}


# === browse() =================================================================================


def run(query_string: str = "", **params):
    if params:
        return browse(query(**params))
    return browse(QueryDict(query_string))


@pytest.fixture
def small_pages(settings):
    settings.POSTINGS_PER_PAGE = 3
    settings.POSTINGS_MAX_OFFSET_PAGE = 3
    settings.POSTINGS_COUNT_CAP = 1000
    return settings


@pytest.fixture
def board(small_pages):
    """12 open listings with ties in every sort column and NULL deadlines, plus ended and
    unpublished ones that must stay out of the default list."""
    now = timezone.now()
    postings = []
    for i in range(12):
        posted_at = now - timedelta(days=1, hours=i // 2)  # pairs posted at the same moment
        postings.append(
            PublishedPostingFactory(
                posted_at=posted_at,
                updated_at=posted_at,
                deadline=None if i % 4 == 0 else now + timedelta(days=1 + i % 3),
                view_count=(i * 7) % 4,
                workplace="remote" if i % 3 else "onsite",
            )
        )
    ended = [
        ClosedPostingFactory(view_count=9),
        ExpiredPostingFactory(view_count=9),
        PastDeadlinePostingFactory(view_count=9),
    ]
    hidden = [DraftPostingFactory(), RemovedPostingFactory(), PendingReviewPostingFactory()]
    return {"open": postings, "ended": ended, "hidden": hidden}


def expected_order(sort: str, queryset) -> list[int]:
    rows = list(queryset)
    if sort == "newest":
        rows.sort(key=lambda p: (p.posted_at, p.pk), reverse=True)
    elif sort == "views":
        rows.sort(key=lambda p: (p.view_count, p.pk), reverse=True)
    elif sort == "deadline":
        far = datetime.max.replace(tzinfo=UTC)
        rows.sort(key=lambda p: (p.deadline is None, p.deadline or far, p.pk))
    return ids(rows)


def walk_forward(first_query: str, limit: int = 50):
    pages = [run(first_query)]
    while pages[-1].next_query:
        assert len(pages) < limit, "Next never ends"
        pages.append(run(pages[-1].next_query))
    return pages


def walk_back(from_page, limit: int = 50):
    pages = [from_page]
    while pages[-1].prev_query is not None:
        assert len(pages) < limit, "Previous never ends"
        pages.append(run(pages[-1].prev_query))
    return pages


def test_the_default_list_is_open_listings_newest_first(board):
    result = run()
    assert result.sort == "newest"
    assert ids(result.postings) == expected_order("newest", Posting.objects.open())[:3]
    assert result.count == 12
    assert not result.count_is_capped
    assert result.notices == []


@pytest.mark.parametrize("sort", ["newest", "deadline", "views"])
@pytest.mark.parametrize("per_page", [3, 5])
@pytest.mark.parametrize("include_closed", [False, True], ids=["open", "include-closed"])
def test_next_walks_every_listing_once_in_sort_order_and_previous_walks_back_the_same_pages(
    board, settings, sort, per_page, include_closed
):
    settings.POSTINGS_PER_PAGE = per_page
    base = f"sort={sort}" + ("&include_closed=on" if include_closed else "")
    queryset = Posting.objects.public() if include_closed else Posting.objects.open()
    expected = expected_order(sort, queryset)

    forward = walk_forward(base)

    seen = [pk for page in forward for pk in ids(page.postings)]
    assert seen == expected  # every listing, in order: no duplicates, no gaps
    assert [page.page_number for page in forward] == list(range(1, len(forward) + 1))
    assert all(len(page.postings) == per_page for page in forward[:-1])
    assert all(page.notices == [] for page in forward)
    assert forward[0].prev_query is None
    assert forward[-1].next_query is None

    backward = walk_back(forward[-1])

    assert [ids(p.postings) for p in reversed(backward)] == [ids(p.postings) for p in forward]
    assert [p.page_number for p in reversed(backward)] == [p.page_number for p in forward]
    assert all(page.notices == [] for page in backward)


@pytest.mark.parametrize("sort", ["newest", "deadline", "views"])
def test_every_page_link_keeps_the_filters_and_the_sort(board, sort):
    pages = walk_forward(f"workplace=remote&sort={sort}")
    remote = Posting.objects.open().filter(workplace="remote")
    assert [pk for page in pages for pk in ids(page.postings)] == expected_order(sort, remote)
    for page in pages:
        for link in (page.next_query, page.prev_query):
            if link:
                assert QueryDict(link)["workplace"] == "remote"
                assert QueryDict(link)["sort"] == sort
        assert page.filter_query == "workplace=remote"


def test_the_deadline_sort_puts_listings_without_a_deadline_last(board):
    pages = walk_forward("sort=deadline")
    deadlines = [p.deadline for page in pages for p in page.postings]
    nulls = deadlines.index(None)
    assert all(d is None for d in deadlines[nulls:])
    assert deadlines[:nulls] == sorted(deadlines[:nulls])
    assert len(deadlines) - nulls == 3


def test_going_back_past_listings_removed_meanwhile_lands_on_page_one(board):
    walked = walk_forward("")
    Posting.objects.filter(pk__in=ids(walked[0].postings)).update(status="removed")

    back = run(walked[2].prev_query)  # "Previous" from page 3

    assert ids(back.postings) == ids(walked[1].postings)
    assert back.page_number == 1  # nothing is before it any more
    assert back.prev_query is None
    assert ids(run(back.next_query).postings) == ids(walked[2].postings)


def test_a_typed_page_number_opens_that_page_and_next_continues_by_cursor(board):
    walked = walk_forward("sort=views")
    second = run("sort=views&page=2")
    assert second.page_number == 2
    assert ids(second.postings) == ids(walked[1].postings)
    assert second.prev_query == "sort=views&page=1"
    assert "after=" in second.next_query
    third = run(second.next_query)
    assert ids(third.postings) == ids(walked[2].postings)
    assert third.page_number == 3


def test_a_page_past_the_last_says_so_and_shows_the_last_page(board):
    walked = walk_forward("")
    result = run("page=9")
    assert ids(result.postings) == ids(walked[-1].postings)
    assert result.page_number == len(walked)
    assert any("only 4 pages" in notice for notice in result.notices)


@pytest.fixture
def uncounted(monkeypatch):
    """Lists the snapshot does not count (as with keywords, place, company or salary): their
    count is a capped COUNT."""
    monkeypatch.setattr(facets, "covers", lambda filters: False)


def test_a_page_past_the_offset_limit_of_a_capped_list_opens_the_last_typed_page(
    board, settings, uncounted
):
    settings.POSTINGS_COUNT_CAP = 5  # 12 listings read as "5+": the real last page is unknown
    settings.POSTINGS_MAX_OFFSET_PAGE = 2
    result = run("page=4")
    assert result.count == 5
    assert result.count_is_capped
    assert result.page_number == 2
    assert ids(result.postings) == ids(walk_forward("")[1].postings)
    assert any("can't be opened directly" in notice for notice in result.notices)


def test_a_cursor_past_the_last_listing_falls_back_to_the_first_page(board):
    last = Posting.objects.open().order_by("posted_at", "pk").first()  # oldest: the end
    cursor = encode_cursor(last.posted_at, last.pk)
    result = run(f"after={cursor}&page=5")
    assert ids(result.postings) == ids(run("").postings)
    assert result.page_number == 1
    assert any("no more jobs" in notice for notice in result.notices)


def test_the_count_is_capped_above_the_limit(board, settings, uncounted):
    settings.POSTINGS_COUNT_CAP = 10
    result = run()
    assert (result.count, result.count_is_capped) == (10, True)
    settings.POSTINGS_COUNT_CAP = 12
    result = run()
    assert (result.count, result.count_is_capped) == (12, False)


def test_the_snapshot_counts_whole_lists_exactly_above_the_cap(board, settings):
    settings.POSTINGS_COUNT_CAP = 5
    result = run()
    assert (result.count, result.count_is_capped) == (12, False)
    result = run(workplace=["remote"], include_closed="1")
    expected = Posting.objects.public().filter(workplace="remote").count()
    assert (result.count, result.count_is_capped) == (expected, False)


def test_a_list_on_one_page_counts_what_it_shows_even_before_the_snapshot_catches_up(
    small_pages,
):
    PublishedPostingFactory(workplace="remote")
    assert run(workplace=["remote"]).count == 1  # the snapshot is made here
    PublishedPostingFactory(workplace="remote")
    result = run(workplace=["remote"])
    assert len(result.postings) == result.count == 2  # not the snapshot's 1


def test_relevance_is_offered_only_when_searching(board):
    assert "relevance" not in dict(run().sort_choices)
    searching = run("q=engineer")
    assert searching.searching
    assert "relevance" in dict(searching.sort_choices)
    assert searching.sort == "relevance"


def test_asking_for_relevance_without_keywords_quietly_sorts_newest(board):
    result = run("sort=relevance")
    assert result.sort == "newest"
    assert result.notices == []


def test_relevance_pages_are_numbered_pages(small_pages):
    for _ in range(7):
        PublishedPostingFactory(title="Lighthouse Keeper", description="Lamps.")
    first = run("q=lighthouse")
    assert len(first.postings) == 3
    assert first.next_query == "q=lighthouse&page=2"
    second = run(first.next_query)
    third = run(second.next_query)
    assert len({*ids(first.postings), *ids(second.postings), *ids(third.postings)}) == 7
    assert third.next_query is None


@pytest.mark.postgres
def test_relevance_puts_a_title_match_before_a_description_match(small_pages):
    in_description = PublishedPostingFactory(
        title="Accountant",
        description="Lighthouse ledgers.",
        posted_at=timezone.now() - timedelta(hours=1),
    )
    in_title = PublishedPostingFactory(
        title="Lighthouse Keeper",
        description="Lamps.",
        posted_at=timezone.now() - timedelta(days=5),
    )
    result = run("q=lighthouse")
    assert result.sort == "relevance"
    assert ids(result.postings) == [in_title.pk, in_description.pk]


@pytest.mark.postgres
def test_equally_relevant_matches_come_newest_first_then_by_id(small_pages):
    now = timezone.now()
    same = {"title": "Lighthouse Keeper", "description": "Lamps."}
    older = PublishedPostingFactory(**same, posted_at=now - timedelta(days=2))
    tied = [PublishedPostingFactory(**same, posted_at=now - timedelta(days=1)) for _ in range(2)]
    newest = PublishedPostingFactory(**same, posted_at=now - timedelta(hours=1))
    best = PublishedPostingFactory(
        title="Lighthouse Keeper, lighthouse",
        description="Lighthouse.",
        posted_at=now - timedelta(days=3),
    )
    shown = ids(run("q=lighthouse").postings) + ids(run("q=lighthouse&page=2").postings)
    assert shown == [best.pk, newest.pk, tied[1].pk, tied[0].pk, older.pk]


@pytest.mark.postgres
def test_relevance_ranks_the_newest_matches_and_says_so(small_pages, settings):
    settings.POSTINGS_MAX_OFFSET_PAGE = 2  # relevance ranks the newest 2 pages (6) of matches
    now = timezone.now()
    old_title_match = PublishedPostingFactory(
        title="Lighthouse Keeper", description="Lamps.", posted_at=now - timedelta(days=9)
    )
    newer = [
        PublishedPostingFactory(
            title="Accountant",
            description="Lighthouse ledgers.",
            posted_at=now - timedelta(hours=i + 1),
        )
        for i in range(6)
    ]
    result = run("q=lighthouse")
    assert result.ranked_among == 6
    shown = ids(result.postings) + ids(run(result.next_query).postings)
    assert sorted(shown) == sorted(ids(newer))  # the older, better match is past the window
    assert old_title_match.pk not in shown
    assert ids(run("q=lighthouse&sort=newest").postings) == ids(newer[:3])
    newest = walk_forward("q=lighthouse&sort=newest")  # by newest, every match
    assert [p for page in newest for p in page.postings][-1] == old_title_match


@pytest.mark.postgres
def test_keywords_of_only_common_words_say_so_and_show_every_listing(board):
    result = run("q=the+and+of")
    assert result.count == 12
    assert not result.searching
    assert any("too common" in notice for notice in result.notices)


# --- bad parameters: a notice and a list, never an exception ----------------------------------


def b64(raw: str | bytes) -> str:
    raw = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


GARBAGE_CURSORS = {
    "not base64": "!!!",
    "one char": "x",
    "empty json list": b64("[]"),
    "one item": b64("[1]"),
    "three items": b64('["2024-01-01T00:00:00+00:00", 1, 2]'),
    "object": b64('{"a": 1, "b": 2}'),
    "string": b64('"hello"'),
    "null": b64("null"),
    "not json": b64("hello world"),
    "not utf-8": b64(b"\xff\xfe\x00\x01"),
    "non-ascii token": "é" * 12,
    "nul in token": "abc\x00def",
    "null value on a non-null sort": b64("[null, 5]"),
    "naive datetime": b64('["2024-01-01T00:00:00", 5]'),
    "month 13": b64('["2024-13-01T00:00:00+00:00", 5]'),
    "day 32": b64('["2024-01-32T00:00:00+00:00", 5]'),
    "offset +99:00": b64('["2024-01-01T00:00:00+99:00", 5]'),
    "before year 1 in UTC": b64('["0001-01-01T00:00:00+14:00", 5]'),
    "after year 9999 in UTC": b64('["9999-12-31T23:59:59-14:00", 5]'),
    "number instead of datetime": b64("[5, 5]"),
    "pk true": b64('["2024-01-01T00:00:00+00:00", true]'),
    "pk zero": b64('["2024-01-01T00:00:00+00:00", 0]'),
    "pk negative": b64('["2024-01-01T00:00:00+00:00", -1]'),
    "pk huge": b64(f'["2024-01-01T00:00:00+00:00", {2**70}]'),
    "pk float": b64('["2024-01-01T00:00:00+00:00", 1.5]'),
    "pk string": b64('["2024-01-01T00:00:00+00:00", "1"]'),
    "deeply nested": b64("[" * 1200 + "]" * 1200),
    "very long": b64(json.dumps(["x" * 5000, 1])),
}
VIEWS_GARBAGE_CURSORS = {
    "string": b64('["many", 5]'),
    "float": b64("[1.5, 5]"),
    "infinite": b64("[1e999, 5]"),
    "boolean": b64("[true, 5]"),
    "negative": b64("[-1, 5]"),
    "huge": b64(f"[{2**64}, 5]"),
    "datetime": b64('["2024-01-01T00:00:00+00:00", 5]'),
    "null": b64("[null, 5]"),
}


@pytest.mark.parametrize("direction", ["after", "before"])
@pytest.mark.parametrize("cursor", GARBAGE_CURSORS.values(), ids=GARBAGE_CURSORS.keys())
def test_a_garbage_cursor_gives_the_first_page_with_a_notice(board, direction, cursor):
    result = run(**{direction: cursor, "page": "4"})
    assert ids(result.postings) == ids(run().postings)
    assert result.page_number == 1
    assert result.notices == ["That page link is no longer valid; here is the first page."]


@pytest.mark.parametrize("offset", ["+16:00", "-23:59"])
def test_a_cursor_with_an_offset_postgresql_refuses_is_read_in_utc(board, offset):
    forged = b64(f'["2024-06-01T00:00:00{offset}", 1]')  # Python reads it; PostgreSQL would not
    result = run(sort="newest", after=forged)  # the database answers: no error
    assert not any("no longer valid" in notice for notice in result.notices)


@pytest.mark.parametrize("cursor", VIEWS_GARBAGE_CURSORS.values(), ids=VIEWS_GARBAGE_CURSORS.keys())
def test_a_garbage_cursor_for_the_views_sort_gives_its_first_page_with_a_notice(board, cursor):
    result = run(sort="views", after=cursor)
    assert ids(result.postings) == ids(run("sort=views").postings)
    assert result.notices == ["That page link is no longer valid; here is the first page."]


@pytest.mark.parametrize(
    ("sort", "value", "pk"),
    [
        ("newest", datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC), 42),
        ("deadline", datetime(2024, 5, 1, 12, 30, tzinfo=UTC), 7),
        ("deadline", NO_DEADLINE, 7),  # a listing without a deadline: the end of time
        ("views", 0, 1),
        ("views", 2**40, 2**62),
    ],
)
def test_a_cursor_decodes_to_the_value_and_id_it_was_made_from(sort, value, pk):
    assert decode_cursor(encode_cursor(value, pk), SORTS[sort]) == (value, pk)


def test_a_views_cursor_above_any_stored_count_pages_from_the_most_viewed(board):
    result = run(sort="views", after=encode_cursor(2**40, 2**62), page="2")
    assert ids(result.postings) == ids(run("sort=views").postings)
    assert result.notices == []


def test_a_cursor_is_short_enough_for_any_address():
    cursor = encode_cursor(datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC), 2**62)
    assert len(cursor) < 100


@pytest.mark.parametrize("cursor", GARBAGE_CURSORS.values(), ids=GARBAGE_CURSORS.keys())
def test_decoding_a_garbage_cursor_raises_only_bad_cursor(cursor):
    with pytest.raises(BadCursor):
        decode_cursor(cursor, SORTS["newest"])


HOSTILE = {
    "page negative": {"page": "-3"},
    "page zero": {"page": "0"},
    "page word": {"page": "abc"},
    "page decimal": {"page": "2.5"},
    "page 5000 digits": {"page": "9" * 5000},
    "posted word": {"posted": "abc"},
    "salary 1e999": {"salary_min": "1e999"},
    "salary negative": {"salary_min": "-5"},
    "salary huge int": {"salary_min": "9" * 40},
    "salary nan": {"salary_min": "NaN"},
    "sort bogus": {"sort": "bogus"},
    "sort sql": {"sort": "posted_at; DROP TABLE postings_posting"},
    "workplace moon": {"workplace": "moon"},
    "workplace mixed": {"workplace": ["remote", "moon"]},
    "country bogus": {"country": "ZZ"},
    "q huge": {"q": "engineer " * 10_000},
    "q nul": {"q": "engi\x00neer"},
    "location nul": {"location": "\x00"},
    "company nul": {"company": "acme\x00"},
    "company huge": {"company": "a" * 5000},
    "country nul": {"country": "\x00"},
    "sort nul": {"sort": "\x00"},
    "page nul": {"page": "\x00"},
    "after garbage": {"after": "garbage!!"},
    "before garbage": {"before": "%%%"},
    "after nul": {"after": "\x00"},
    "employment type list of junk": {"employment_type": ["a", "b", "c"]},
}


@pytest.mark.parametrize("params", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_parameter_gives_a_notice_and_the_first_page_of_results(board, params):
    result = run(**params)
    assert result.notices, "the page must say what was ignored"
    assert ids(result.postings) == ids(run().postings)
    assert result.page_number == 1
    assert len(result.facets) == 6  # the filter sidebar still renders


def test_a_page_number_too_big_for_any_integer_column_gives_a_notice_and_the_last_page(board):
    result = run(page="999999999999999999999")
    assert result.notices
    assert ids(result.postings) == ids(walk_forward("")[-1].postings)


def test_every_bad_parameter_at_once_still_gives_a_list(board):
    result = run(
        page="-3",
        posted="abc",
        salary_min="1e999",
        sort="bogus",
        after="garbage",
        workplace="moon",
        q="x" * 5000,
    )
    assert ids(result.postings) == ids(run().postings)
    assert len(result.notices) >= 6
    assert all(len(notice) < 400 for notice in result.notices)


def test_an_unknown_sort_is_named_in_the_notice_but_cut_short(board):
    result = run(sort="z" * 500)
    assert result.sort == "newest"
    (notice,) = result.notices
    assert notice.startswith('Unknown sort "' + "z" * 40 + '"')
    assert "z" * 41 not in notice


def test_bad_filters_are_named_in_their_notices(board):
    notices = " ".join(run(salary_min="1e999", posted="abc", workplace="moon").notices)
    assert "Minimum salary" in notices
    assert "Date posted" in notices
    assert "Workplace" in notices
    assert "moon" in notices


# --- facets -------------------------------------------------------------------------------


def facet(result, name: str) -> dict[str, tuple[int, bool]]:
    (found,) = [f for f in result.facets if f.name == name]
    return {value: (count, selected) for value, _label, count, selected in found.options}


def test_facet_counts_apply_the_other_filters_but_not_their_own(small_pages):
    PublishedPostingFactory.create_batch(2, workplace="remote", seniority="senior")
    PublishedPostingFactory(workplace="remote", seniority="junior")
    PublishedPostingFactory(workplace="onsite", seniority="senior")
    ClosedPostingFactory(workplace="remote", seniority="senior")  # not open: never counted

    result = run(workplace=["remote"])

    workplace = facet(result, "workplace")
    assert workplace["remote"] == (3, True)
    assert workplace["onsite"] == (1, False)  # still offered with its count
    assert workplace["hybrid"] == (0, False)
    seniority = facet(result, "seniority")
    assert seniority["senior"] == (2, False)  # among remote ones only
    assert seniority["junior"] == (1, False)


def test_facet_counts_apply_the_country_filter(small_pages):
    PublishedPostingFactory(workplace="remote", city="", country="DE")
    PublishedPostingFactory(workplace="remote", city="", country="FR")
    assert facet(run(country="DE"), "workplace")["remote"] == (1, False)


def test_date_posted_facet_counts_each_window(small_pages):
    now = timezone.now()
    PublishedPostingFactory(posted_at=now - timedelta(hours=2))
    PublishedPostingFactory(posted_at=now - timedelta(days=3))
    PublishedPostingFactory(posted_at=now - timedelta(days=40))
    posted = facet(run(posted="7"), "posted")
    assert posted == {"1": (1, False), "7": (2, True), "30": (2, False)}


def test_facet_counts_come_from_a_snapshot_at_most_a_minute_old(small_pages, settings):
    PublishedPostingFactory(workplace="remote")
    assert facet(run(), "workplace")["remote"][0] == 1
    PublishedPostingFactory(workplace="remote")
    assert facet(run(), "workplace")["remote"][0] == 1  # the snapshot's
    assert facet(run(sort="views"), "workplace")["remote"][0] == 1
    assert facet(run(seniority=["senior"]), "workplace")["remote"][0] == 0  # other filters too
    settings.FACET_CACHE_SECONDS = 0  # the snapshot is now too old: the next page counts anew
    assert facet(run(), "workplace")["remote"][0] == 2


def test_a_stale_snapshot_is_served_while_another_process_counts(
    small_pages, monkeypatch, settings
):
    PublishedPostingFactory(workplace="remote")
    run()
    settings.FACET_CACHE_SECONDS = 0
    monkeypatch.setattr(facets, "_take_lock", lambda: False)  # someone else is counting
    monkeypatch.setattr(facets, "build_cube", lambda: pytest.fail("counted twice"))
    assert facet(run(), "workplace")["remote"][0] == 1


def test_another_processs_snapshot_is_picked_up(small_pages):
    PublishedPostingFactory(workplace="remote")
    run()
    PublishedPostingFactory(workplace="remote")
    facets.refresh_cube()  # as the beat task does, in the worker
    facets._memo["cube"] = None  # this process forgets its copy: it reads the shared one
    assert facet(run(), "workplace")["remote"][0] == 2


COMBINATIONS = [
    {},
    {"workplace": ["remote"]},
    {"workplace": ["remote", "hybrid"], "seniority": ["senior"]},
    {"country": "DE"},
    {"country": "DE", "employment_type": ["full_time"], "posted": "7"},
    {"posted": "1"},
    {"practice_area": ["engineering", "design"], "company_type": ["startup"]},
    {"include_closed": "1"},
    {"include_closed": "1", "workplace": ["onsite"], "posted": "30"},
    {"country": "ZW"},  # a country with no listings
    # A place: a city, a region or a country by name, in any letter case, up to three parts.
    {"location": "berlin"},
    {"location": "Berlin", "workplace": ["hybrid"], "posted": "30"},
    {"location": "Berlin", "include_closed": "1", "practice_area": ["design"]},
    {"location": "BAVARIA"},
    {"location": "Germany", "seniority": ["lead"]},
    {"location": "Berlin, Germany"},
    {"location": "berlin, bavaria, de", "company_type": ["agency"]},
    {"location": "Nowhere"},
    # Filters the snapshot cannot answer for: counted over the few jobs they match. A place
    # beyond ASCII among them (PostgreSQL's capitals are not always Python's).
    {"location": "zürich"},
    {"location": "ZÜRICH", "workplace": ["hybrid"], "country": "FR"},
    {"location": "île-de-france, Zürich"},
    {"salary_min": "1", "seniority": ["senior", "lead"]},
    {"salary_min": "1", "location": "Berlin"},
]


def counted_by_rows(params: dict, name: str, value: str) -> int:
    """How many jobs the list holds with the choice ticked and the other filters as they are."""
    wider = query(**{k: v for k, v in params.items() if k != name})
    wider.setlist(name, [value])
    return PostingFilter(wider, queryset=Posting.objects.all()).qs.count()


@pytest.mark.parametrize("params", COMBINATIONS)
def test_the_snapshots_counts_are_what_counting_the_rows_gives(small_pages, params):
    from postings.factories import CompanyFactory

    now = timezone.now()
    companies = [CompanyFactory(company_type=kind) for kind in ("startup", "agency", "law_firm")]
    for i in range(40):
        factory = ClosedPostingFactory if i % 7 == 0 else PublishedPostingFactory
        factory(
            company=companies[i % 3],
            workplace=("remote", "hybrid", "onsite")[i % 3],
            city="" if i % 3 == 0 else ("Berlin", "Zürich")[i % 2],
            region=("Bavaria", "", "Île-de-France", "")[i % 4],
            country="DE" if i % 2 else "FR",
            employment_type=("full_time", "contract")[i % 2],
            seniority=("senior", "junior", "lead", "mid")[i % 4],
            practice_area=("engineering", "design", "sales", "data", "finance")[i % 5],
            posted_at=now - timedelta(hours=5 * i),
        )
    PublishedPostingFactory(deadline=now - timedelta(hours=1))  # past its deadline: not open
    result = run(**params)
    for shown in result.facets:
        assert {value: count for value, _label, count, _s in shown.options} == {
            value: counted_by_rows(params, shown.name, value) for value, *_ in shown.options
        }, shown.name
    assert result.count == PostingFilter(query(**params), queryset=Posting.objects.all()).qs.count()


def test_facet_counts_ignore_invalid_filters(small_pages):
    PublishedPostingFactory.create_batch(2, workplace="remote")
    assert facet(run(posted="abc", salary_min="x"), "workplace")["remote"] == (2, False)


# --- queries stay bounded -----------------------------------------------------------------


def test_a_page_of_results_costs_one_query_once_the_snapshot_is_made(
    board, django_assert_num_queries
):
    run()  # makes the snapshot
    with django_assert_num_queries(1):  # the page itself, company joined; counts: the snapshot
        result = run()
        companies = [p.company.name for p in result.postings]
    assert len(companies) == 3


def test_a_place_is_counted_by_the_snapshot_too(board, django_assert_num_queries):
    run()  # makes the snapshot
    with django_assert_num_queries(1):  # the page only: no capped count, no choice counts
        result = run("location=nowhere%2C+germany")
    assert result.count == 0 and not result.facets_uncounted


def test_a_place_spelled_in_two_cases_is_one_place_to_the_snapshot(small_pages):
    PublishedPostingFactory(city="London", region="England", workplace="onsite")
    PublishedPostingFactory(city="LONDON", region="", workplace="hybrid")  # no region drawn
    PublishedPostingFactory(city="Londonderry", region="london", workplace="remote")
    result = run("location=london")
    assert result.count == 3 and result.counted_at is not None  # from the snapshot
    assert {v: n for v, (n, _s) in facet(result, "workplace").items()} == {
        "onsite": 1,
        "hybrid": 1,
        "remote": 1,
    }
    assert run("location=England").count == 1


def test_a_place_beyond_ascii_is_counted_as_the_database_compares_it(small_pages):
    # Python writes "GIESSEN" in capitals, PostgreSQL "GIEßEN": such a place is counted live.
    PublishedPostingFactory(city="Gießen", country="DE", workplace="hybrid")
    assert not facets.covers({"location": "gießen"}) and facets.covers({"location": "Berlin"})
    result = run("location=GIE%C3%9FEN")
    assert [p.city for p in result.postings] == ["Gießen"]
    assert result.count == 1 and facet(result, "workplace")["hybrid"][0] == 1


def test_a_page_further_on_by_cursor_costs_the_same(board, django_assert_num_queries):
    next_query = run("sort=deadline").next_query
    run(next_query)
    with django_assert_num_queries(1):
        run(next_query)


def test_a_list_the_snapshot_does_not_count_costs_a_capped_count_more(
    board, django_assert_num_queries
):
    run("salary_min=1")  # its choice lists are counted (few match) and cached
    with django_assert_num_queries(2):  # the capped count and the page
        run("salary_min=1")


def test_the_beat_task_counts_a_snapshot_every_process_then_uses(small_pages):
    from django.core.cache import cache

    from postings.tasks import refresh_facet_counts

    PublishedPostingFactory.create_batch(2, workplace="remote", country="DE", city="Berlin")
    assert 1 <= refresh_facet_counts() <= 2  # cells: open, today, DE, remote, ...
    stamp = cache.get(facets.STAMP_KEY)
    assert cache.get(facets.CUBE_KEY).stamp == stamp
    assert facet(run(), "workplace")["remote"][0] == 2
    assert cache.get(facets.STAMP_KEY) == stamp  # the page used it, counted nothing


def test_the_company_filter_finds_the_company_first(django_assert_num_queries):
    from postings.factories import CompanyFactory

    firm = CompanyFactory(name="Lex & Co", slug="lex-and-co")
    posting = PublishedPostingFactory(company=firm)
    with django_assert_num_queries(2):  # the company by slug or name, then its listings
        assert list(
            PostingFilter(query(company="LEX & co"), queryset=Posting.objects.all()).qs
        ) == [posting]


# === How the rows are found at a million: the same rows either way ==============================


@pytest.mark.postgres
@pytest.mark.parametrize("sort", ["newest", "deadline", "views"])
@pytest.mark.parametrize(
    "filters", ["workplace=remote", "workplace=remote&salary_min=1", "workplace=remote&posted=7"]
)
def test_few_matches_are_found_first_and_paged_as_the_walk_pages_them(
    board, monkeypatch, sort, filters
):
    from postings import browse as browse_module

    for posting in board["open"]:  # a salary for each, so that salary_min=1 keeps them all
        posting.salary_min, posting.salary_max = 50_000, 60_000
        posting.salary_currency, posting.salary_period = "EUR", "year"
        posting.save()
    address = f"{filters}&sort={sort}"
    monkeypatch.setattr(browse_module, "FEW_MATCHES", 0)  # the walk in the index's order
    walked = walk_forward(address)
    monkeypatch.setattr(browse_module, "FEW_MATCHES", 1000)  # matches first, then sorted
    with CaptureQueriesContext(connection) as captured:
        found_first = walk_forward(address)
    assert any(" + 0" in q["sql"] for q in captured.captured_queries)  # that way, truly
    remote = Posting.objects.open().filter(workplace="remote")
    assert [pk for page in found_first for pk in ids(page.postings)] == expected_order(sort, remote)
    assert [ids(p.postings) for p in found_first] == [ids(p.postings) for p in walked]
    assert [p.next_query for p in found_first] == [p.next_query for p in walked]
    assert [(p.count, p.count_is_capped) for p in found_first] == [
        (p.count, p.count_is_capped) for p in walked
    ]
    back = walk_back(found_first[-1])
    assert [ids(p.postings) for p in reversed(back)] == [ids(p.postings) for p in found_first]


@pytest.mark.postgres
@pytest.mark.parametrize("window", [1, 4, 9, 100])
@pytest.mark.parametrize("dense", [1, 3, 1000])
def test_the_newest_matches_found_in_two_steps_are_the_newest_matches(
    small_pages, monkeypatch, window, dense
):
    from postings import search

    now = timezone.now()
    for i in range(16):  # ties in posted_at, and matches spread over old and new listings
        PublishedPostingFactory(
            title="Lighthouse keeper" if i % 3 else "Accountant",
            description="Lamps." if i % 5 else "Ledgers and lamps.",
            posted_at=now - timedelta(hours=i // 2),
        )
    monkeypatch.setattr(search, "RECENT_WINDOW", window)
    monkeypatch.setattr(search, "DENSE_MATCHES", dense)
    monkeypatch.setattr(search, "_cutoff", {})  # worked out again for this window
    for words in ("lighthouse", "ledgers", "accountant ledgers", '"keeper lamps"', "nothing"):
        matching = keyword_filter(Posting.objects.open(), words, postgres=True)
        everything = list(matching.order_by("-posted_at", "-pk").values_list("pk", flat=True))
        for limit in (1, 3, 7, 20):
            assert search.newest_match_ids(matching, limit) == everything[:limit], (words, limit)


@pytest.mark.postgres
def test_plans_turned_off_for_a_search_are_on_again_after_it():
    from django.db import transaction

    from postings.search import _ids_planned_without

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_seqscan")
            return cursor.fetchone()[0]

    posting = PublishedPostingFactory()
    queryset = Posting.objects.filter(pk=posting.pk)
    assert _ids_planned_without(("seqscan", "bitmapscan"), queryset) == [posting.pk]
    assert setting() == "on"
    with pytest.raises(DataError), transaction.atomic():  # an error undoes the settings too
        _ids_planned_without(("seqscan",), Posting.objects.filter(title__regex="("))
    assert setting() == "on"
    assert _ids_planned_without(("seqscan",), Posting.objects.filter(pk__in=[])) == []


@pytest.mark.parametrize("sort", ["newest", "deadline", "views"])
@pytest.mark.parametrize("page", ["after", "before", "page=3", "first"])
def test_a_list_counted_live_with_no_match_asks_for_no_rows(board, sort, page):
    """The count found none, so no page's rows are looked for, and the page says what it said
    when it looked: the first page, with the same notice."""
    last = browse(QueryDict(f"sort={sort}")).postings[-1]
    cursor = encode_cursor(getattr(last, SORTS[sort].field), last.pk)
    tail = {
        "after": f"&page=2&after={cursor}",
        "before": f"&page=2&before={cursor}",
        "page=3": "&page=3",
        "first": "",
    }[page]
    with CaptureQueriesContext(connection) as captured:
        result = run(f"salary_min=99000000&sort={sort}{tail}")
    assert (result.postings, result.count, result.count_is_capped) == ([], 0, False)
    assert (result.page_number, result.prev_query, result.next_query) == (1, None, None)
    assert (
        result.notices
        == {
            "after": ["There are no more jobs past this point; here is the first page."],
            "before": ["There are no more jobs past this point; here is the first page."],
            "page=3": ["There is only 1 page of jobs for these filters; here is page 1."],
            "first": [],
        }[page]
    )
    listing_queries = [
        q["sql"] for q in captured.captured_queries if '"postings_posting"' in q["sql"]
    ]
    assert not [sql for sql in listing_queries if "ORDER BY" in sql]  # the count alone
