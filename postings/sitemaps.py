"""The sitemap of open listings, for search engines: /sitemap.xml and /sitemap-postings.xml?p=N.

A closed or expired listing leaves the sitemap at once, so crawlers spend their visits on jobs
that can still be applied for. URLs are absolute with the request's own host and scheme (behind
the proxy, SECURE_PROXY_SSL_HEADER makes that https): no django.contrib.sites to keep in step.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.sitemaps import Sitemap
from django.db.models import Max
from django.db.models.functions import Coalesce

from .models import Posting, PostingQuerySet


class PostingSitemap(Sitemap):
    # Listings per sitemap page (the protocol allows 50,000, but a page that size is slow to
    # render); beyond it the index lists sitemap-postings.xml?p=2 and on.
    limit = 10_000

    def items(self) -> PostingQuerySet:
        # Ordered by id so a page keeps its listings while new ones are posted; only what a
        # <url> entry needs, never the descriptions.
        return Posting.objects.open().only("pk", "slug", "posted_at", "updated_at").order_by("pk")

    def lastmod(self, posting: Posting) -> datetime:
        return posting.updated_at or posting.posted_at

    def get_latest_lastmod(self) -> datetime | None:
        # For the index: one aggregate, where Django's default would load every listing.
        latest = Max(Coalesce("updated_at", "posted_at"))
        return Posting.objects.open().aggregate(latest=latest)["latest"]
