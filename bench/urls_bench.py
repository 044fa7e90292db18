"""The project's URLs plus the benchmark's comparison views.

- ``/bench/trivial/``: ``HttpResponse("ok")`` through the same middleware as every page, the
  yardstick the issue's ratios are taken against.
- ``/bench/nocount/jobs/<pk>-<slug>/``: the listing's page with the view counter off (nothing
  counted, no buffered counts read: the stored counts are shown), for the counter's cost.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from postings import counters, pagecache, views

_detail = views.PostingDetailView.as_view()


def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


def _count_and_read_nothing(request: HttpRequest, posting_id: int, **kwargs: Any):
    """The page's round trip without the counter: nothing counted, no buffered count read (the
    stored counts are shown); its similar jobs' group is read as ever."""
    return _count_and_read(request, posting_id, **{**kwargs, "count": None, "read": ()})


_count_and_read = counters.count_and_read


def detail_without_counter(request: HttpRequest, pk: int, slug: str) -> HttpResponse:
    """The listing's page as if the view counter did not exist.

    Rendered, the view counts and reads its counts through ``counters.count_and_read``, so
    swapping it for the call is enough (gunicorn's sync workers serve one request at a time per
    process, so nothing else sees the swap); kept, it is served with no visit to count (its
    ``kept_page`` below).
    """
    counters.count_and_read = _count_and_read_nothing
    try:
        response = _detail(request, pk=pk, slug=slug)
        if hasattr(response, "render"):
            response.render()
        return response
    finally:
        counters.count_and_read = _count_and_read


# Kept and served again like the listing's page, counting no visit.
detail_without_counter.kept_page = pagecache.KeptPage("detail")  # type: ignore[attr-defined]

urlpatterns = [
    path("bench/trivial/", trivial),
    path("bench/nocount/jobs/<int:pk>-<slug:slug>/", detail_without_counter),
    path("", include("jobboard.urls")),
]
