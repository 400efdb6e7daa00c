"""Shared fixtures: real servers started once per session, skipped with a reason when absent."""

from __future__ import annotations

import datetime as dt

import pytest

UTC = dt.UTC


@pytest.fixture
def now() -> dt.datetime:
    """A fixed, timezone-aware 'now': tests never read the clock."""
    return dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
