"""Response deadlines (GDPR Art. 12(3)): one month, extensible once by two more, computed
as Regulation (EEC, Euratom) No 1182/71 computes periods.

- Art. 3(2)(c): a period of months ends with the last hour of the day that, in the last
  month, falls on the same date as the day of receipt; when that month has no such date,
  with the last hour of its last day (received 31 January, due at the end of 29 February).
  Deadlines are therefore the last instant of a day, in the time zone of receipt.
- Art. 3(4): a period whose last day is a Saturday, a Sunday or a public holiday ends
  with the last hour of the next working day. :class:`HolidayCalendar` gives the French
  and Belgian public holidays.
- An extension prolongs the original period: it counts from the original deadline's
  month-day reckoning, not from a deadline already moved off a weekend or clamped to a
  short month. Received 31 January 2024, extended by two months: the period is three
  months from receipt and ends on 30 April, not 29 April.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from typing import Any

import attrs

from learnprivacy import _validators as v
from learnprivacy._validators import require_aware
from learnprivacy.errors import ValidationError
from learnprivacy.records._serialise import JsonForm
from learnprivacy.retention import Period

__all__ = [
    "MAX_EXTENSION_MONTHS",
    "RESPONSE_PERIOD",
    "Extension",
    "HolidayCalendar",
    "extended_deadline",
    "first_deadline",
]

#: The time the controller has to answer (Art. 12(3), first sentence).
RESPONSE_PERIOD = Period(months=1)

#: The longest extension Art. 12(3) allows, in months.
MAX_EXTENSION_MONTHS = 2


def _easter(year: int) -> dt.date:
    """Easter Sunday of the Gregorian calendar (the anonymous algorithm, Meeus 1991)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


class HolidayCalendar(enum.Enum):
    """The public holidays a deadline rolls over (Regulation 1182/71 Art. 3(4)).

    ``FR``: the eleven national holidays of the French Labour Code (art. L3133-1);
    ``BE``: the ten Belgian legal holidays; ``NONE``: weekends only.
    """

    FR = "FR"
    BE = "BE"
    NONE = "none"

    def holidays(self, year: int) -> frozenset[dt.date]:
        """The public holidays of ``year``."""
        return _holidays(self, year)

    def is_working_day(self, day: dt.date) -> bool:
        """Neither a Saturday, a Sunday nor a public holiday."""
        return day.weekday() < 5 and day not in self.holidays(day.year)

    def next_working_day(self, day: dt.date) -> dt.date:
        """``day`` itself when it is a working day, else the next one."""
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day


@functools.cache
def _holidays(calendar: HolidayCalendar, year: int) -> frozenset[dt.date]:
    if calendar is HolidayCalendar.NONE:
        return frozenset()
    easter = _easter(year)
    moving = {
        easter + dt.timedelta(days=1),  # Easter Monday
        easter + dt.timedelta(days=39),  # Ascension
        easter + dt.timedelta(days=50),  # Whit Monday
    }
    fixed = [(1, 1), (5, 1), (8, 15), (11, 1), (11, 11), (12, 25)]
    if calendar is HolidayCalendar.FR:
        fixed += [(5, 8), (7, 14)]
    else:
        fixed += [(7, 21)]
    return frozenset(moving | {dt.date(year, month, day) for month, day in fixed})


def _calendar(value: HolidayCalendar | str) -> HolidayCalendar:
    try:
        return value if isinstance(value, HolidayCalendar) else HolidayCalendar(value)
    except ValueError:
        raise ValidationError("calendar must be FR, BE or none", field="calendar") from None


def _period_end(received_at: dt.datetime, months: int, calendar: HolidayCalendar) -> dt.datetime:
    """The last instant of the period of ``months`` from ``received_at`` (its zone)."""
    received_at = require_aware(received_at, "received_at")
    last = Period(months=months).add_to(received_at).date()
    last = calendar.next_working_day(last)
    return dt.datetime.combine(last, dt.time.max, tzinfo=received_at.tzinfo)


def first_deadline(
    received_at: dt.datetime, calendar: HolidayCalendar | str = HolidayCalendar.FR
) -> dt.datetime:
    """The end of the day one month after ``received_at``, moved past weekends and public
    holidays, in the time zone of receipt."""
    return _period_end(received_at, RESPONSE_PERIOD.months, _calendar(calendar))


def extended_deadline(
    received_at: dt.datetime, months: int, calendar: HolidayCalendar | str = HolidayCalendar.FR
) -> dt.datetime:
    """The deadline after an extension of ``months`` (1 or 2): the original period
    prolonged, so counted from the original deadline's reckoning (receipt + 1 + months)."""
    return _period_end(received_at, RESPONSE_PERIOD.months + months, _calendar(calendar))


def _months(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("Extension.months must be a whole number", field="Extension.months")
    if not 1 <= value <= MAX_EXTENSION_MONTHS:
        raise ValidationError(
            f"Extension.months must be from 1 to {MAX_EXTENSION_MONTHS} (Art. 12(3))",
            field="Extension.months",
        )


def _reasons(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            "an extension needs its reasons recorded (Art. 12(3))", field="Extension.reasons"
        )


@attrs.frozen(kw_only=True)
class Extension(JsonForm):
    """The one extension a request may get: how long, why, and when the subject was told.

    ``reasons`` are written by the controller for the subject (the complexity or the
    number of requests, Art. 12(3)); they appear in the response letter, not in the audit
    history.
    """

    months: int = attrs.field(validator=_months)
    reasons: str = attrs.field(validator=_reasons)
    decided_at: dt.datetime = attrs.field(validator=v.aware_datetime)
    subject_informed_at: dt.datetime = attrs.field(validator=v.aware_datetime)
