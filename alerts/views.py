"""Saved-search pages: subscribe (from the job list), confirm, manage and unsubscribe.

No account: a confirmation link proves the address once; every alert then carries a signed link
to manage or stop it. Links that change something are buttons (POST), because mail scanners open
every link in an email; only the RFC 8058 one-click POST needs no page.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited

from postings.counters import client_ip

from . import services
from .forms import FrequencyForm, SubscribeForm
from .models import SavedSearch

logger = logging.getLogger(__name__)

ADDRESS_RATE = "10/h"


def _address_key(group: str, request: HttpRequest) -> str:
    return client_ip(request)


def _over_limit(request: HttpRequest) -> bool:
    try:
        return is_ratelimited(
            request, group="alerts-subscribe", key=_address_key, rate=ADDRESS_RATE,
            method="POST", increment=True,
        )  # fmt: skip
    except Exception:  # the limiter's cache is away: the per-address email cap still holds
        logger.exception("alert subscribe rate limit unavailable")
        return False


@require_http_methods(["GET", "HEAD", "POST"])
def subscribe(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        query = services.normalize_query(request.GET)
        form = SubscribeForm(initial={"query": query})
        context = {"form": form, "description": services.describe_query(query)}
        return render(request, "alerts/subscribe.html", context)
    form = SubscribeForm(request.POST)
    if form.is_bot:
        logger.info("honeypot filled on the alert form: dropped")
        return render(request, "alerts/check_email.html", {"email": ""})
    if _over_limit(request):
        form.is_valid()
        form.add_error(None, "Many alerts were asked for from your address. Please try later.")
        return _form_page(request, form, status=429)
    if not form.is_valid():
        return _form_page(request, form, status=400)
    data = form.cleaned_data
    try:
        services.saved_search_request(
            email=data["email"], frequency=data["frequency"], query=data["query"]
        )
    except services.SubscribeRefused as refused:
        form.add_error(None, refused.message)
        return _form_page(request, form, status=429)
    return render(
        request,
        "alerts/check_email.html",
        {"email": data["email"], "description": services.describe_query(data["query"])},
    )


def _form_page(request: HttpRequest, form: SubscribeForm, status: int) -> HttpResponse:
    query = form.cleaned_data.get("query", "") if hasattr(form, "cleaned_data") else ""
    context = {"form": form, "description": services.describe_query(query)}
    return render(request, "alerts/subscribe.html", context, status=status)


def _invalid_link(request: HttpRequest) -> HttpResponse:
    return render(request, "alerts/invalid_link.html", status=400)


@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    if request.method != "POST":
        try:  # check the link now, so an expired one says so before the button
            services.saved_search_confirm_check(token=token)
        except services.InvalidLink:
            return _invalid_link(request)
        return render(request, "alerts/confirm.html", {"token": token})
    try:
        search = services.saved_search_confirm(token=token)
    except services.InvalidLink:
        return _invalid_link(request)
    except services.SubscribeRefused as refused:
        context = {"token": token, "refused": refused.message}
        return render(request, "alerts/confirm.html", context, status=409)
    return redirect("alerts:manage", token=services.manage_token(search))


@require_http_methods(["GET", "HEAD", "POST"])
def manage(request: HttpRequest, token: str) -> HttpResponse:
    try:
        search = services.search_for_manage_token(token)
    except services.InvalidLink:
        return _invalid_link(request)
    form = FrequencyForm(initial={"frequency": search.frequency})
    status = 200
    if request.method == "POST":
        form = FrequencyForm(request.POST)
        if form.is_valid():
            try:
                services.saved_search_change(
                    search=search, frequency=form.cleaned_data["frequency"]
                )
            except services.SubscribeRefused as refused:
                form.add_error(None, refused.message)
            else:
                return redirect("alerts:manage", token=token)
        status = 400
    return render(
        request, "alerts/manage.html", _manage_context(search, token, form), status=status
    )


def _manage_context(search: SavedSearch, token: str, form: FrequencyForm) -> dict:
    return {
        "search": search,
        "token": token,
        "form": form,
        "description": services.describe_query(search.query),
        "list_url": services.list_url(search),
    }


@csrf_exempt  # the signed link is the credential; mail clients' one-click POST has no CSRF token
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        search = services.search_for_manage_token(token)
    except services.InvalidLink:
        return _invalid_link(request)
    if request.method == "POST":
        search = services.saved_search_unsubscribe(search=search)
        return render(request, "alerts/unsubscribed.html", _manage_context(
            search, token, FrequencyForm(initial={"frequency": search.frequency})))  # fmt: skip
    return render(request, "alerts/unsubscribe.html", _manage_context(
        search, token, FrequencyForm(initial={"frequency": search.frequency})))  # fmt: skip
