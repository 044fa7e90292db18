"""The sitemap of open listings, for search engines: /sitemap.xml and /sitemap-postings.xml?p=N.

A closed or expired listing leaves the sitemap at once, so crawlers spend their visits on jobs
that can still be applied for. URLs are absolute with the request's own host and scheme (behind
the proxy, SECURE_PROXY_SSL_HEADER makes that https): no django.contrib.sites to keep in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from django.contrib.sitemaps import Sitemap
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.db.models import Max, Min

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
    # Ids per sitemap page (the protocol allows 50,000 URLs, but a page that size is slow to
    # render): at most this many URLs, ready in a fraction of a second at a million listings.
    limit = 1_000

    def items(self) -> PostingQuerySet:
        # Only what a <url> entry needs, never the descriptions; in id order.
        return Posting.objects.open().only("pk", "slug", "posted_at", "updated_at").order_by("pk")

    @property
    def paginator(self) -> IdRangePages:  # type: ignore[override]
        return IdRangePages(self.items(), self.limit)

    def lastmod(self, posting: Posting) -> datetime:
        return posting.updated_at or posting.posted_at

    def get_latest_lastmod(self) -> datetime | None:
        # The index gives no date per page: finding the latest change among every open listing
        # would read them all, and crawlers read each page's own <lastmod> entries anyway.
        return None
