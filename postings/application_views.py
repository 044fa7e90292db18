"""On-board applications: the candidate's apply form, and the employer's applicants, CVs and CSV.

Employers reach a posting only among their own companies' postings and an application only
through ``Application.objects.visible_to``: another company's id is a 404, never a 403.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import content_disposition_header, urlencode
from django.views import View
from django.views.decorators.http import require_http_methods
from django.views.generic import ListView
from django_ratelimit.decorators import ratelimit

from . import views
from .application_forms import ApplicationForm, ApplicationStatusForm
from .applications import (
    CV_KIND_BY_EXTENSION,
    ApplicationRefused,
    DuplicateApplication,
    application_set_status,
    application_submit,
    clean_file_name,
    link_lines,
    refusal_reason,
    web_links,
)
from .counters import client_ip
from .models import Application, Posting
from .permissions import EmployerRequiredMixin

logger = logging.getLogger(__name__)

APPLY_RATE = "10/h"
SESSION_KEY = "last_application"


def ip_key(group: str, request: HttpRequest) -> str:
    """Rate-limit by the same visitor address as the counters and django-axes (proxy-aware)."""
    return client_ip(request)


# --- The candidate --------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@ratelimit(key=ip_key, rate=APPLY_RATE, method="POST", block=False)
def posting_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """The apply form for a listing that takes applications here; otherwise the external link."""
    posting = get_object_or_404(Posting.objects.with_page().select_related("company"), pk=pk)
    if posting.is_under_review:
        return redirect(posting)  # its page says why it takes no applications now
    if not posting.applies_on_board:
        return views.posting_apply(request, pk)
    if not posting.is_open:
        messages.error(request, refusal_reason(posting))
        return redirect(posting)
    if request.method != "POST":
        return _form_page(request, posting, ApplicationForm())

    form = ApplicationForm(request.POST, request.FILES)
    if form.is_bot:
        logger.info("honeypot filled on posting %s: application dropped", posting.pk)
        return redirect("postings:apply_thanks", pk=posting.pk)
    if getattr(request, "limited", False):
        form.is_valid()  # show any other mistakes as well
        form.add_error(
            None,
            "Too many applications were sent from your network in the last hour. "
            "Please try again later: what you typed is kept below.",
        )
        return _form_page(request, posting, form, status=429)
    if not form.is_valid():
        return _form_page(request, posting, form)
    data = form.cleaned_data
    try:
        application = application_submit(
            posting=posting,
            name=data["name"],
            email=data["email"],
            phone=data["phone"],
            links=data["links"],
            cover_note=data["cover_note"],
            cv=data["cv"],
            site_url=request.build_absolute_uri("/").rstrip("/"),
        )
    except DuplicateApplication as duplicate:
        form.add_error(None, duplicate.message)
        return _form_page(request, posting, form, duplicate=True)
    except ApplicationRefused as refused:
        messages.error(request, refused.message)
        return redirect(posting)
    except ValidationError as error:
        form.add_error("cv", error)
        return _form_page(request, posting, form)
    request.session[SESSION_KEY] = {"posting": posting.pk, "application": application.pk}
    return redirect("postings:apply_thanks", pk=posting.pk)


def _form_page(
    request: HttpRequest, posting: Posting, form: ApplicationForm, status: int = 200, **extra
) -> TemplateResponse:
    context = {"posting": posting, "form": form, **extra}
    return TemplateResponse(request, "postings/application_form.html", context, status=status)


def apply_thanks(request: HttpRequest, pk: int) -> HttpResponse:
    """After a successful application (PRG): what happens next."""
    posting = get_object_or_404(Posting.objects.public().select_related("company"), pk=pk)
    application = None
    mine = request.session.get(SESSION_KEY) or {}
    if mine.get("posting") == posting.pk:
        application = Application.objects.filter(
            pk=mine.get("application"), posting=posting
        ).first()
    return TemplateResponse(
        request,
        "postings/application_thanks.html",
        {"posting": posting, "application": application},
    )


# --- The employer ---------------------------------------------------------------------------


def status_counts(posting: Posting) -> dict[str, int]:
    rows = posting.applications.values("status").annotate(n=Count("id")).order_by()
    counts = dict.fromkeys(Application.Status.values, 0)
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


class PostingOfMemberMixin(EmployerRequiredMixin):
    """Looks the posting up among the user's companies' postings: anyone else's is a 404."""

    def get_posting(self) -> Posting:
        return get_object_or_404(
            Posting.objects.of_member(self.request.user).select_related("company"),
            pk=self.kwargs["pk"],
        )

    def status_filter(self) -> str:
        status = self.request.GET.get("status", "")
        return status if status in Application.Status.values else ""

    def get_applications(self, posting: Posting, status: str) -> QuerySet[Application]:
        applications = posting.applications.all()
        return applications.filter(status=status) if status else applications


