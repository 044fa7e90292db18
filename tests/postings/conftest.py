"""Fixtures shared by the postings tests."""

from __future__ import annotations

import pytest

from postings import sources


@pytest.fixture
def quick_sources(settings):
    """Source pages fetched with short timeouts, no per-host limit in the way, checks inline."""
    settings.SOURCE_CONNECT_TIMEOUT = 1.0
    settings.SOURCE_READ_TIMEOUT = 1.0
    settings.SOURCE_TOTAL_TIMEOUT = 2.0
    settings.SOURCE_HOST_PER_MINUTE = 1000
    settings.RECHECK_FETCH_THREADS = 1  # checks run in the test's own transaction
    sources._rate_limiter.cache_clear()
    yield
    sources._rate_limiter.cache_clear()
