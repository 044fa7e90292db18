"""RSS and Atom feeds of open listings, following the list page's filters.

``/jobs/feed/rss/?q=python&workplace=remote`` lists what ``/jobs/?q=python&workplace=remote``
shows, newest first. Closed jobs never appear, whatever the parameters say: a reader polls a feed
for openings, and a closed job announced as new would be news of nothing. Invalid filters are
ignored, as on the list page, so a feed URL never fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed
from django.utils.html import escape

from . import pagecache
from .filters import PostingFilter
from .models import Posting
from .text import without_control_characters

# The newest this many: a reader keeps what it has already seen.
FEED_ITEMS = 50
# Readers poll every few minutes at most; a minute of staleness spares the database the rest.
FEED_MAX_AGE = 60
# List parameters a feed does not follow: it only ever advertises open jobs.
NOT_FOR_FEEDS = ("include_closed",)
# Long enough to recognize the search, short enough for a reader's list of feeds.
MAX_TITLE_TERM = 60


def feed_filterset(params: QueryDict) -> PostingFilter:
    """The list page's FilterSet on these parameters, without the ones a feed does not follow."""
    params = params.copy()
    for name in NOT_FOR_FEEDS:
        params.pop(name, None)
    return PostingFilter(params, queryset=Posting.objects.for_cards())


def feed_postings(filterset: PostingFilter, *, limit: int | None = None) -> list[Posting]:
    """The newest open listings these filters match, in one query."""
    return list(filterset.qs.order_by("-posted_at", "-pk")[: limit or FEED_ITEMS])


def feed_query(filterset: PostingFilter) -> str:
    """The valid filters as the visitor spelled them, for links back to the same list.

    Junk and invalid values are dropped, so they are never reflected into the feed.
    """
    kept = QueryDict(mutable=True)
    for name in filterset.active_filters:
        if name not in NOT_FOR_FEEDS:
            kept.setlist(name, [v for v in filterset.data.getlist(name) if v != ""])
    return kept.urlencode()


def describe_filters(filterset: PostingFilter) -> list[str]:
    """The active filters other than keywords, in words: ["Remote", "Senior or Lead"]."""
    words = []
    for name, value in filterset.active_filters.items():
        if name == "q" or name in NOT_FOR_FEEDS:
            continue
        if name == "salary_min":
            words.append(f"{value:,}+ a year")
            continue
        values = value if isinstance(value, list) else [value]
        choices = dict(getattr(filterset.form.fields[name], "choices", ()))
        if choices:  # in the form's order, whatever the order of the parameters
            labels = [str(label) for key, label in choices.items() if key in values]
        else:
            labels = [str(v)[:MAX_TITLE_TERM] for v in values]
        words.append(" or ".join(labels))
    return words


def feed_title(filterset: PostingFilter) -> str:
    """The feed's name in a reader, e.g. "Jobs for “python” · Remote · Jobboard".

    Call after the filterset's ``qs``: only then is it known whether the keywords were used.
    """
    keywords = (filterset.form.cleaned_data.get("q") or "").strip()
    if filterset.ignored_keywords:  # only words too common to search for: nothing was searched
        keywords = ""
    head = f"Jobs for “{keywords[:MAX_TITLE_TERM]}”" if keywords else "Jobs"
    return " · ".join([head, *describe_filters(filterset), settings.SITE_NAME])


@dataclass(frozen=True)
class FeedRequest:
    """What one request for a feed asked for; the Feed instance itself is shared by threads."""

    postings: list[Posting]
    title: str
    query: str  # the followed filters, as a query string ("" for every open job)
    origin: str  # scheme://host the feed was fetched from, for absolute GUIDs


class OpenJobsFeed(Feed):
    url_name: str
    # RSS readers render titles as HTML, so Django escapes them once more (ticket #6533); an Atom
    # title is plain text and would show the entities.
    titles_are_html: bool
    # Kept as the list pages are (``pagecache``): a listing on it that closes or changes takes the
    # kept feed down at once; a new listing joins it within a minute, as it does the list.
    kept_page = pagecache.KeptPage("feed")

    def __call__(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        def render() -> tuple[HttpResponse, list[Posting], float]:
            response = super(OpenJobsFeed, self).__call__(request, *args, **kwargs)
            patch_cache_control(response, public=True, max_age=FEED_MAX_AGE)
            shown = request.feed.postings if hasattr(request, "feed") else []
            return response, shown, FEED_MAX_AGE

        return pagecache.render_and_keep(request, "feed", render)

    def get_object(self, request: HttpRequest, *args, **kwargs) -> FeedRequest:
        filterset = feed_filterset(request.GET)
        postings = feed_postings(filterset)
        # Also on the request: the Feed instance is shared by threads, and ``__call__`` keeps the
        # feed with the listings it shows.
        request.feed = FeedRequest(
            postings=postings,
            title=feed_title(filterset),
            query=feed_query(filterset),
            origin=request.build_absolute_uri("/").rstrip("/"),
        )
        return request.feed

    def _text(self, text: str) -> str:
        """Text for the feed: no control characters, whoever typed them (a visitor's query, a
        title), since one would fail the whole feed; escaped once more where readers take HTML."""
        text = without_control_characters(text)
        return escape(text) if self.titles_are_html else text

    def _with_query(self, path: str, obj: FeedRequest) -> str:
        return f"{path}?{obj.query}" if obj.query else path

    # --- the feed ---

    def title(self, obj: FeedRequest) -> str:
        return self._text(obj.title)

    def description(self, obj: FeedRequest) -> str:
        which = " matching these filters" if obj.query else ""
        return self._text(f"The newest open jobs on {settings.SITE_NAME}{which}.")

    subtitle = description

    def link(self, obj: FeedRequest) -> str:
        return self._with_query(reverse("postings:list"), obj)

    def feed_url(self, obj: FeedRequest) -> str:
        return self._with_query(reverse(self.url_name), obj)

    def items(self, obj: FeedRequest) -> list[Posting]:
        for posting in obj.postings:
            # The short link outlives title and slug changes, so readers never see a job twice.
            posting.feed_guid = obj.origin + reverse("postings:short", args=[posting.pk])
        return obj.postings

    # --- each job ---

    def item_title(self, posting: Posting) -> str:
        return self._text(f"{posting.title} at {posting.company.name}")

    def item_description(self, posting: Posting) -> str:
        # Both formats carry the description as HTML; the summary is plain text.
        return escape(without_control_characters(posting.summary))

    def item_link(self, posting: Posting) -> str:
        return posting.get_absolute_url()

    def item_guid(self, posting: Posting) -> str:
        return posting.feed_guid

    item_guid_is_permalink = True

    def item_pubdate(self, posting: Posting) -> datetime:
        return posting.posted_at

    def item_updateddate(self, posting: Posting) -> datetime:
        return posting.updated_at or posting.posted_at

    def item_author_name(self, posting: Posting) -> str:
        return without_control_characters(posting.company.name)

    def item_categories(self, posting: Posting) -> list[str]:
        return [
            posting.get_practice_area_display(),
            posting.get_seniority_display(),
            posting.get_workplace_display(),
        ]


class OpenJobsRssFeed(OpenJobsFeed):
    feed_type = Rss201rev2Feed
    url_name = "postings:feed_rss"
    titles_are_html = True


class OpenJobsAtomFeed(OpenJobsFeed):
    feed_type = Atom1Feed
    url_name = "postings:feed_atom"
    titles_are_html = False
