"""The public "Report this job" form. No account needed; a page of its own without JavaScript,
in place on the listing with it (the script asks for JSON)."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited

from postings.counters import client_ip, visitor_fingerprint
from postings.models import Posting

from . import safety_net, services
from .forms import ReportForm

logger = logging.getLogger(__name__)

THANKS = "Thank you. Our team will review this report."
# Per visitor (address and browser) and, more loosely, per address (an office shares one).
VISITOR_RATE = "5/h"
ADDRESS_RATE = "20/h"


def _visitor_key(group: str, request: HttpRequest) -> str:
    return visitor_fingerprint(request)


def _address_key(group: str, request: HttpRequest) -> str:
    return client_ip(request)


def _over_limit(request: HttpRequest) -> bool:
    limits = (("visitor", _visitor_key, VISITOR_RATE), ("address", _address_key, ADDRESS_RATE))
    over = False
    for name, key, rate in limits:
        # Each check also counts this attempt, so run both rather than stopping at the first.
        over |= is_ratelimited(
            request, group=f"report-{name}", key=key, rate=rate, method="POST", increment=True
        )
    return over


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


@require_http_methods(["GET", "HEAD", "POST"])
def report_posting(request: HttpRequest, pk: int) -> HttpResponse:
    posting = get_object_or_404(Posting.objects.public().select_related("company"), pk=pk)
    if request.method != "POST":
        return render(request, "reporting/report_form.html",
                      {"posting": posting, "form": ReportForm(posting=posting)})  # fmt: skip
    form = ReportForm(request.POST, posting=posting)
    if form.is_bot:
        logger.info("honeypot filled on a report of posting %s: dropped", posting.pk)
        return _done(request, posting)
    try:
        limited = _over_limit(request)
    except Exception:  # the limiter's cache is away: take the report rather than lose it
        logger.exception("report rate limit unavailable")
        limited = False
    if limited:
        form.is_valid()
        form.add_error(None, "You have sent many reports in the last hour. Please try later.")
        return _invalid(request, posting, form, status=429)
    if not form.is_valid():
        return _invalid(request, posting, form)
    data = form.cleaned_data
    services.report_submit(
        posting=posting,
        reason=data["reason"],
        **safety_net.report_origin(request),
        details=data["details"],
        duplicate_of=data["duplicate_of"],
        email=data["email"],
    )
    return _done(request, posting)


def _done(request: HttpRequest, posting: Posting) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"ok": True, "message": THANKS})
    return render(request, "reporting/report_thanks.html", {"posting": posting, "message": THANKS})


def _invalid(request: HttpRequest, posting: Posting, form: ReportForm, status: int = 400):
    if _wants_json(request):
        errors = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
        return JsonResponse({"ok": False, "errors": errors}, status=status)
    return render(request, "reporting/report_form.html", {"posting": posting, "form": form},
                  status=status)  # fmt: skip
