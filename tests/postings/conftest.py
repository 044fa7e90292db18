"""Fixtures shared by the postings tests."""

from __future__ import annotations

import pytest

from postings import sources
from tests.source_server import SourceServer, job_posting


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


@pytest.fixture
def internal_server():
    """A second local server, playing a machine inside (an admin page): nothing allows its port,
    so a fetch that reaches it went where it must not."""
    server = SourceServer().start()
    server.json_ld_page("/internal/admin", job_posting(title="Internal admin"))
    yield server
    server.close()
