from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.generic import DetailView, TemplateView

from . import counters, listing_page, pagecache, similar
from .browse import LIST_PARAMS, browse
from .filters import PostingFilter
from .models import Posting
from .similar import similar_postings
from .structured import job_posting_data
from .templatetags.postings_tags import Rendering


class PostingListView(TemplateView):
    template_name = "postings/posting_list.html"
    kept_page = pagecache.KeptPage("list")

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        def render():
            response = super(PostingListView, self).get(request, *args, **kwargs)
            jobs = response.context_data["jobs"]
            return response, jobs.postings, jobs.fresh_for

        return pagecache.render_and_keep(request, "list", render)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["jobs"] = jobs = browse(self.request.GET)
        # The filters in the side panel that are on (the search bar's own are shown there).
        context["filter_count"] = len(
            set(jobs.filterset.active_filters) - {"q", "location", "country"}
        )
        # Each card links back here, so "Back to jobs" returns to this exact page of results.
        context["back"] = self.request.GET.urlencode()
        # The time, time zone, language and address prefix of all the cards, looked up once.
        context["rendering"] = Rendering.current()
        return context


def back_to_list_query(params: QueryDict) -> str:
    """The list address a candidate came from, kept to known list parameters only."""
    raw = params.get("back", "")[:2000]
    if not raw:
        return ""
    source = QueryDict(raw)
    allowed = set(PostingFilter.base_filters) | set(LIST_PARAMS)
    kept = QueryDict(mutable=True)
    for key in source:
        if key in allowed:
            kept.setlist(key, source.getlist(key)[:20])
    return kept.urlencode()


def listing_visit(request: HttpRequest, pk: int, **kwargs) -> counters.Visit:
    """A view of the listing's page, counted when its kept page is served."""
    return counters.Visit(request, pk, "views")


class PostingDetailView(DetailView):
    model = Posting
    template_name = "postings/posting_detail.html"
    context_object_name = "posting"
    kept_page = pagecache.KeptPage("detail", visit=listing_visit)

    def get_object(self, queryset=None) -> Posting:
        posting = listing_page.listing(self.kwargs["pk"])
        if posting is None:
            raise Http404("No such job")
        if posting.status == Posting.Status.REMOVED:
            raise PostingGone(posting)
        if posting.status not in Posting.PUBLIC_STATUSES and not posting.is_under_review:
            raise Http404("No such job")
        return posting

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return pagecache.render_and_keep(request, "detail", lambda: self.render_page(request))

    def render_page(self, request: HttpRequest) -> tuple[HttpResponse, list[Posting], float]:
        """The page, the listings it shows, and how long it may be kept (``pagecache``)."""
        try:
            self.object = self.get_object()
        except PostingGone as gone:
            gone_page = TemplateResponse(
                request, "postings/posting_gone.html", {"posting": gone.posting}, status=410
            )
            return gone_page, [], 0
        if self.kwargs["slug"] != self.object.slug:
            url = self.object.get_absolute_url()
            if request.GET:
                url += "?" + request.GET.urlencode()
            return HttpResponseRedirect(url, status=301), [], 0
        if self.object.is_under_review:
            # Those who applied still find it, and are told why they cannot read it now; it is
            # not kept, nor counted as a view.
            page = TemplateResponse(
                request, "postings/posting_under_review.html", {"posting": self.object}
            )
            return page, [], 0
        context = self.get_context_data(object=self.object)
        # Every listing the page shows: its own, the one it was listed again as, similar jobs.
        shown = [self.object, *context["similar_postings"]]
        if self.object.duplicate_of is not None:
            shown.append(self.object.duplicate_of)
        response = self.render_to_response(context)
        if not self.object.is_open:  # crawlers drop a closed job (the page says it is closed too)
            response["X-Robots-Tag"] = "noindex"
        return response, shown, settings.PAGE_CACHE_SECONDS

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        posting = self.object
        # One round trip to Redis: this visitor counted, the counts buffered since the last flush,
        # and its similar jobs' group as kept (``similar``).
        group = similar.group_key(posting)
        found = counters.count_and_read(
            self.request,
            posting.pk,
            count="views",
            # Candidates who apply elsewhere: we only see their clicks.
            read=["views"] if posting.applies_on_board else ["views", "applies"],
            kept=[group],
        )
        context["view_count"] = posting.view_count + found.pending.get("views", 0)
        if not posting.applies_on_board:
            clicks = found.pending.get("applies", 0)
            context["apply_click_count"] = posting.apply_click_count + clicks
        context["back_query"] = back_to_list_query(self.request.GET)
        context["share_url"] = self.request.build_absolute_uri(posting.get_absolute_url())
        context["job_posting_data"] = job_posting_data(posting)
        # Closed listings too: that is where candidates need somewhere else to go.
        kept = found.kept[0] if found.kept is not None else None  # None: nothing kept, or no Redis
        context["similar_postings"] = similar_postings(posting, kept=kept)
        return context


class PostingGone(Exception):
    def __init__(self, posting: Posting):
        self.posting = posting


def posting_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Count the apply click, then send the candidate to the employer's application page."""
    posting = get_object_or_404(Posting.objects.with_page(), pk=pk)
    if posting.is_under_review:
        return redirect(posting)  # its page says why it takes no applications now
    if not posting.can_apply:
        messages.info(request, "This job is closed: it no longer takes applications.")
        return redirect(posting)
    counters.count_once(request, posting.pk, "applies")
    return HttpResponseRedirect(posting.apply_url)


def posting_short_link(request: HttpRequest, pk: int) -> HttpResponse:
    """/jobs/42/ leads to the listing's full address; one never published is simply not found."""
    posting = get_object_or_404(
        Posting.objects.with_page() | Posting.objects.filter(status=Posting.Status.REMOVED), pk=pk
    )
    return HttpResponseRedirect(posting.get_absolute_url())
