"""One mailbox however its address is spelled, and the per-mailbox daily cap on emails."""

from __future__ import annotations

import logging

import pytest
from django import forms
from django.core.cache import caches
from django.test import override_settings

from jobboard.mailbox import email_allowed, mailbox


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("ann@example.com", "ann@example.com"),
        ("  Ann@Example.COM ", "ann@example.com"),
        ("ann+jobs@example.com", "ann@example.com"),
        ("ann+a+b@example.com", "ann@example.com"),
        ("a.nn@example.com", "a.nn@example.com"),  # dots matter beyond Gmail
        ("A.n.n+x@Gmail.com", "ann@gmail.com"),
        ("a.nn@googlemail.com", "ann@gmail.com"),
        ("ann@gmail.com.", "ann@gmail.com"),
        ("ann@bücher.example", "ann@xn--bcher-kva.example"),
        ("not-an-address", "not-an-address"),
        ('"ann"@example.com', "ann@example.com"),  # quoted: the same mailbox
        ('"a\\nn+x"@example.com', "ann@example.com"),  # a quoted pair is its character
        ('"a.nn"@gmail.com', "ann@gmail.com"),
    ],
)
def test_an_address_is_counted_as_the_mailbox_it_reaches(address, expected):
    assert mailbox(address) == expected


def test_spellings_of_one_mailbox_share_its_daily_cap(caplog):
    caplog.set_level(logging.INFO, logger="jobboard.mailbox")
    spellings = ["ann@gmail.com", "Ann+1@gmail.com", "a.nn+2@googlemail.com"]
    assert [email_allowed(kind="test", to=a, per_day=2) for a in spellings] == [True, True, False]
    assert [r.getMessage() for r in caplog.records] == [
        "test email not sent: its mailbox had 2 today"
    ]
    assert "ann" not in caplog.text  # the address is not logged


def test_quoted_spellings_the_email_field_accepts_share_the_mailboxs_cap():
    field = forms.EmailField()
    spellings = ['"ann"@example.com', '"a\\nn"@example.com', '"\\a\\nn"@example.com']
    allowed = [email_allowed(kind="test", to=field.clean(a), per_day=1) for a in spellings]
    assert allowed == [True, False, False]


def test_each_kind_and_each_mailbox_has_a_cap_of_its_own():
    assert email_allowed(kind="a", to="ann@example.com", per_day=1)
    assert not email_allowed(kind="a", to="ANN+x@example.com", per_day=1)
    assert email_allowed(kind="b", to="ann@example.com", per_day=1)
    assert email_allowed(kind="a", to="bob@example.com", per_day=1)


LOCAL_MEMORY = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}


def test_the_cap_works_on_the_embedded_local_memory_cache():
    with override_settings(CACHES={"default": LOCAL_MEMORY, "counters": LOCAL_MEMORY}):
        assert caches["counters"].__class__.__name__ == "LocMemCache"
        allowed = [
            email_allowed(kind="test", to=f"ann+{n}@example.com", per_day=3) for n in range(5)
        ]
        caches["counters"].clear()
    assert allowed == [True, True, True, False, False]


def test_a_cache_that_is_away_lets_the_email_go(caplog):
    nothing_listens = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
    }
    with override_settings(CACHES={"default": LOCAL_MEMORY, "counters": nothing_listens}):
        assert email_allowed(kind="test", to="ann@example.com", per_day=0)
    assert "the test email cap is unavailable" in caplog.text
