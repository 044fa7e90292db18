"""Likely duplicates: the same job listed twice, by an employer and an aggregated source, or twice
by one employer.

Two derived columns, computed when a posting is saved (``Posting.save``) and indexed, make the
look-up a handful of index probes whatever the number of listings:

- ``title_key``: the title's words, casefolded, without accents, punctuation or gender tags,
  deduplicated and sorted, so "Senior Python Developer (m/w/d)" == "python developer, senior";
- ``description_key``: a SHA-1 of the description's words (markup, case, spacing and punctuation
  ignored), empty for a short description, so boilerplate does not match everything;
- ``apply_key``: a SHA-1 of the apply link spelled as source URLs are (``sources.canonical_url``),
  so an employer linking to a page we imported is found from either side.

A newly published or imported listing that repeats an open one is put in front of a moderator
(``flag_likely_duplicates``); moderators see every likely duplicate beside the listing.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import unicodedata
from datetime import datetime

from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from . import sources
from .models import Posting

logger = logging.getLogger(__name__)

SAME_SOURCE = "Same source page"
SAME_TITLE = "Same company, title and place"
SAME_DESCRIPTION = "Same description"
# Strongest evidence first: a shared source page is the same job whatever its words.
REASONS = (SAME_SOURCE, SAME_TITLE, SAME_DESCRIPTION)

# Descriptions shorter than this many words get no key: "Apply on our website." is not a job.
MIN_DESCRIPTION_WORDS = 25

# "(m/w/d)", "(f/m/x)", "(H/F)", "m/w/d", "(all genders)": the same role for everyone, not a word
# of its title. Applied after casefolding and stripping accents.
_GENDER = r"(?:m|w|f|d|x|h|i|div|divers|diverse|\*)"
_GENDER_TAG = re.compile(
    rf"\(\s*{_GENDER}(?:\s*[/|,]\s*{_GENDER})+\s*\)"
    rf"|\(\s*(?:all genders?|gn|genderneutral)\s*\)"
    rf"|(?<!\w){_GENDER}(?:/{_GENDER})+(?!\w)"
)
_NOT_ALNUM = re.compile(r"[\W_]+")
_WORD = re.compile(r"[^\W_]+")
_TAG = re.compile(r"<[^>]+>")


def _plain(text: str) -> str:
    """Casefolded, with accents stripped: "Développeur" and "developpeur" read the same."""
    text = text.casefold()
    if text.isascii():  # most text: nothing to strip
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def title_key(title: str) -> str:
    words = _NOT_ALNUM.sub(" ", _GENDER_TAG.sub(" ", _plain(title or ""))).split()
    return " ".join(sorted(set(words)))[:200]


def apply_key(apply_url: str) -> str:
    """The apply link in the one spelling of a source page, hashed to a short indexable key."""
    canonical = _canonical(apply_url)
    if not canonical:
        return ""
    return hashlib.sha1(canonical.encode(), usedforsecurity=False).hexdigest()


def _canonical(url: str) -> str:
    if not url:
        return ""
    try:
        return sources.canonical_url(url)
    except ValueError:  # not a web address: nothing to compare
        return ""


def description_key(description_html: str) -> str:
    """A hash of the description's words; works on HTML, Markdown or plain text alike."""
    text = html.unescape(_TAG.sub(" ", description_html or ""))
    words = _WORD.findall(_plain(text))
    if len(words) < MIN_DESCRIPTION_WORDS:
        return ""
    return hashlib.sha1(" ".join(words).encode(), usedforsecurity=False).hexdigest()


# --- Finding them ---------------------------------------------------------------------------


def _same_place(posting: Posting) -> Q:
    """Both remote, or the same city in the same country."""
    place = Q(country=posting.country, city__iexact=posting.city.strip())
    if posting.workplace == Posting.Workplace.REMOTE:
        place |= Q(workplace=Posting.Workplace.REMOTE)
    return place


def _matches(posting: Posting) -> list[tuple[str, Q]]:
    """One condition per reason, each served by an index (the empty-string exclusions let
    PostgreSQL use the partial ones)."""
    found: list[tuple[str, Q]] = []
    # An imported listing's page used as an employer's apply link, seen from either side. Two
    # employer listings sharing one careers page are not a match: that page is no source.
    linked = _canonical(posting.apply_url)
    if linked and linked != posting.source_url:
        found.append((SAME_SOURCE, Q(source_url=linked) & ~Q(source_url="")))
    if posting.source_url:
        linking = Q(apply_key=apply_key(posting.source_url), source_url="")
        found.append((SAME_SOURCE, linking & ~Q(apply_key="")))
    if posting.title_key:
        found.append(
            (
                SAME_TITLE,
                Q(company_id=posting.company_id, title_key=posting.title_key)
                & _same_place(posting),
            )
        )
    if posting.description_key:
        found.append(
            (
                SAME_DESCRIPTION,
                Q(description_key=posting.description_key) & ~Q(description_key=""),
            )
        )
    return found


def _open_first(now: datetime) -> Case:
    is_open = Q(status=Posting.Status.PUBLISHED) & (Q(deadline__isnull=True) | Q(deadline__gt=now))
    return Case(When(is_open, then=Value(0)), default=Value(1))


def likely_duplicates(posting: Posting, limit: int = 10) -> list[tuple[Posting, str]]:
    """Other public or waiting listings that look like the same job, with why, open ones first.

    Listings already marked duplicates are left out: the one they point to stands for them.
    """
    now = timezone.now()
    candidates = (
        Posting.objects.filter(
            status__in=[*Posting.PUBLIC_STATUSES, Posting.Status.PENDING_REVIEW],
            duplicate_of__isnull=True,
        )
        .exclude(pk=posting.pk)
        .for_cards()
        .annotate(ended=_open_first(now))
        .order_by("ended", F("posted_at").desc(nulls_last=True), "-pk")
    )
    found: dict[int, tuple[Posting, list[str]]] = {}
    for reason, condition in _matches(posting):
        for other in candidates.filter(condition)[:limit]:
            reasons = found.setdefault(other.pk, (other, []))[1]
            if reason not in reasons:
                reasons.append(reason)
    oldest = datetime.min.replace(tzinfo=now.tzinfo)
    ranked = sorted(
        found.values(),
        key=lambda item: (
            item[0].ended,
            -len(item[1]),
            min(REASONS.index(reason) for reason in item[1]),
            -(item[0].posted_at or oldest).timestamp(),
        ),
    )
    return [(other, _describe(reasons)) for other, reasons in ranked[:limit]]


def _describe(reasons: list[str]) -> str:
    ordered = sorted(reasons, key=REASONS.index)
    return "; ".join([ordered[0], *(reason.lower() for reason in ordered[1:])])


# --- Telling a moderator --------------------------------------------------------------------


def flag_likely_duplicates(*, posting_id: int) -> None:
    """Put a listing just published or imported that repeats an open one in front of a
    moderator: one automatic report at most while it is open. Safe to run twice.

    Runs after the publish or import has committed: a failure here is logged, never shown to the
    employer as a failed publish.
    """
    from reporting.services import report_likely_duplicate

    try:
        report_likely_duplicate(posting_id=posting_id)
    except Exception:
        logger.exception("could not look for duplicates of posting %s", posting_id)
