"""The moderators' "Background work" page: the figures of ``/healthz/workers/``, in words."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime
from django.views.generic import TemplateView

from jobboard import status as worker_status

from .moderation import ModeratorRequiredMixin

PARTS = ("beat", "workers", "queue", "freshness", "overdue", "failing")
BADGES = {
    "ok": "OK",
    "stale": "Stale",
    "never": "Not running",
    "none": "None answering",
    "behind": "Behind",
    "some": "Some overdue",
    "failing": "Some failing",
    "unreachable": "Unreachable",
    "not used": "Not used",
    "no open listings": "Nothing to check",
}
NEUTRAL_STATES = ("not used", "no open listings")
TONE_PILLS = {
    "ok": "pill-open",
    "bad": "pill-closed",
    "warn": "pill-pending",
    "neutral": "pill-draft",
}


def tone(state: str, embedded: bool) -> str:
    """How a part's line is highlighted: ok, warn, bad or neutral. Without workers (embedded)
    nothing is a failure, only worth a look."""
    if state == "ok":
        return "ok"
    if state in NEUTRAL_STATES:
        return "neutral"
    return "warn" if state in ("some", "failing") or embedded else "bad"


class StatusView(ModeratorRequiredMixin, TemplateView):
    template_name = "reporting/status.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        figures = worker_status.workers_status()
        embedded = figures["status"] == worker_status.EMBEDDED
        for name in PARTS:
            part = figures[name]
            part["tone"] = tone(part["state"], embedded)
            part["pill"] = TONE_PILLS[part["tone"]]
            part["badge"] = BADGES.get(part["state"], part["state"].capitalize())
        checked_at = parse_datetime(figures["checked_at"])
        lag = figures["freshness"]["lag_seconds"]
        tick = figures["beat"]["last_tick"]
        return super().get_context_data(
            figures=figures,
            embedded=embedded,
            checked_at=checked_at,
            beat_at=parse_datetime(tick) if tick else None,
            oldest_check_at=checked_at - timedelta(seconds=lag) if lag is not None else None,
            interval_minutes=int(settings.RECHECK_INTERVAL.total_seconds() // 60),
            tick_seconds=int(settings.RECHECK_TICK.total_seconds()),
            allowed_minutes=figures["freshness"]["allowed_seconds"] // 60,
            ping_cache_seconds=worker_status.PING_CACHE_SECONDS,
            ping_timeout=worker_status.PING_TIMEOUT,
            **kwargs,
        )
