"""A health endpoint for load balancers and compose: can this process reach its services?"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .status import DEGRADED, public_status, workers_status

logger = logging.getLogger(__name__)


def _check_database() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def _check_cache() -> bool:
    cache.set("healthz", "ok", 10)
    return cache.get("healthz") == "ok"


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    for name, check in (("database", _check_database), ("cache", _check_cache)):
        try:
            checks[name] = "ok" if check() else "failing"
        except Exception:  # any failure to reach a service is a failed check, not a 500
            logger.exception("health check %s failed", name)
            checks[name] = "failing"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "failing", "checks": checks}, status=200 if healthy else 503
    )


@never_cache
@require_safe
def healthz_workers(request: HttpRequest) -> JsonResponse:
    """Beat, workers, queue and re-checks: 200 when ok or embedded, 503 when degraded.

    Public, so the workers' host names are left out (moderators see them on their status page).
    """
    status = workers_status()
    return JsonResponse(public_status(status), status=503 if status["status"] == DEGRADED else 200)
