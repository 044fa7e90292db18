"""One inbox, however its address is spelled, and a daily cap on the emails strangers can have
us send to it.

The sign-up, password-reset, apply and alert forms take any address and email it. Counted per
literal address, ``ann+1@…``, ``ann+2@…`` and ``A.nn@gmail.com`` would each get a cap of their own
while landing in one inbox, so the caps count per mailbox: case folded, quotes undone, ``+tag``
dropped, and dots dropped where the provider ignores them (Gmail). Plumbing: every app may
import it.
"""

from __future__ import annotations

import contextlib
import logging
import re

from django.core.cache import caches
from django.utils.crypto import salted_hmac

logger = logging.getLogger(__name__)

# Providers that deliver "a.n.n@" to "ann@"; googlemail.com is the same mailboxes as gmail.com.
DOTS_IGNORED = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
DAY_SECONDS = 24 * 3600


def mailbox(email: str) -> str:
    """The inbox an address reaches: ``A.nn+jobs@GoogleMail.com`` → ``ann@gmail.com``."""
    address = str(email or "").strip().casefold()
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    domain = domain.rstrip(".")
    # One spelling of an international domain: bücher.example is xn--bcher-kva.example.
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    if len(local) > 1 and local[0] == local[-1] == '"':
        # A quoted local part (RFC 5321) is the same mailbox unquoted: "a\\nn"@ is ann@.
        local = re.sub(r"\\(.)", r"\1", local[1:-1])
    local = local.split("+", 1)[0]
    if domain in DOTS_IGNORED:
        domain = DOTS_IGNORED[domain]
        local = local.replace(".", "")
    return f"{local}@{domain}"


def email_allowed(*, kind: str, to: str, per_day: int) -> bool:
    """Count one more ``kind`` email to ``to``'s mailbox and say whether it may go: at most
    ``per_day`` in 24 hours from the first. A refusal is logged on one line; the caller sends
    nothing and tells the visitor no more than it would have anyway.

    The count lives in the "counters" cache (Redis, or the embedded default's local memory) and
    is taken atomically (``add`` then ``incr``). A cache that is away lets the email go: the
    per-visitor rate limits still hold.
    """
    key = f"mailbox-cap:{kind}:{salted_hmac('jobboard.mailbox', mailbox(to)).hexdigest()[:32]}"
    cache = caches["counters"]
    try:
        cache.add(key, 0, timeout=DAY_SECONDS)
        try:
            sent = cache.incr(key)
        except ValueError:  # expired between add and incr: this is the first of a new day
            cache.add(key, 1, timeout=DAY_SECONDS)
            sent = 1
    except Exception as error:
        logger.warning("the %s email cap is unavailable (%r): the email goes", kind, error)
        return True
    if sent > per_day:
        logger.info("%s email not sent: its mailbox had %s today", kind, per_day)
        return False
    return True
