"""The moderators' digest of new reports: at most one an hour, and only when there is news.

A single locked row remembers the last report covered, so two workers running the task at once
send one digest, and a run that fails before its commit is simply repeated later.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import DigestState, Report

logger = logging.getLogger(__name__)

DIGEST_EVERY = timedelta(hours=1)
MAX_LISTED = 20


def moderator_emails() -> list[str]:
    users = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(is_superuser=True)
            | Q(
                groups__permissions__codename="moderate",
                groups__permissions__content_type__app_label="reporting",
            )
            | Q(user_permissions__codename="moderate")
        )
    )
    return sorted({u.email for u in users.distinct() if u.email})


@transaction.atomic
def digest_send(*, now: datetime | None = None) -> int:
    """Send the digest if it is due and there are new reports; returns how many emails."""
    now = now or timezone.now()
    DigestState.objects.get_or_create(pk=1)
    state = DigestState.objects.select_for_update().get(pk=1)
    if state.last_sent_at and now - state.last_sent_at < DIGEST_EVERY:
        return 0
    new = list(
        Report.objects.filter(pk__gt=state.last_report_id)
        .select_related("posting__company")
        .order_by("pk")
    )
    recipients = moderator_emails()
    if not new or not recipients:
        return 0
    by_reason = Counter(r.get_reason_display() for r in new)
    by_posting = Counter(r.posting for r in new)
    context = {
        "count": len(new),
        "by_reason": by_reason.most_common(),
        "postings": by_posting.most_common(MAX_LISTED),
        "more": max(0, len(by_posting) - MAX_LISTED),
        "queue_url": settings.SITE_URL + reverse("moderation:queue"),
        "site_url": settings.SITE_URL,
        "site_name": settings.SITE_NAME,
    }
    subject = " ".join(render_to_string("reporting/email/digest_subject.txt", context).split())
    body = render_to_string("reporting/email/digest.txt", context)
    sent = send_mass_mail([(subject, body, None, [email]) for email in recipients])
    state.last_sent_at = now
    state.last_report_id = new[-1].pk
    state.save()
    logger.info("moderator digest: %s new reports to %s moderators", len(new), sent)
    return sent
