"""Fixtures for the saved-search and alert tests."""

from __future__ import annotations

import asyncio
import email
import re
import socket
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import SavedSearch
from jobboard.celery import app as celery_app


@pytest.fixture(autouse=True)
def _eager_tasks():
    # With REDIS_URL set Celery would queue the emails for a worker; here they run in-process.
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def make_search():
    """A confirmed search, as its subscriber left it ``confirmed_ago``; its first alert is due."""

    def make(
        query: str = "", email: str = "ann@example.com", frequency: str = "daily",
        confirmed_ago: timedelta = timedelta(days=1, minutes=5),
    ) -> SavedSearch:  # fmt: skip
        confirmed = timezone.now() - confirmed_ago
        period = SavedSearch.PERIODS[frequency]
        return SavedSearch.objects.create(
            email=email,
            query=query,
            frequency=frequency,
            confirmed_at=confirmed,
            covered_until=confirmed,
            next_alert_at=confirmed + period,
        )

    return make


LINK = re.compile(r"https?://\S+")


def links_in(body: str, part: str) -> list[str]:
    """The links of an email body whose path contains ``part``, without the site address."""
    return [re.sub(r"^https?://[^/]+", "", url) for url in LINK.findall(body) if part in url]


class SinkHandler:
    """An SMTP server's mind: a message counts as sent only once it is answered 250.

    ``hold_at=n`` keeps the n-th message waiting, unanswered, until ``release`` is set; it is then
    refused (451), as a server that never got to accept it would.
    """

    def __init__(self) -> None:
        self.accepted: list[email.message.Message] = []
        self.arrived = 0
        self.delay = 0.0
        self.hold_at: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope) -> str:
        self.arrived += 1
        number = self.arrived
        if self.delay:
            await asyncio.sleep(self.delay)
        if number == self.hold_at:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 Try again later"
        self.accepted.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback (aiosmtpd); ``.handler.accepted`` holds what it accepted."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    controller.url = f"smtp://127.0.0.1:{port}"
    try:
        yield controller
    finally:
        handler.release.set()
        controller.stop()
