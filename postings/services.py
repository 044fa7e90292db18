"""Writes with rules attached. Keyword-only, named <thing>_<action>, called from views, the admin,
commands and tasks alike."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from .models import Posting


def posting_save_edit(*, posting: Posting, now: datetime | None = None) -> Posting:
    """Save a posting edited by hand (the admin for now): render its description, and stamp the
    first publication, which later edits never move."""
    now = now or timezone.now()
    posting.set_description(posting.description)
    if posting.status in Posting.PUBLIC_STATUSES and posting.posted_at is None:
        posting.posted_at = now
        posting.updated_at = now
        posting.last_checked_at = now
    posting.save()
    return posting
