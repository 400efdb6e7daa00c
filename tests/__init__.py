"""The test suite."""

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest

#: The one "now" of the test suite: tests never read the clock (the ``now`` fixture of
#: tests/conftest.py returns it too).
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)

S = TypeVar("S")


def names(text: str, value: str) -> bool:
    """Whether ``text`` holds ``value`` as a whole token (a learner id, a name), not as
    letters that a random keyed reference or hash (base64url, hex) happens to contain:
    ``'L1'`` and ``L1-P1`` name learner L1, ``k1_s3L1Xl0`` does not."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", text) is not None


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
