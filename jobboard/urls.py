from django.contrib import admin
from django.contrib.sitemaps import views as sitemap_views
from django.urls import include, path
from django.views.generic import RedirectView

from postings.sitemaps import PostingSitemap, sitemap_page

from .health import healthz, healthz_workers
from .robots import robots_txt

# Each section is /sitemap-<section>.xml, paged with ?p=N; /sitemap.xml indexes every page.
SITEMAPS = {"postings": PostingSitemap}

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="postings:list", query_string=True), name="home"),
    path("jobs/", include("postings.urls")),
    path("jobs/", include("reporting.urls")),
    path("alerts/", include("alerts.urls")),
    path("employer/", include("postings.employer_urls")),
    path("accounts/", include("accounts.urls")),
    path("moderation/", include("reporting.moderation_urls")),
    path(
        "sitemap.xml",
        sitemap_views.index,
        {"sitemaps": SITEMAPS, "sitemap_url_name": "sitemap_section"},
        name="sitemap",
    ),
    path(
        "sitemap-<section>.xml",
        sitemap_page,
        {"sitemaps": SITEMAPS},
        name="sitemap_section",
    ),
    path("robots.txt", robots_txt, name="robots_txt"),
    path("healthz/", healthz, name="healthz"),
    path("healthz/workers/", healthz_workers, name="healthz_workers"),
    path("admin/", admin.site.urls),
]
