"""The moderators' pages: the queue of reported listings, one listing's history, the queues of
listings hidden after reports and waiting for approval, the edits waiting for review (old beside
new), and the actions they take. Every action is a POST with a note and goes through a service in
services.py, which writes the audit row."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db.models import Case, Count, IntegerField, Min, Q, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import DetailView, ListView

from postings.duplicates import likely_duplicates
from postings.models import Company, Posting, PostingRevision

from . import services
from .models import (
    HIDDEN_KINDS,
    ModerationAction,
    Report,
    postings_hidden_after_reports,
    postings_waiting_for_approval,
)
from .moderation_forms import BulkForm, DuplicateForm, NoteForm, QueueFilterForm

URGENCY = Case(
    *[When(reason=reason, then=Value(rank)) for reason, rank in Report.URGENCY.items()],
    default=Value(max(Report.URGENCY.values()) + 1),
    output_field=IntegerField(),
)


class ModeratorRequiredMixin(PermissionRequiredMixin):
    """Anonymous visitors go to the login page; signed-in users without the permission get 403."""

    permission_required = "reporting.moderate"


class QueueView(ModeratorRequiredMixin, ListView):
    """Reported listings, one row each: most urgent reason first, then most distinct reporters,
    then the longest waiting. One aggregate query, whatever the page size."""

    template_name = "reporting/moderation_queue.html"
    context_object_name = "groups"
    paginate_by = 25

    def get_queryset(self):
        self.filters = QueueFilterForm(self.request.GET or None)
        return (
            self.filters.filter(Report.objects.all())
            .values("posting")
            .annotate(
                urgency=Min(URGENCY),
                reporters=Count("reporter", distinct=True),
                reports=Count("id"),
                oldest=Min("created_at"),
            )
            .order_by("urgency", "-reporters", "oldest", "posting")
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        groups = list(context["groups"])
        postings = Posting.objects.select_related("company").in_bulk(
            [group["posting"] for group in groups]
        )
        for group in groups:
            group["listing"] = postings[group["posting"]]
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(
            groups=groups,
            filters=self.filters,
            query=query.urlencode(),
            bulk_actions=BulkForm.ACTIONS,
        )
        return context


def describe_actions(log: list[ModerationAction]) -> None:
    """Give each log row the words the page shows ("Lifted the company's suspension", ...)."""
    for action in log:
        lifted = action.kind == ModerationAction.Kind.SUSPEND_COMPANY and (
            action.note.startswith(services.SUSPENSION_LIFTED)
        )
        action.what = "Lifted the company's suspension" if lifted else action.get_kind_display()


class PostingModerationView(ModeratorRequiredMixin, DetailView):
    """One listing: its facts, every report about it, and the audit log of it and its company."""

    template_name = "reporting/moderation_posting.html"
    context_object_name = "posting"
    queryset = Posting.objects.select_related("company", "duplicate_of")

    def get_context_data(self, **kwargs):
        posting = self.object
        reports = list(posting.reports.select_related("duplicate_of", "handled_by"))
        log = list(
            ModerationAction.objects.filter(
                Q(posting=posting) | Q(company=posting.company)
            ).select_related("actor", "posting", "report")
        )
        describe_actions(log)
        return super().get_context_data(
            reports=reports,
            log=log,
            open_reports=sum(report.status == Report.Status.OPEN for report in reports),
            is_public=posting.status in Posting.PUBLIC_STATUSES,
            duplicate_default=self.duplicate_default(posting, reports),
            likely_duplicates=likely_duplicates(posting),
            pending_revision=posting.revisions.pending().first(),
            # What posting_mark_duplicate accepts: this listing public once (hidden or not), the
            # other public. One never public is sent back to its employer instead.
            markable=posting.posted_at is not None
            and posting.status in (*Posting.PUBLIC_STATUSES, Posting.Status.PENDING_REVIEW),
            never_public=posting.posted_at is None
            and posting.status == Posting.Status.PENDING_REVIEW,
            public_statuses=Posting.PUBLIC_STATUSES,
            **kwargs,
        )

    def duplicate_default(self, posting: Posting, reports: list[Report]) -> str:
        """The other listing a visitor named in a duplicate report (open ones first), as the
        address the moderator would paste."""
        named = [
            report
            for report in reports
            if report.duplicate_of_id and report.duplicate_of_id != posting.pk
        ]
        named.sort(key=lambda report: report.status != Report.Status.OPEN)
        if not named:
            return ""
        return self.request.build_absolute_uri(named[0].duplicate_of.get_absolute_url())


class CompanyModerationView(ModeratorRequiredMixin, DetailView):
    """One company: its state, its listings, and the audit log of it and all its listings."""

    template_name = "reporting/moderation_company.html"
    context_object_name = "company"
    model = Company

    def get_context_data(self, **kwargs):
        company = self.object
        postings = list(
            company.postings.exclude(status=Posting.Status.DRAFT)
            .annotate(open_reports=Count("reports", filter=Q(reports__status="open")))
            .defer("description", "description_html", "search_vector")
            .order_by("-created_at")[:200]
        )
        log = list(
            ModerationAction.objects.filter(Q(company=company) | Q(posting__company=company))
            .select_related("actor", "posting")
            .order_by("-created_at", "-id")[:500]
        )
        describe_actions(log)
        return super().get_context_data(postings=postings, log=log, **kwargs)


class ApprovalQueueView(ModeratorRequiredMixin, ListView):
    """Listings never approved yet (or edited since), longest waiting first; the ones hidden
    after reports have a queue of their own."""

    template_name = "reporting/moderation_approvals.html"
    context_object_name = "postings"
    paginate_by = 25

    def get_queryset(self):
        return (
            postings_waiting_for_approval().select_related("company").order_by("modified_at", "pk")
        )


class HiddenQueueView(ModeratorRequiredMixin, ListView):
    """Listings a moderator or the safety net hid after reports, longest hidden first, each
    with who hid it: to show again or close."""

    template_name = "reporting/moderation_hidden.html"
    context_object_name = "postings"
    paginate_by = 25

    def get_queryset(self):
        return (
            postings_hidden_after_reports().select_related("company").order_by("last_hidden", "pk")
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        postings = list(context["postings"])
        hides = ModerationAction.objects.filter(
            posting__in=postings, kind__in=HIDDEN_KINDS
        ).select_related("actor")
        latest = {}
        for action in hides.order_by("created_at", "pk"):
            latest[action.posting_id] = action
        for posting in postings:
            posting.hide = latest.get(posting.pk)
        context["postings"] = postings
        return context


class RevisionQueueView(ModeratorRequiredMixin, ListView):
    """Edits (and reopens) of listings that have been public, from companies not verified,
    longest waiting first. The listings stay public as approved meanwhile."""

    template_name = "reporting/moderation_revisions.html"
    context_object_name = "revisions"
    paginate_by = 25

    def get_queryset(self):
        return (
            PostingRevision.objects.pending()
            .select_related("posting__company", "submitted_by")
            .defer("posting__description", "posting__description_html", "posting__search_vector")
            .order_by("submitted_at", "pk")
        )


class RevisionView(ModeratorRequiredMixin, DetailView):
    """One edit waiting for review: what it changes on the listing as it is now, old beside new."""

    template_name = "reporting/moderation_revision.html"
    context_object_name = "revision"
    queryset = PostingRevision.objects.select_related("posting__company", "submitted_by")

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            changes=self.object.changes(),
            is_public=self.object.posting.status in Posting.PUBLIC_STATUSES,
            **kwargs,
        )


class ActionView(ModeratorRequiredMixin, View):
    """A POST with an action name and a note; anything else is a message, never an error page."""

    http_method_names = ["post"]
    actions: dict = {}

    def target(self, pk: int):
        raise NotImplementedError

    def default_next(self, target) -> str:
        raise NotImplementedError

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = self.target(pk)
        back = _next(request, self.default_next(target))
        action = self.actions.get(request.POST.get("action", ""))
        if action is None:
            messages.error(request, "Unknown action: nothing was changed.")
            return HttpResponseRedirect(back)
        service, needs_note, done = action
        form = NoteForm(request.POST)
        if needs_note and not form.is_valid():
            messages.error(request, "Write a short note saying why: nothing was changed.")
            return HttpResponseRedirect(back)
        note = request.POST.get("note", "")
        extra = self.action_kwargs(request, request.POST.get("action", ""))
        try:
            result = service(target, by=request.user, note=note, **extra)
        except services.ModerationError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, done(result) if callable(done) else done)
        return HttpResponseRedirect(back)

    def action_kwargs(self, request: HttpRequest, action: str) -> dict:
        """What else this action's service takes from the form."""
        return {}


