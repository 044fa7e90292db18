"""Alerts sent by real Celery workers on real Redis and PostgreSQL, to a real SMTP server."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import tasks
from alerts.models import AlertDelivery, SavedSearch
from postings.factories import PublishedPostingFactory
from tests.worker import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SUBSCRIBERS = 8
LISTINGS = 4


def test_a_run_killed_halfway_and_restarted_sends_each_listing_to_each_subscriber_once(
    start_worker, smtp_server, make_search
):
    searches = [make_search(email=f"s{n}@example.com") for n in range(SUBSCRIBERS)]
    postings = [
        PublishedPostingFactory(posted_at=timezone.now() - timedelta(minutes=10 + n))
        for n in range(LISTINGS)
    ]
    handler = smtp_server.handler
    handler.delay = 0.1
    handler.hold_at = 4  # three alerts accepted, the fourth in the mail server's hands
    worker = start_worker(
        EMAIL_URL=smtp_server.url,
        CELERY_VISIBILITY_TIMEOUT="2",
        CELERY_RESTORE_INTERVAL="1",
        CELERY_RESTORE_THROTTLE="1",
    )

    tasks.send_alerts.delay()  # beat's tick: queue the due searches, then send them
    assert handler.holding.wait(30), "the fourth alert never reached the mail server"
    worker.kill()  # main process and pool at once: the batch was never acknowledged
    handler.release.set()
    assert len(handler.accepted) == 3
    worker.wait_visibility_timeout()
    worker.restart()

    wait_for(
        lambda: not SavedSearch.objects.filter(alerts_sent=0).exists(),
        timeout=60,
        message="every subscriber's alert",
    )
    worker.wait_for_log("succeeded", count=2)  # the scheduler, then the batch handed out again

    accepted = handler.accepted
    recipients = Counter(message["To"] for message in accepted)
    assert recipients == Counter({s.email: 1 for s in searches})
    for message in accepted:
        body = message.get_payload(decode=True).decode()
        for posting in postings:
            assert body.count(posting.get_absolute_url()) == 1, message["To"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert AlertDelivery.objects.count() == SUBSCRIBERS * LISTINGS
    assert len({m["Message-ID"] for m in accepted}) == SUBSCRIBERS

    # A second run the same day finds nothing due: nobody hears twice.
    tasks.send_alerts.delay()
    worker.wait_for_log("succeeded", count=3)
    assert len(handler.accepted) == SUBSCRIBERS
