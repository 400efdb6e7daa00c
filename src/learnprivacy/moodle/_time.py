"""Moodle's Unix timestamps, converted to and from timezone-aware UTC datetimes."""

from __future__ import annotations

import datetime as dt

from learnprivacy.errors import ValidationError

__all__ = ["from_unix", "latest", "to_unix"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def from_unix(value: int | None) -> dt.datetime | None:
    """A Moodle timestamp as an aware UTC datetime; ``0`` and ``NULL`` mean "never" (None).

    >>> from_unix(0) is None
    True
    >>> from_unix(86400).isoformat()
    '1970-01-02T00:00:00+00:00'
    """
    if not value:
        return None
    # Adding a timedelta to the epoch (rather than fromtimestamp) is exact and fast, and
    # does not depend on the platform's range of time_t.
    return _EPOCH + dt.timedelta(seconds=int(value))


def to_unix(value: dt.datetime | None) -> int:
    """An aware datetime as a Moodle timestamp (whole seconds); ``None`` becomes ``0``."""
    if value is None:
        return 0
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError("Moodle timestamps need timezone-aware datetimes", field="time")
    return (value - _EPOCH) // dt.timedelta(seconds=1)


def latest(*values: int | None) -> int:
    """The most recent of several Moodle timestamps, ``0`` when none is set."""
    return max((v for v in values if v), default=0)
