"""The employer's side of postings: the dashboard, the posting form, and lifecycle actions.

Every posting is looked up among the user's own companies' postings, so another company's id
is a 404. Actions are POST only and go through ``postings.services``.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views import View
from django.views.generic import CreateView, DetailView, ListView, UpdateView

from . import counters, services
from .forms import CloseForm, DeadlineForm, PostingForm, ReopenForm
from .models import Posting, PostingRevision
from .permissions import EmployerRequiredMixin
from .text import render_description


def own_postings(user) -> QuerySet[Posting]:
    """The user's companies' postings, less those a moderator removed: nothing to act on."""
    return Posting.objects.of_member(user).exclude(status=Posting.Status.REMOVED)


class DashboardView(EmployerRequiredMixin, ListView):
    template_name = "postings/dashboard.html"
    context_object_name = "postings"
    paginate_by = 50

    def get_queryset(self) -> QuerySet[Posting]:
        return (
            Posting.objects.filter(company=self.company)
            .exclude(status=Posting.Status.REMOVED)
            .defer("description", "description_html", "search_vector")
            .order_by("-created_at", "-id")
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        postings = list(context["postings"])
        ids = [p.pk for p in postings]
        views = counters.pending_counts(ids, "views")
        clicks = counters.pending_counts(ids, "applies")
        latest = latest_revisions(ids)
        for posting in postings:
            posting.views_now = posting.view_count + views.get(posting.pk, 0)
            posting.clicks_now = posting.apply_click_count + clicks.get(posting.pk, 0)
            posting.revision = latest.get(posting.pk)
        context["postings"] = postings
        context["company"] = self.company
        context["close_form"] = CloseForm()
        context["deadline_form"] = DeadlineForm()
        return context


def latest_revisions(posting_ids: list[int]) -> dict[int, PostingRevision]:
    """Each listing's edit the employer should hear about: the one waiting for review, or the
    last one a moderator turned down (until the next edit)."""
    latest: dict[int, PostingRevision] = {}
    revisions = (
        PostingRevision.objects.filter(posting__in=posting_ids)
        .exclude(state=PostingRevision.State.WITHDRAWN)
        .only("posting_id", "state", "reopen", "values", "submitted_at", "reviewed_at", "note")
        .order_by("-submitted_at", "-id")
    )
    for revision in revisions:
        latest.setdefault(revision.posting_id, revision)
    return {
        pk: revision
        for pk, revision in latest.items()
        if revision.state != PostingRevision.State.APPROVED
    }


def pending_revision(posting: Posting) -> PostingRevision | None:
    return PostingRevision.objects.pending().filter(posting=posting).first()


class PostingFormMixin(EmployerRequiredMixin):
    """Shared by create and edit: "Preview" re-renders the form with the description shown."""

    form_class = PostingForm
    template_name = "postings/posting_form.html"

    def form_valid(self, form):
        if "preview" in self.request.POST:
            return self.render_to_response(
                self.get_context_data(
                    form=form, preview_html=render_description(form.cleaned_data["description"])
                )
            )
        posting = form.save(commit=False)
        if posting.pk is None:
            posting.company = self.company
        # A new role, or a live one, is checked now; a draft when it is published (a draft made by
        # "Duplicate" may wait, edited, until the role it copies closes).
        checked = posting.pk is None or posting.status == Posting.Status.PUBLISHED
        repost = checked and services.find_repost(
            company=self.company,
            title=posting.title,
            city=posting.city,
            country=str(posting.country),
            exclude_pk=posting.pk,
        )
        if repost:
            return self.render_to_response(self.get_context_data(form=form, repost=repost))
        saved = services.posting_save(posting=posting, by=self.request.user)
        message = self.success_message
        if pending_revision(saved) is not None:
            message = (
                "Your edit is waiting for review: because the wording changed, a moderator "
                "checks it first. Until then the listing stays public as it was."
            )
        messages.success(self.request, message)
        return redirect("employer:dashboard")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["company"] = self.company
        context["deadline_form"] = DeadlineForm()
        return context


class PostingCreateView(PostingFormMixin, CreateView):
    success_message = "Draft saved. Preview it, then publish it from here."


class PostingUpdateView(PostingFormMixin, UpdateView):
    success_message = "Changes saved."

    def get_queryset(self) -> QuerySet[Posting]:
        return own_postings(self.request.user)

    def get_object(self, queryset=None) -> Posting:
        posting = super().get_object(queryset)
        # An edit waiting for review is what the employer goes on from (the next one replaces it).
        self.revision = pending_revision(posting)
        if self.revision is not None:
            self.revision.apply_to(posting)  # this form's copy only: the listing is not changed
        return posting

    def get_context_data(self, **kwargs):
        return super().get_context_data(revision=getattr(self, "revision", None), **kwargs)


class PostingPreviewView(EmployerRequiredMixin, DetailView):
    """The listing as candidates will see it, whatever its status; nothing is counted."""

    template_name = "postings/posting_detail.html"
    context_object_name = "posting"

    def get_queryset(self) -> QuerySet[Posting]:
        return own_postings(self.request.user).select_related("company")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        posting = self.object
        context["preview"] = True
        # "?edit=pending": the edit waiting for review, as candidates will see it once approved.
        revision = pending_revision(posting) if self.request.GET.get("edit") == "pending" else None
        if revision is not None:
            revision.apply_to(posting)  # this page's copy only: never saved
            posting.set_description(posting.description)
            context["pending_edit"] = revision
        unpublished = (Posting.Status.DRAFT, Posting.Status.PENDING_REVIEW)
        context["not_public_yet"] = posting.status in unpublished
        if context["not_public_yet"]:  # as candidates will see it once published, not "closed"
            posting.status = Posting.Status.PUBLISHED  # this page's copy only: never saved
        context["view_count"] = posting.view_count
        context["share_url"] = self.request.build_absolute_uri(posting.get_absolute_url())
        return context


class PostingActionView(EmployerRequiredMixin, View):
    """POST one lifecycle action on one of the user's postings, then back to the dashboard."""

    http_method_names = ["post"]
    form_class: type | None = None

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        posting = get_object_or_404(own_postings(request.user), pk=pk)
        form = self.form_class(request.POST) if self.form_class else None
        if form is not None and not form.is_valid():
            for errors in form.errors.values():
                messages.error(request, f"“{posting.title}”: {' '.join(errors)}")
            return redirect("employer:dashboard")
        try:
            message = self.act(posting, request, form.cleaned_data if form else {})
        except services.PostingActionError as refused:
            messages.error(request, f"“{posting.title}”: {refused}")
        else:
            messages.success(request, message)
        return redirect("employer:dashboard")

    def act(self, posting: Posting, request: HttpRequest, data: dict) -> str:
        raise NotImplementedError


