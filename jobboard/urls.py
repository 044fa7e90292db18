from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from .health import healthz, healthz_workers

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="postings:list", query_string=True), name="home"),
    path("jobs/", include("postings.urls")),
    path("jobs/", include("reporting.urls")),
    path("employer/", include("postings.employer_urls")),
    path("accounts/", include("accounts.urls")),
    path("moderation/", include("reporting.moderation_urls")),
    path("healthz/", healthz, name="healthz"),
    path("healthz/workers/", healthz_workers, name="healthz_workers"),
    path("admin/", admin.site.urls),
]
