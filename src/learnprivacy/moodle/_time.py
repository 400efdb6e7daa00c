"""Moodle's Unix timestamps, converted to and from timezone-aware UTC datetimes."""

from __future__ import annotations

import datetime as dt

from learnprivacy._validators import require_aware
from learnprivacy.errors import ValidationError

__all__ = [
    "OUT_OF_RANGE",
    "UTC",
    "from_unix",
    "from_unix_lenient",
    "required_date",
    "to_unix",
    "utc",
]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# The C constructor is several times faster than epoch arithmetic, which matters at one
# call per timestamp column per row.
_FROM_TIMESTAMP = dt.datetime.fromtimestamp
_UTC = dt.UTC
#: What ``datetime.fromtimestamp`` raises for a value no datetime can hold.
OUT_OF_RANGE = (OverflowError, OSError, ValueError)
#: ``datetime.fromtimestamp``, for row mappers that inline :func:`from_unix`: call it as
#: ``at = utc(value, UTC) if value else None`` and let :data:`OUT_OF_RANGE` go to
#: :func:`from_unix` for the same error.
utc, UTC = _FROM_TIMESTAMP, _UTC


def from_unix(value: int | None) -> dt.datetime | None:
    """A Moodle timestamp as an aware UTC datetime; ``0`` and ``NULL`` mean "never" (None).

    A value no datetime can hold raises ``ValidationError``.

    >>> from_unix(0) is None
    True
    >>> from_unix(86400).isoformat()
    '1970-01-02T00:00:00+00:00'
    """
    if not value:
        return None
    try:
        return _FROM_TIMESTAMP(value, _UTC)
    except OUT_OF_RANGE:
        # A corrupt value must not stop a scan: callers report it as an issue.
        raise ValidationError(
            "Moodle timestamp out of the supported range", field="timestamp"
        ) from None


def required_date(value: int | None, field: str) -> dt.datetime:
    """:func:`from_unix` for a date the record cannot do without: none raises
    ``ValidationError`` ("no date", naming ``field``), which a
    :func:`~learnprivacy.moodle._issues.reporting` mapper reports and skips the row for."""
    at = from_unix(value)
    if at is None:
        raise ValidationError("no date", field=field)
    return at


def to_unix(value: dt.datetime | None) -> int:
    """An aware datetime as a Moodle timestamp (whole seconds); ``None`` becomes ``0``."""
    if value is None:
        return 0
    require_aware(value, "time")
    return (value - _EPOCH) // dt.timedelta(seconds=1)


def from_unix_lenient(value: int | None) -> dt.datetime | None:
    """Like :func:`from_unix`, but a value out of range reads as unknown (None)."""
    try:
        return from_unix(value)
    except ValidationError:
        return None
