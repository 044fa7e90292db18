"""Writes with rules attached. Keyword-only, named <thing>_<action>, called from views, the admin,
commands and tasks alike.

The rules of the posting lifecycle live here:
- ``posted_at`` is set at the first publication and never moves again (edits, close and reopen);
- ``updated_at`` moves only when something a candidate sees changes;
- a company that is not verified publishes into the review queue;
- once a listing has been public, such a company's rewording or reopening waits for a moderator
  as a revision (``PostingRevision``), and the listing stays public as last approved meanwhile;
- the same role, open twice, is caught and offered as "extend the deadline" instead;
- a published listing that looks like another open one is put before a moderator
  (postings/duplicates.py).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import partial

from django.db import transaction
from django.utils import timezone

from .duplicates import flag_likely_duplicates
from .models import CANDIDATE_FIELDS, Company, Posting, PostingRevision

CLOSE_REASONS = {
    "filled": "The role was filled.",
    "withdrawn": "The employer withdrew the role.",
}

_NOT_WORD = re.compile(r"[^\w]+")


class PostingActionError(Exception):
    """An action that the posting's state or its owner's state does not allow; says why."""


def normalize_title(title: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", title.casefold()).split())


def find_repost(
    *, company: Company, title: str, city: str, country: str, exclude_pk: int | None = None
) -> Posting | None:
    """An open posting of the same company for the same role in the same place, if any."""
    wanted = normalize_title(title)
    candidates = (
        Posting.objects.open()
        .filter(company=company, country=country, city__iexact=city.strip())
        .exclude(pk=exclude_pk)
        .only("pk", "title", "slug", "deadline", "company_id")
    )
    return next((p for p in candidates if normalize_title(p.title) == wanted), None)


def _candidate_view(posting: Posting) -> tuple:
    return tuple(str(getattr(posting, name)) for name in CANDIDATE_FIELDS)


# What a moderator approved when letting an unverified company's listing go live: its words,
# free-text places included (a "city" can carry a scam's text as well as a title can).
REVIEWED_FIELDS = ("title", "description", "city", "region", "apply_url", "applies_on_board")


def _reviewed_view(posting: Posting) -> tuple:
    return tuple(str(getattr(posting, name)) for name in REVIEWED_FIELDS)


@transaction.atomic
def posting_save(*, posting: Posting, by, now: datetime | None = None) -> Posting:
    """Save a new or edited posting (a draft when new), rendering its description once.

    An edit writes only what a candidate sees onto the current row, so a colleague's close or
    applications that arrived meanwhile are kept. ``updated_at`` moves only when that content
    really changed. An unverified company's edit that rewords a listing which has been public is
    kept apart as a pending revision for a moderator: the listing goes on showing its approved
    words (``posting_revision_submit``).
    """
    now = now or timezone.now()
    posting.set_description(posting.description)
    if posting.pk is None:
        posting.status = Posting.Status.DRAFT
        posting.created_by = by
        posting.save()
        return posting
    current = Posting.objects.select_for_update().select_related("company").get(pk=posting.pk)
    pending = PostingRevision.objects.pending().select_for_update().filter(posting=current).first()
    brings_back = current.state == "expired" and posting.deadline and posting.deadline > now
    if brings_back and not current.company.is_verified:
        # A later deadline brings an expired listing back: a reopen, which waits for a moderator
        # here, with the rest of the edit.
        edited = Posting.objects.select_related("company").get(pk=current.pk)
        _apply_edit(edited, posting, now)
        edited.deadline = current.deadline  # _reopen checks, then sets the new one
        _reopen(edited, deadline=posting.deadline, now=now)
        posting_revision_submit(posting=current, edited=edited, by=by, reopen=True, now=now)
        return current
    if _needs_review(current) and _reviewed_view(current) != _reviewed_view(posting):
        # The employer's form starts from the edit waiting, so the next one replaces it whole.
        posting_revision_submit(posting=current, edited=posting, by=by, now=now)
        return current
    if pending is not None:  # worded as approved again: this edit replaces the one waiting
        pending.state = PostingRevision.State.WITHDRAWN
        pending.save(update_fields=["state"])
    _apply_edit(current, posting, now)
    if current.state == "expired" and current.deadline and current.deadline > now:
        current.status = Posting.Status.PUBLISHED  # a later deadline brings it back
        current.closed_at, current.closed_reason = None, ""
    current.save()
    return current


def _needs_review(posting: Posting) -> bool:
    """Whether a change to this listing's words waits for a moderator: its company is not
    verified and the listing has been public (a draft or a hidden one is not shown as edited)."""
    return not posting.company.is_verified and posting.status in Posting.PUBLIC_STATUSES


def _apply_edit(current: Posting, edited: Posting, now: datetime) -> None:
    """Copy what a candidate sees from ``edited`` onto the locked row ``current`` (not saved)."""
    changed = _candidate_view(current) != _candidate_view(edited)
    if current.deadline != edited.deadline:
        current.deadline_reminder_sent_at = None  # the new deadline gets its own reminder
    for name in (*CANDIDATE_FIELDS, "description_html", "summary"):
        setattr(current, name, getattr(edited, name))
    if changed and current.posted_at:
        current.updated_at = now


def posting_revision_submit(
    *, posting: Posting, edited: Posting, by, reopen: bool = False, now: datetime | None = None
) -> PostingRevision:
    """Keep an unverified company's edit (or reopen) of a public listing for review; the
    listing itself is not changed. A revision already pending is updated, not added to.

    Call it with ``posting`` locked (``select_for_update``), as posting_save and posting_reopen
    do."""
    now = now or timezone.now()
    values = PostingRevision.values_of(edited, CANDIDATE_FIELDS)
    revision = PostingRevision.objects.pending().select_for_update().filter(posting=posting).first()
    if revision is None:
        revision = PostingRevision(posting=posting)
    revision.values = values
    revision.reopen = reopen or revision.reopen
    revision.submitted_by, revision.submitted_at = by, now
    revision.save()
    return revision


def _locked_pending(revision: PostingRevision) -> PostingRevision:
    revision = PostingRevision.objects.select_for_update().get(pk=revision.pk)
    if revision.state != PostingRevision.State.PENDING:
        state = revision.get_state_display().lower()
        raise PostingActionError(f"This edit is no longer waiting for review: it was {state}.")
    return revision


@transaction.atomic
def posting_revision_approve(
    *, revision: PostingRevision, by, now: datetime | None = None
) -> Posting:
    """A moderator lets a pending edit (and reopen) go live: its values are written onto the
    listing as an edit by a verified company would be, and a reopen opens it."""
    now = now or timezone.now()
    Company.objects.select_for_update().filter(pk=revision.posting.company_id).first()
    posting = (
        Posting.objects.select_for_update().select_related("company").get(pk=revision.posting_id)
    )
    revision = _locked_pending(revision)
    edited = revision.apply_to(Posting.objects.get(pk=posting.pk))
    edited.set_description(edited.description)
    _apply_edit(posting, edited, now)
    if revision.reopen and posting.state in ("closed", "expired"):
        if posting.company.is_suspended:
            raise PostingActionError(f"{posting.company.name} is suspended: it cannot reopen.")
        _reopen(posting, deadline=None, now=now)
    elif posting.state == "expired" and posting.deadline and posting.deadline > now:
        posting.status = Posting.Status.PUBLISHED  # a later deadline brings it back, as an edit
        posting.closed_at, posting.closed_reason = None, ""
    posting.save()
    revision.state = PostingRevision.State.APPROVED
    revision.reviewed_by, revision.reviewed_at = by, now
    revision.save(update_fields=["state", "reviewed_by", "reviewed_at"])
    if posting.is_open:
        transaction.on_commit(partial(flag_likely_duplicates, posting_id=posting.pk))
    return posting


@transaction.atomic
def posting_revision_reject(
    *, revision: PostingRevision, by, note: str, now: datetime | None = None
) -> PostingRevision:
    """A moderator turns a pending edit down; the listing keeps its approved words and the
    employer sees the note beside it."""
    revision = _locked_pending(revision)
    revision.state = PostingRevision.State.REJECTED
    revision.reviewed_by, revision.reviewed_at = by, now or timezone.now()
    revision.note = note[:500]
    revision.save(update_fields=["state", "reviewed_by", "reviewed_at", "note"])
    return revision


@transaction.atomic
def posting_revision_withdraw(*, posting: Posting, by) -> PostingRevision:
    """The employer drops their edit (or reopen) waiting for review; the listing stays as it is."""
    revision = PostingRevision.objects.pending().select_for_update().filter(posting=posting).first()
    if revision is None:
        raise PostingActionError("No edit of this posting is waiting for review.")
    revision.state = PostingRevision.State.WITHDRAWN
    revision.save(update_fields=["state"])
    return revision


@transaction.atomic
def posting_publish(*, posting: Posting, by, now: datetime | None = None) -> Posting:
    """Publish a draft: at once for a verified company, into the review queue otherwise."""
    now = now or timezone.now()
    # Lock the company first: two drafts of one role published at once must not both go live.
    Company.objects.select_for_update().filter(pk=posting.company_id).first()
    posting = Posting.objects.select_for_update().select_related("company").get(pk=posting.pk)
    if posting.status not in (Posting.Status.DRAFT,):
        raise PostingActionError("Only a draft can be published.")
    if posting.company.is_suspended:
        raise PostingActionError(
            "Your company is suspended by our moderators, so it cannot publish; reply to their "
            "email to sort it out."
        )
    if not getattr(by, "is_email_verified", True):
        raise PostingActionError("Confirm your email address first: we sent you a link.")
    if posting.is_past_deadline:
        raise PostingActionError("Its deadline has passed: set a deadline in the future first.")
    if not (posting.applies_on_board or posting.apply_url):
        raise PostingActionError("Say how candidates apply: on this board or by a link.")
    repost = find_repost(
        company=posting.company,
        title=posting.title,
        city=posting.city,
        country=str(posting.country),
        exclude_pk=posting.pk,
    )
    if repost is not None:
        raise PostingActionError(
            f"“{repost.title}” is already open. Extend its deadline instead of posting it again."
        )
    posting.closed_reason = ""  # a moderator's earlier "not approved" note is answered now
    if posting.company.is_verified:
        _go_live(posting, now)
    else:
        posting.status = Posting.Status.PENDING_REVIEW
    posting.save()
    transaction.on_commit(partial(flag_likely_duplicates, posting_id=posting.pk))
    return posting


def _go_live(posting: Posting, now: datetime) -> None:
    posting.status = Posting.Status.PUBLISHED
    if posting.posted_at is None:  # the first publication, and only that, sets posted_at
        posting.posted_at = now
        posting.updated_at = now
    posting.last_checked_at = now
    posting.closed_at, posting.closed_reason = None, ""


@transaction.atomic
def posting_approve(*, posting: Posting, by, now: datetime | None = None) -> Posting:
    """A moderator lets a posting from the review queue go live."""
    now = now or timezone.now()
    posting = Posting.objects.select_for_update().get(pk=posting.pk)
    if posting.status != Posting.Status.PENDING_REVIEW:
        raise PostingActionError("Only a posting waiting for review can be approved.")
    _go_live(posting, now)
    posting.save()
    return posting


@transaction.atomic
def posting_withdraw(*, posting: Posting, by) -> Posting:
    """Take a posting out of the review queue, back to a draft the employer can change."""
    posting = Posting.objects.select_for_update().get(pk=posting.pk)
    if posting.status != Posting.Status.PENDING_REVIEW:
        raise PostingActionError("Only a posting waiting for review can be withdrawn.")
    if posting.is_under_review:
        # Hidden after it was public: as a draft it could be published again past the moderator.
        raise PostingActionError(
            "Our moderators are looking at this listing; it stays as it is until they decide."
        )
    posting.status = Posting.Status.DRAFT
    posting.save(update_fields=["status", "modified_at"])
    return posting


@transaction.atomic
def company_verify(*, company: Company, by, now: datetime | None = None) -> list[Posting]:
    """Mark a company verified: its waiting postings go live, and later ones publish at once.

    Listings hidden after they were public (``Posting.is_under_review``: by a moderator, the
    safety net or a suspension) stay hidden: trusting the company answers nothing about why
    they were hidden, and a moderator decides each."""
    company = Company.objects.select_for_update().get(pk=company.pk)
    company.is_verified = True
    company.save(update_fields=["is_verified"])
    waiting = Posting.objects.filter(
        company=company, status=Posting.Status.PENDING_REVIEW, posted_at__isnull=True
    )
    approved = [posting_approve(posting=posting, by=by, now=now) for posting in waiting]
    # Its waiting edits are its own words now, as later ones will be.
    for revision in PostingRevision.objects.pending().filter(posting__company=company):
        try:
            with transaction.atomic():
                posting_revision_approve(revision=revision, by=by, now=now)
        except PostingActionError:  # a reopen no longer possible: it waits for a moderator
            continue
    return approved


@transaction.atomic
def posting_close(*, posting: Posting, by, reason: str, now: datetime | None = None) -> Posting:
    if reason not in CLOSE_REASONS:
        raise PostingActionError("Say why the role closes: filled or withdrawn.")
    posting = Posting.objects.select_for_update().get(pk=posting.pk)
    if not posting.is_open:
        raise PostingActionError("This posting is not open.")
    posting.status = Posting.Status.CLOSED
    posting.closed_at = now or timezone.now()
    posting.closed_reason = CLOSE_REASONS[reason]
    posting.save(update_fields=["status", "closed_at", "closed_reason", "modified_at"])
    return posting


@transaction.atomic
def posting_reopen(
    *, posting: Posting, by, deadline: datetime | None = None, now: datetime | None = None
) -> Posting:
    """Open a closed or expired posting again; posted_at stays, a new deadline is content.

    For a company that is not verified the reopen waits for a moderator as a revision
    (``posting_revision_submit``), with any edit already waiting: the listing reads closed, never
    open, until it is approved."""
    now = now or timezone.now()
    Company.objects.select_for_update().filter(pk=posting.company_id).first()
    posting = Posting.objects.select_for_update().select_related("company").get(pk=posting.pk)
    if posting.company.is_verified:
        _reopen(posting, deadline=deadline, now=now)
        posting.save()
        return posting
    pending = PostingRevision.objects.pending().filter(posting=posting).first()
    edited = Posting.objects.select_related("company").get(pk=posting.pk)  # the row stays as is
    if pending is not None:
        pending.apply_to(edited)
    _reopen(edited, deadline=deadline, now=now)  # checked now, and again when approved
    posting_revision_submit(posting=posting, edited=edited, by=by, reopen=True, now=now)
    return posting


def _reopen(posting: Posting, *, deadline: datetime | None, now: datetime) -> None:
    """Check that ``posting`` may open again and make it live (not saved)."""
    if posting.state not in ("closed", "expired"):
        raise PostingActionError("Only a closed or expired posting can be reopened.")
    if posting.company.is_suspended:
        raise PostingActionError("Your company is suspended, so it cannot reopen postings.")
    if posting.duplicate_of_id:
        raise PostingActionError("A moderator marked this posting a duplicate; it stays closed.")
    if posting.is_closed_by_moderator:
        raise PostingActionError(
            "A moderator closed this posting; reply to their email if it should open again."
        )
    if deadline is not None:
        if deadline <= now:
            raise PostingActionError("The new deadline must be in the future.")
        posting.deadline = deadline
        posting.deadline_reminder_sent_at = None
        posting.updated_at = now
    elif posting.is_past_deadline:
        raise PostingActionError("Its deadline has passed: choose a new deadline to reopen it.")
    repost = find_repost(
        company=posting.company,
        title=posting.title,
        city=posting.city,
        country=str(posting.country),
        exclude_pk=posting.pk,
    )
    if repost is not None:
        raise PostingActionError(f"“{repost.title}” is already open; extend that one instead.")
    _go_live(posting, now)


@transaction.atomic
def posting_extend_deadline(
    *, posting: Posting, by, deadline: datetime, now: datetime | None = None
) -> Posting:
    now = now or timezone.now()
    posting = Posting.objects.select_for_update().select_related("company").get(pk=posting.pk)
    if deadline <= now:
        raise PostingActionError("The new deadline must be in the future.")
    if posting.deadline and deadline <= posting.deadline:
        raise PostingActionError("Choose a deadline later than the current one.")
    if posting.state == "expired" and not posting.company.is_verified:
        # Bringing an expired listing back is a reopen, which waits for a moderator here.
        return posting_reopen(posting=posting, by=by, deadline=deadline, now=now)
    if posting.status not in (Posting.Status.DRAFT, Posting.Status.PENDING_REVIEW) and not (
        posting.is_open or posting.state == "expired"
    ):
        raise PostingActionError("A closed posting is reopened, not extended.")
    posting.deadline = deadline
    posting.deadline_reminder_sent_at = None
    if posting.posted_at:
        posting.updated_at = now
    # An edit waiting for review carries the deadline too: approving it must not undo this.
    for revision in PostingRevision.objects.pending().select_for_update().filter(posting=posting):
        revision.values["deadline"] = PostingRevision.values_of(posting, ("deadline",))["deadline"]
        revision.save(update_fields=["values"])
    if posting.state == "expired":
        posting.status = Posting.Status.PUBLISHED
        posting.closed_at, posting.closed_reason = None, ""
    posting.save()
    return posting


@transaction.atomic
def posting_duplicate(*, posting: Posting, by) -> Posting:
    """A new draft with the same facts, no history and no deadline."""
    if posting.is_under_review or posting.is_closed_by_moderator:
        # A verified company's copy publishes at once: the moderator's decision, undone.
        raise PostingActionError(
            "A moderator took this listing down, so it cannot be copied; reply to their email "
            "if it should be listed again."
        )
    copy = Posting(
        company=posting.company,
        **{name: getattr(posting, name) for name in CANDIDATE_FIELDS if name != "deadline"},
    )
    copy.title = posting.title
    return posting_save(posting=copy, by=by)


def posting_save_edit(*, posting: Posting, now: datetime | None = None) -> Posting:
    """Save a posting edited in the admin: render its description, and stamp the first
    publication, which later edits never move."""
    now = now or timezone.now()
    posting.set_description(posting.description)
    stored = (
        Posting.objects.filter(pk=posting.pk)
        .values("deadline", "deadline_reminder_sent_at")
        .first()
        if posting.pk
        else None
    )
    if stored:  # a moved deadline gets its own reminder; else keep the mark (the form's is stale)
        moved = stored["deadline"] != posting.deadline
        posting.deadline_reminder_sent_at = None if moved else stored["deadline_reminder_sent_at"]
    if posting.status in Posting.PUBLIC_STATUSES and posting.posted_at is None:
        posting.posted_at = now
        posting.updated_at = now
        posting.last_checked_at = now
    posting.save()
    return posting
