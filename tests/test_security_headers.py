"""The Content-Security-Policy and Permissions-Policy every page carries, and the markup that lets
the policy be strict: no inline script or style in any template."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from csp.decorators import csp_exempt, csp_update
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpResponse
from django.test import Client
from django.urls import path, reverse

from postings.factories import PublishedPostingFactory

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def failing_view(request):
    raise RuntimeError("boom")


@csp_update({"img-src": "https://maps.example"})
def view_with_a_wider_policy(request):
    return HttpResponse("map")


@csp_exempt()
def view_without_a_policy(request):
    return HttpResponse("plain")


# This module is also a URLconf, for the 500 page and django-csp's decorators (pytest.mark.urls).
urlpatterns = [
    path("boom/", failing_view),
    path("map/", view_with_a_wider_policy),
    path("plain/", view_without_a_policy),
]


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


@pytest.mark.parametrize("page", ["list", "detail", "robots", "login", "admin_login", "not_found"])
def test_every_page_carries_the_policies(client, page):
    posting = PublishedPostingFactory()
    url = {
        "list": reverse("postings:list"),
        "detail": posting.get_absolute_url(),
        "robots": reverse("robots_txt"),
        "login": reverse("accounts:login"),
        "admin_login": reverse("admin:login"),
        "not_found": "/no-such-page/",
    }[page]
    response = client.get(url)

    policy = directives(response["Content-Security-Policy"])
    assert "Content-Security-Policy-Report-Only" not in response
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["style-src"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    features = dict(item.split("=", 1) for item in response["Permissions-Policy"].split(", "))
    denied_features = ("camera", "microphone", "geolocation", "payment", "usb", "browsing-topics")
    for denied in (*denied_features, "interest-cohort"):
        assert features[denied] == "()", denied
    assert "web-share" not in features and "clipboard-write" not in features  # "self" by default


def test_the_report_only_switch_sends_the_policy_to_report_and_not_to_enforce(client, settings):
    policy = settings.CONTENT_SECURITY_POLICY
    settings.CONTENT_SECURITY_POLICY = None
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = policy
    response = client.get(reverse("postings:list"))

    assert "Content-Security-Policy" not in response
    assert "script-src 'self'" in response["Content-Security-Policy-Report-Only"]


def test_the_policy_built_once_is_the_one_django_csp_builds(client, settings):
    assert client.get(reverse("postings:list"))["Content-Security-Policy"] == build_policy()
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    response = client.get(reverse("postings:list"))  # a changed setting is read again

    assert response["Content-Security-Policy"] == build_policy()
    assert response["Content-Security-Policy-Report-Only"] == "default-src 'none'"


@pytest.mark.urls(__name__)
def test_django_csps_decorators_still_change_a_views_policy(client):
    wider = directives(client.get("/map/")["Content-Security-Policy"])
    assert wider["img-src"] == ["'self'", "data:", "https://maps.example"]
    assert wider["script-src"] == ["'self'"]
    assert "Content-Security-Policy" not in client.get("/plain/")


@pytest.mark.urls(__name__)
def test_the_error_pages_own_style_is_allowed_by_its_hash():
    """The 500 page must show with nothing else working (no static files, no template tags), so
    its <style> stays inline, allowed by its hash alone."""
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    style = re.search(r"<style>(.*?)</style>", response.content.decode(), re.DOTALL)[1]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()

    assert f"'sha256-{digest}'" in directives(response["Content-Security-Policy"])["style-src"]


def test_xml_documents_may_be_styled_inline_by_the_browsers_viewer_and_nothing_more(client):
    PublishedPostingFactory()
    xml = directives(client.get("/sitemap.xml")["Content-Security-Policy"])
    assert xml["style-src"] == ["'unsafe-inline'"]
    assert xml["script-src"] == ["'self'"] and xml["default-src"] == ["'self'"]
    html = directives(client.get(reverse("postings:list"))["Content-Security-Policy"])
    assert "'unsafe-inline'" not in html["style-src"]


def test_a_form_sent_without_its_csrf_cookie_is_refused_on_a_page_the_policy_allows():
    """Django's own CSRF failure page carries an inline <style>, blocked by the policy: a form
    sent after its session expired or with cookies off must get the site's page instead."""
    response = Client(enforce_csrf_checks=True).post(
        reverse("accounts:login"), {"username": "ann@example.com", "password": "x" * 12}
    )
    assert response.status_code == 403
    html = response.content.decode()
    assert "<style" not in html and "Please try again" in html
    assert "Content-Security-Policy" in response


def template_files() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def test_no_template_has_inline_script_or_style():
    """Scripts and styles are files (static/js, static/css): the policy allows no inline code,
    and a nonce cannot be used on pages kept for many visitors. JSON-LD is data, not script."""
    offending = []
    for template in template_files():
        html = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html):
            if "src=" not in tag and 'type="application/ld+json"' not in tag:
                offending.append(f"{template.name}: {tag}")
        if re.search(r"\son[a-z]+\s*=", html):
            offending.append(f"{template.name}: an on... event handler attribute")
        if re.search(r"\sstyle\s*=", html):
            offending.append(f"{template.name}: a style attribute")
        if "<style" in html and template.name != "500.html":
            offending.append(f"{template.name}: a <style> block")
        if "javascript:" in html:
            offending.append(f"{template.name}: a javascript: link")

    assert template_files()
    assert offending == []
