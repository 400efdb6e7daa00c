"""Fiscal years: where the ``FISCAL_YEAR_END`` trigger starts its clock."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

import attrs

from learnprivacy._validators import require_aware
from learnprivacy.errors import ConfigurationError, ValidationError

__all__ = ["FiscalYear"]

UTC = dt.UTC
_ONE_MICROSECOND = dt.timedelta(microseconds=1)


def _end_month(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 12:
        raise ConfigurationError("FiscalYear.end_month must be 1..12")


def _zone(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dt.tzinfo):
        raise ConfigurationError("FiscalYear.tz must be a tzinfo (e.g. datetime.UTC)")


@attrs.frozen(kw_only=True)
class FiscalYear:
    """A fiscal year closing at the end of ``end_day`` of ``end_month``, in ``tz``.

    The default is the calendar year in UTC (closing at the end of 31 December). An
    ``end_day`` beyond the month's length in a given year clamps to its last day, so
    ``FiscalYear(end_month=2, end_day=29)`` closes on 28 February in common years.

    The *close* of a fiscal year is the instant the next one starts (midnight after the
    end day, in ``tz``): French accounting documents are kept ten years from that instant.
    """

    end_month: int = attrs.field(default=12, validator=_end_month)
    end_day: int = attrs.field(default=31)
    tz: dt.tzinfo = attrs.field(default=UTC, validator=_zone)

    def __attrs_post_init__(self) -> None:
        longest = calendar.monthrange(2024, self.end_month)[1]  # 2024 is a leap year
        if isinstance(self.end_day, bool) or not isinstance(self.end_day, int):
            raise ConfigurationError("FiscalYear.end_day must be a whole number")
        if not 1 <= self.end_day <= longest:
            raise ConfigurationError(f"FiscalYear.end_day must be 1..{longest} for that month")

    def close_of(self, year: int) -> dt.datetime:
        """The UTC instant the fiscal year ending in calendar ``year`` closes."""
        day = min(self.end_day, calendar.monthrange(year, self.end_month)[1])
        try:
            end = dt.date(year, self.end_month, day) + dt.timedelta(days=1)
            return dt.datetime.combine(end, dt.time(), self.tz).astimezone(UTC)
        except OverflowError:
            raise ValidationError(
                "date out of the supported calendar range", field="fiscal_year"
            ) from None

    def _year_of(self, moment: dt.datetime) -> int:
        # The local year is a first guess; comparing instants settles the edges exactly,
        # so the result agrees with close_of whatever the zone's offsets do at midnight.
        year = moment.astimezone(self.tz).year
        while moment >= self.close_of(year):
            year += 1
        while year > dt.MINYEAR and moment < self.close_of(year - 1):
            year -= 1
        return year

    def closing(self, moment: dt.datetime) -> dt.datetime:
        """The UTC instant the fiscal year containing ``moment`` closes (always after it)."""
        require_aware(moment, "moment")
        return self.close_of(self._year_of(moment))

    def last_close_at_or_before(self, moment: dt.datetime) -> dt.datetime | None:
        """The latest fiscal-year close not after ``moment`` (``None`` before the first)."""
        require_aware(moment, "moment")
        year = self._year_of(moment) - 1
        return self.close_of(year) if year >= dt.MINYEAR else None

    def cutoff(self, close_cutoff: dt.datetime | None) -> dt.datetime | None:
        """The latest record date whose fiscal year closed at or before ``close_cutoff``.

        A record dated ``d`` belongs to a year closing at the first close after ``d``; that
        close is ``<= close_cutoff`` exactly when ``d`` is before the last close not after
        ``close_cutoff``, i.e. ``d <= that close - 1 microsecond``.
        """
        if close_cutoff is None:
            return None
        last = self.last_close_at_or_before(close_cutoff)
        if last is None:
            return None
        return last - _ONE_MICROSECOND