class PublishView(PostingActionView):
    def act(self, posting, request, data):
        posting = services.posting_publish(posting=posting, by=request.user)
        if posting.status == Posting.Status.PENDING_REVIEW:
            return (
                f"“{posting.title}” is waiting for review: a moderator checks new companies' "
                "first postings before they go public."
            )
        return f"“{posting.title}” is live."


class WithdrawView(PostingActionView):
    def act(self, posting, request, data):
        services.posting_withdraw(posting=posting, by=request.user)
        return f"“{posting.title}” is a draft again: change it, then publish when ready."


class WithdrawEditView(PostingActionView):
    def act(self, posting, request, data):
        services.posting_revision_withdraw(posting=posting, by=request.user)
        return f"Your edit of “{posting.title}” is discarded: the listing stays as it is."


class CloseView(PostingActionView):
    form_class = CloseForm

    def act(self, posting, request, data):
        services.posting_close(posting=posting, by=request.user, reason=data["reason"])
        return f"“{posting.title}” is closed: it no longer takes applications."


class ReopenView(PostingActionView):
    form_class = ReopenForm

    def act(self, posting, request, data):
        posting = services.posting_reopen(
            posting=posting, by=request.user, deadline=data["deadline"]
        )
        if not posting.is_open:
            return (
                f"“{posting.title}” is waiting for review before it opens again: until a "
                "moderator approves it, it stays public as closed."
            )
        return f"“{posting.title}” is open again."


class ExtendDeadlineView(PostingActionView):
    form_class = DeadlineForm

    def act(self, posting, request, data):
        posting = services.posting_extend_deadline(
            posting=posting, by=request.user, deadline=data["deadline"]
        )
        if posting.state == "expired":
            return (
                f"“{posting.title}” is waiting for review before it opens again: until a "
                "moderator approves it, it stays public as closed."
            )
        return f"“{posting.title}” now closes on {posting.deadline:%b %-d, %Y}."


class DuplicateView(PostingActionView):
    def act(self, posting, request, data):
        copy = services.posting_duplicate(posting=posting, by=request.user)
        return f"A new draft copy of “{copy.title}” is at the top of your list."