def _seen(request: HttpRequest) -> datetime | None:
    """When what the moderator read was last changed, as the page they acted on showed it."""
    try:
        return parse_datetime(request.POST.get("seen", "")[:64])
    except ValueError:  # well formed but no such moment (a 31st of February)
        return None


def _next(request: HttpRequest, default: str) -> str:
    candidate = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return candidate if candidate and allowed else default


class ReportActionView(ActionView):
    actions = {
        "dismiss": (
            lambda report, **kw: services.report_dismiss(report=report, **kw),
            True,
            "Report dismissed.",
        ),
        "resolve": (
            lambda report, **kw: services.report_resolve(report=report, **kw),
            True,
            "Report resolved.",
        ),
    }

    def target(self, pk: int) -> Report:
        return get_object_or_404(Report, pk=pk)

    def default_next(self, report: Report) -> str:
        return reverse("moderation:posting", args=[report.posting_id])


class PostingActionView(ActionView):
    actions = {
        "hide": (
            lambda posting, **kw: services.posting_hide(posting=posting, **kw),
            True,
            "Listing hidden pending review; its open reports are resolved.",
        ),
        "close": (
            lambda posting, **kw: services.posting_moderator_close(posting=posting, **kw),
            True,
            "Listing closed; its open reports are resolved.",
        ),
        "ask_correction": (
            lambda posting, **kw: services.posting_ask_correction(posting=posting, **kw),
            True,
            "The employer was asked to correct the listing; its open reports are resolved.",
        ),
        "dismiss_all": (
            lambda posting, **kw: services.posting_dismiss_reports(posting=posting, **kw),
            True,
            "All open reports on the listing dismissed.",
        ),
        "approve": (
            lambda posting, **kw: services.posting_moderation_approve(posting=posting, **kw),
            False,
            "Listing approved: it is public now.",
        ),
        "reject": (
            lambda posting, **kw: services.posting_reject(posting=posting, **kw),
            True,
            "Listing sent back to the employer's drafts; they were told why.",
        ),
    }

    def target(self, pk: int) -> Posting:
        return get_object_or_404(Posting.objects.select_related("company"), pk=pk)

    def action_kwargs(self, request: HttpRequest, action: str) -> dict:
        return {"seen": _seen(request)} if action == "approve" else {}

    def default_next(self, posting: Posting) -> str:
        return reverse("moderation:posting", args=[posting.pk])


