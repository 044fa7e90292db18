"""The suite's own guard rails (tests/conftest.py): PostgreSQL-only tests skip on the SQLite
default, and CI's JOBBOARD_REQUIRE_POSTGRES=1 turns a missing PostgreSQL into a loud failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PG_ONLY_TEST = "tests/postings/test_querysets.py::test_a_listing_is_found_by_its_companys_name"


def run_pytest(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run a nested pytest on the embedded default (no DATABASE_URL, no REDIS_URL)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "JOBBOARD_REQUIRE_POSTGRES", "PYTEST_ADDOPTS"}
        # Run from an xdist worker, it is a session of its own, not that worker (tests/parallel.py)
        and not k.startswith("PYTEST_XDIST_")
    }
    environ.update(VAR_DIR=str(tmp_path), **env)
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_postgres_test_is_skipped_on_sqlite_with_the_reason(tmp_path):
    result = run_pytest(tmp_path, "-n", "0", PG_ONLY_TEST)  # one test: no xdist workers
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "needs PostgreSQL full-text search" in result.stdout


def test_requiring_postgres_without_it_stops_the_whole_session(tmp_path):
    result = run_pytest(tmp_path, PG_ONLY_TEST, JOBBOARD_REQUIRE_POSTGRES="1")
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "JOBBOARD_REQUIRE_POSTGRES=1 but this session has no PostgreSQL" in output
    assert "Redis" in output
    assert " skipped in " not in result.stdout  # nothing ran, so nothing was skipped