class ApplicantListView(PostingOfMemberMixin, ListView):
    template_name = "postings/application_list.html"
    context_object_name = "applications"
    paginate_by = 50

    def get_queryset(self) -> QuerySet[Application]:
        self.posting = self.get_posting()
        return self.get_applications(self.posting, self.status_filter())

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        counts = status_counts(self.posting)
        for application in context["applications"]:
            application.web_links = web_links(application.links)
        context.update(
            posting=self.posting,
            status=self.status_filter(),
            total=sum(counts.values()),
            statuses=[(value, label, counts[value]) for value, label in Application.Status.choices],
            status_choices=Application.Status.choices,
        )
        return context


CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(CSV_FORMULA_STARTS) else text


class ApplicantCSVView(PostingOfMemberMixin, View):
    http_method_names = ["get", "head"]
    columns = ("Applied at", "Name", "Email", "Phone", "Links", "Status", "Cover note", "CV file")

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        posting = self.get_posting()
        status = self.status_filter()
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        name = f"applicants-{posting.pk}-{posting.slug}{'-' + status if status else ''}.csv"
        response["Content-Disposition"] = content_disposition_header(True, name)
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        response.write("\ufeff")  # a BOM, so spreadsheet programs read the file as UTF-8
        writer = csv.writer(response)
        writer.writerow(self.columns)
        for application in self.get_applications(posting, status).iterator(chunk_size=500):
            writer.writerow(
                csv_cell(value)
                for value in (
                    application.created_at.isoformat(timespec="seconds"),
                    application.name,
                    application.email,
                    application.phone,
                    " ".join(link_lines(application.links)),
                    application.get_status_display(),
                    application.cover_note,
                    application.cv_name,
                )
            )
        return response


class ApplicationStatusView(EmployerRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        application = get_object_or_404(
            Application.objects.visible_to(request.user).select_related("posting"), pk=pk
        )
        form = ApplicationStatusForm(request.POST)
        if form.is_valid():
            application_set_status(
                application=application, status=form.cleaned_data["status"], by=request.user
            )
            messages.success(
                request, f"{application.name} is now marked {application.get_status_display()}."
            )
        else:
            messages.error(request, "Choose one of the statuses: the application was not changed.")
        url = reverse("employer:applicants", args=[application.posting_id])
        back_to = request.POST.get("filter", "")
        if back_to in Application.Status.values:
            url += "?" + urlencode({"status": back_to})
        return redirect(url)


class ApplicationCVView(LoginRequiredMixin, View):
    """A CV, only for members of the company that owns the listing (anyone else: 404)."""

    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest, pk: int) -> FileResponse:
        application = get_object_or_404(Application.objects.visible_to(request.user), pk=pk)
        extension = Path(application.cv.name).suffix.lower()
        kind = CV_KIND_BY_EXTENSION.get(extension)
        try:
            handle = application.cv.open("rb")
        except FileNotFoundError:
            logger.error("CV of application %s is missing from storage", application.pk)
            raise Http404("This CV file is missing.") from None
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=clean_file_name(application.cv_name, extension or ".bin"),
            content_type=kind.content_type if kind else "application/octet-stream",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response