class RevisionActionView(ActionView):
    actions = {
        "approve": (
            lambda revision, **kw: services.revision_moderation_approve(revision=revision, **kw),
            False,
            lambda posting: f"Edit approved: “{posting.title}” shows it now.",
        ),
        "reject": (
            lambda revision, **kw: services.revision_moderation_reject(revision=revision, **kw),
            True,
            "Edit not approved: the listing stays as it was; the employer was told why.",
        ),
    }

    def target(self, pk: int) -> PostingRevision:
        return get_object_or_404(PostingRevision.objects.select_related("posting__company"), pk=pk)

    def action_kwargs(self, request: HttpRequest, action: str) -> dict:
        return {"seen": _seen(request)} if action == "approve" else {}

    def default_next(self, revision: PostingRevision) -> str:
        return reverse("moderation:revisions")


def _suspended_message(counts: dict[str, int]) -> str:
    hidden = counts["hidden"]
    return (
        f"Company suspended: {hidden} public listing{'s' if hidden != 1 else ''} hidden pending "
        "review, and its members cannot publish or reopen listings. Its listings' open reports "
        "are resolved."
    )


def _lifted_message(waiting: int) -> str:
    listings = f"{waiting} listing{'s' if waiting != 1 else ''}"
    return (
        "Suspension lifted: the company's members can publish again. Its hidden listings stay "
        f"pending review ({listings}): approve each one from the approval queue."
    )


class CompanyActionView(ActionView):
    actions = {
        "verify": (
            lambda company, **kw: services.company_moderation_verify(company=company, **kw),
            False,
            "Company verified; its waiting listings are public now.",
        ),
        "suspend": (
            lambda company, **kw: services.company_suspend(company=company, **kw),
            True,
            _suspended_message,
        ),
        "lift_suspension": (
            lambda company, **kw: services.company_lift_suspension(company=company, **kw),
            True,
            _lifted_message,
        ),
    }

    def target(self, pk: int) -> Company:
        return get_object_or_404(Company, pk=pk)

    def default_next(self, company: Company) -> str:
        return reverse("moderation:approvals")


class MarkDuplicateView(ModeratorRequiredMixin, View):
    """Close a listing as a repeat of another public one, which its page then points to."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        posting = get_object_or_404(Posting.objects.select_related("company"), pk=pk)
        back = _next(request, reverse("moderation:posting", args=[posting.pk]))
        form = DuplicateForm(request.POST, posting=posting)
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, f"{error} Nothing was changed.")
            return HttpResponseRedirect(back)
        other = form.cleaned_data["other"]
        try:
            services.posting_mark_duplicate(
                posting=posting, other=other, by=request.user, note=form.cleaned_data["note"]
            )
        except services.ModerationError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request,
                f"Listing closed as a duplicate of “{other.title}”: its page sends candidates "
                "there; its open reports are resolved.",
            )
        return HttpResponseRedirect(back)


class BulkActionView(ModeratorRequiredMixin, View):
    """The same action with one note on several listings picked in the queue."""

    http_method_names = ["post"]
    bulk_services = {
        "hide": services.posting_hide,
        "close": services.posting_moderator_close,
        "dismiss": services.posting_dismiss_reports,
    }

    def post(self, request: HttpRequest) -> HttpResponse:
        back = _next(request, reverse("moderation:queue"))
        form = BulkForm(request.POST)
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return HttpResponseRedirect(back)
        service = self.bulk_services[form.cleaned_data["action"]]
        postings = Posting.objects.select_related("company").in_bulk(form.cleaned_data["postings"])
        done = 0
        for pk in form.cleaned_data["postings"]:
            if pk not in postings:
                messages.error(request, f"No listing {pk}: skipped.")
                continue
            try:
                service(posting=postings[pk], by=request.user, note=form.cleaned_data["note"])
            except services.ModerationError as error:
                messages.error(request, str(error))
            else:
                done += 1
        if done:
            messages.success(request, f"Done on {done} listing{'s' if done != 1 else ''}.")
        return HttpResponseRedirect(back)
