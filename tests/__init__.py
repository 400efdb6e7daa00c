"""The test suite."""

import datetime as dt
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest

#: The one "now" of the test suite: tests never read the clock (the ``now`` fixture of
#: tests/conftest.py returns it too).
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)

S = TypeVar("S")


def serve_or_skip(server: S, unavailable: type[Exception]) -> Iterator[S]:
    """For a fixture: start a throwaway ``server`` (``learnprivacy.testing``), yield it and
    stop it afterwards; skip with the reason when it is ``unavailable`` here."""
    started: Any = server
    try:
        started.start()
    except unavailable as exc:
        pytest.skip(f"{type(server).__name__} unavailable: {exc}")
    try:
        yield server
    finally:
        started.stop()
