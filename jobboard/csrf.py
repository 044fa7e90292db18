"""``django.middleware.csrf.get_token`` with its randomness drawn in one system call.

Django draws each of a token's 64 random characters with its own ``secrets.choice``, each an
``os.urandom`` call: a tenth of a millisecond for every new visitor, a tenth of a kept page's
time (``postings/pagecache.py``). Here they come from one ``secrets.token_bytes`` call, each byte
used only below the largest multiple of 62 (rejection sampling, so every character is as likely
as Django's), and the token is made exactly as Django makes it: a fresh mask, then the visitor's
secret shifted by it (``_mask_cipher_secret``), which ``CsrfViewMiddleware`` checks as its own.
"""

from __future__ import annotations

import secrets

from django.http import HttpRequest
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH

_CHARS = CSRF_ALLOWED_CHARS
_BASE = len(_CHARS)
_INDEX = {char: i for i, char in enumerate(_CHARS)}
_UNIFORM_BELOW = 256 - 256 % _BASE  # bytes from here up would favour the first characters


def _random_indices(count: int) -> list[int]:
    indices: list[int] = []
    while len(indices) < count:
        indices += [b % _BASE for b in secrets.token_bytes(count + 8) if b < _UNIFORM_BELOW]
    return indices[:count]


def get_token(request: HttpRequest) -> str:
    """The CSRF token for a form on this response, as ``django.middleware.csrf.get_token``: the
    visitor's secret (``CsrfViewMiddleware`` read it from their cookie into ``META``, or a new
    one, which it then sends them as their cookie), masked afresh."""
    need = CSRF_SECRET_LENGTH if "CSRF_COOKIE" in request.META else 2 * CSRF_SECRET_LENGTH
    drawn = _random_indices(need)
    mask, new_secret = drawn[:CSRF_SECRET_LENGTH], drawn[CSRF_SECRET_LENGTH:]
    if new_secret:
        request.META["CSRF_COOKIE"] = "".join(_CHARS[i] for i in new_secret)
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    secret = [_INDEX[char] for char in request.META["CSRF_COOKIE"]]
    cipher = "".join(_CHARS[(s + m) % _BASE] for s, m in zip(secret, mask, strict=True))
    return "".join(_CHARS[i] for i in mask) + cipher
