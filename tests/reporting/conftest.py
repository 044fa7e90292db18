"""Fixtures for the reporting and moderation tests."""

from __future__ import annotations

import pytest

from jobboard.celery import app as celery_app


@pytest.fixture(autouse=True)
def _eager_tasks():
    # With REDIS_URL set Celery would queue the safety net's alert for a worker; here it runs
    # in-process, when the report's transaction commits.
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before
