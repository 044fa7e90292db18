"""The sitemap of open listings, for search engines: /sitemap.xml and /sitemap-postings.xml?p=N.

A closed or expired listing leaves the sitemap at once, so crawlers spend their visits on jobs
that can still be applied for. URLs are absolute with the request's own host and scheme (behind
the proxy, SECURE_PROXY_SSL_HEADER makes that https): no django.contrib.sites to keep in step.

The index is Django's own view. A page of 10,000 listings is written by ``sitemap_page`` straight
from the rows' four columns: Django's sitemap view renders a template over a dictionary per URL,
which at that size costs most of a second and tens of megabytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from functools import cache, cached_property
from xml.sax.saxutils import escape

from django.contrib.sitemaps import Sitemap
from django.contrib.sitemaps.views import x_robots_tag
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.db.models import Max, Min
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date

from .models import Posting, PostingQuerySet


@dataclass
class IdRangePage:
    object_list: PostingQuerySet


class IdRangePages:
    """Sitemap pages by id range: page N holds the open listings with ids in
    (base + (N - 1) * span, base + N * span], the base being the lowest id rounded down to a
    multiple of span. Django's own paginator counts every open listing and opens page N by
    OFFSET, both slow at a million; this costs two lookups of the primary key's index and a
    range of it. A page holds at most ``span`` listings, fewer where listings have closed (an
    old page may be empty); a listing stays on its page."""

    def __init__(self, items: PostingQuerySet, span: int) -> None:
        self.items = items
        self.span = span

    @cached_property
    def _bounds(self) -> tuple[int, int]:
        ids = Posting.objects.aggregate(lowest=Min("pk"), highest=Max("pk"))
        lowest, highest = ids["lowest"] or 1, ids["highest"] or 0
        return (lowest - 1) // self.span * self.span, highest

    @property
    def num_pages(self) -> int:
        base, highest = self._bounds
        return max(1, math.ceil((highest - base) / self.span))

    def page(self, number: int | str) -> IdRangePage:
        try:
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger("That page number is not an integer") from exc
        if not 1 <= number <= self.num_pages:
            raise EmptyPage("That page contains no results")
        low = self._bounds[0] + (number - 1) * self.span
        high = low + self.span
        return IdRangePage(self.items.filter(pk__gt=low, pk__lte=high))


class PostingSitemap(Sitemap):
    # Ids per sitemap page (the protocol allows 50,000 URLs): at most this many URLs, about a
    # megabyte, written in tens of milliseconds at a million listings (``sitemap_page``).
    limit = 10_000

    def items(self) -> PostingQuerySet:
        # Only what a <url> entry needs, never the descriptions; in id order.
        return Posting.objects.open().only("pk", "slug", "posted_at", "updated_at").order_by("pk")

    @property
    def paginator(self) -> IdRangePages:  # type: ignore[override]
        return IdRangePages(self.items(), self.limit)

    def get_latest_lastmod(self) -> datetime | None:
        # The index gives no date per page: finding the latest change among every open listing
        # would read them all, and crawlers read each page's own <lastmod> entries anyway.
        return None


@cache
def _listing_path() -> tuple[str, str, str]:
    """A listing's address around its id and slug, from the URLconf once (reversing each of
    10,000 costs a tenth of a second)."""
    path = reverse("postings:detail", kwargs={"pk": 918273645, "slug": "the-slug"})
    before, rest = path.split("918273645")
    between, after = rest.split("the-slug")
    return before, between, after


_URLSET_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
)


@x_robots_tag
def sitemap_page(
    request: HttpRequest, section: str, sitemaps: dict[str, type[PostingSitemap]]
) -> HttpResponse:
    """One page of a section: each open listing's address and the date of its last change (in
    the site's time zone, as Django's view writes it); Last-Modified the latest of those."""
    if section not in sitemaps:
        raise Http404(f"No sitemap section {section!r}")
    sitemap = sitemaps[section]()
    try:
        page = sitemap.paginator.page(request.GET.get("p", 1))
    except (EmptyPage, PageNotAnInteger) as exc:
        raise Http404("No such sitemap page") from exc
    origin = escape(request.build_absolute_uri("/").rstrip("/"))
    before, between, after = _listing_path()
    zone = timezone.get_current_timezone()
    parts = [_URLSET_OPEN]
    latest = None
    rows = page.object_list.values_list("pk", "slug", "posted_at", "updated_at")
    for pk, slug, posted_at, updated_at in rows:
        changed = updated_at or posted_at  # its last change: never edited, its posting
        if latest is None or changed > latest:
            latest = changed
        # Slugs are slugified (ASCII letters, digits, hyphens); escaped all the same.
        parts.append(
            f"<url><loc>{origin}{before}{pk}{between}{escape(slug or 'job')}{after}</loc>"
            f"<lastmod>{changed.astimezone(zone).date().isoformat()}</lastmod></url>\n"
        )
    parts.append("</urlset>\n")
    response = HttpResponse("".join(parts), content_type="application/xml")
    if latest is not None:
        response.headers["Last-Modified"] = http_date(latest.timestamp())
    return response
