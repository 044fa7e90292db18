"""jobboard/csrf.py: Django's CSRF token, drawn in one system call, checked as Django's own."""

from __future__ import annotations

from collections import Counter

from django.http import HttpResponse
from django.middleware.csrf import (
    CSRF_ALLOWED_CHARS,
    CsrfViewMiddleware,
    _unmask_cipher_token,
)
from django.test import RequestFactory

from jobboard import csrf


def test_a_new_visitor_gets_a_secret_and_a_token_that_unmasks_to_it():
    request = RequestFactory().get("/")
    token = csrf.get_token(request)
    secret = request.META["CSRF_COOKIE"]
    assert len(token) == 64 and len(secret) == 32
    assert set(token + secret) <= set(CSRF_ALLOWED_CHARS)
    assert _unmask_cipher_token(token) == secret
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"]


def test_a_returning_visitor_keeps_their_secret_under_a_fresh_mask():
    request = RequestFactory().get("/")
    request.META["CSRF_COOKIE"] = "a" * 32
    first, second = csrf.get_token(request), csrf.get_token(request)
    assert first != second
    assert _unmask_cipher_token(first) == _unmask_cipher_token(second) == "a" * 32


def test_the_middleware_sets_the_cookie_and_accepts_the_token_in_a_post():
    middleware = CsrfViewMiddleware(lambda request: HttpResponse())
    page = RequestFactory().get("/")
    middleware.process_request(page)
    token = csrf.get_token(page)
    response = middleware.process_response(page, HttpResponse())
    cookie = response.cookies["csrftoken"].value
    assert cookie == page.META["CSRF_COOKIE"]

    post = RequestFactory().post("/", {"csrfmiddlewaretoken": token})
    post.COOKIES["csrftoken"] = cookie
    middleware.process_request(post)
    assert middleware.process_view(post, lambda r: HttpResponse(), (), {}) is None  # accepted
    forged = RequestFactory().post("/", {"csrfmiddlewaretoken": csrf.get_token(page)[::-1]})
    forged.COOKIES["csrftoken"] = cookie
    middleware.process_request(forged)
    assert middleware.process_view(forged, lambda r: HttpResponse(), (), {}).status_code == 403


def test_every_character_is_as_likely():
    drawn = Counter(i for _ in range(2000) for i in csrf._random_indices(64))
    expected = 2000 * 64 / len(CSRF_ALLOWED_CHARS)
    assert set(drawn) == set(range(len(CSRF_ALLOWED_CHARS)))
    assert all(abs(n - expected) < 0.2 * expected for n in drawn.values())  # ~9 standard deviations
