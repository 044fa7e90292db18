"""/robots.txt: crawl the listings, skip private areas and endpoints that act rather than show."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

# Private areas (they only redirect a crawler to the login page) and endpoints that count a click,
# take an application or a report, or act on an emailed token. Google, Bing and most crawlers
# understand "*". (Python's urllib.robotparser does not: it reads "*" as itself.)
DISALLOWED = (
    "/accounts/",
    "/admin/",
    "/alerts/",
    "/employer/",
    "/moderation/",
    "/jobs/*/apply/",
    "/jobs/*/report/",
)


@require_safe
@cache_control(public=True, max_age=3600)
def robots_txt(request: HttpRequest) -> HttpResponse:
    # The Disallow lines first: readers that take the first rule that matches (urllib.robotparser)
    # then agree with those that take the longest (Google's), where "Allow: /" first allowed all.
    lines = [
        "User-agent: *",
        *(f"Disallow: {path}" for path in DISALLOWED),
        "Allow: /",
        "",
        # Absolute, as the protocol requires, on the host and scheme the crawler came by.
        f"Sitemap: {request.build_absolute_uri(reverse('sitemap'))}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")
