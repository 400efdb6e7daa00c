"""ISO 8601 durations with calendar-correct arithmetic, as Moodle's data registry stores them.

A :class:`Period` has a calendar part (years, months), a day part (weeks, days) and a time
part (hours, minutes, seconds). :meth:`Period.add_to` applies them in that order:

1. years and months move the date on the calendar and clamp the day to the end of the
   month (2024-01-31 + P1M = 2024-02-29; 2024-02-29 + P1Y = 2025-02-28);
2. weeks and days move the date by whole calendar days, keeping the wall-clock time;
3. hours, minutes and seconds are elapsed time.

:meth:`Period.cutoff` is the exact inverse used for set-based sweeps: for an anchor ``a``
expressed in UTC, ``a <= period.cutoff(now)`` if and only if ``period.add_to(a) <= now``.
Month arithmetic with clamping is not invertible by subtracting months (2024-03-30 - P1M is
2024-02-29, yet 2024-02-29 + P1M = 2024-03-29), so the cutoff is computed from the shape of
the clamping instead.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any

import attrs

from learnprivacy._validators import require_aware
from learnprivacy.errors import ValidationError

__all__ = ["Period", "add_months"]

UTC = dt.UTC

_PATTERN = re.compile(
    r"P(?:(?P<years>[0-9]{1,9})Y)?(?:(?P<months>[0-9]{1,9})M)?(?:(?P<weeks>[0-9]{1,9})W)?"
    r"(?:(?P<days>[0-9]{1,9})D)?"
    r"(?:T(?:(?P<hours>[0-9]{1,12})H)?(?:(?P<minutes>[0-9]{1,12})M)?(?:(?P<seconds>[0-9]{1,15})S)?)?"
)
_DATE_UNITS = (("years", "Y"), ("months", "M"), ("weeks", "W"), ("days", "D"))
_TIME_UNITS = (("hours", "H"), ("minutes", "M"), ("seconds", "S"))

# Bounds keep every component inside what a datetime can move by (years 1..9999), so a
# parsed period never fails for its own size, only for the date it is added to.
_MAX_MONTHS = 12 * 10_000
_MAX_DAYS = 3_660_000
_MAX_SECONDS = _MAX_DAYS * 86_400
_LAST_MICROSECOND = dt.time(23, 59, 59, 999_999)


def _component(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"Period.{attribute.name} must be a whole number, got {type(value).__name__}",
            field=f"Period.{attribute.name}",
        )
    if value < 0:
        raise ValidationError(
            f"Period.{attribute.name} must not be negative", field=f"Period.{attribute.name}"
        )


def _days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """``moment`` moved by ``months`` on the calendar (may be negative), day clamped.

    A day the target month lacks (Jan 31 + 1 month, Feb 29 + 1 year) clamps to the end of
    the month's last day, 23:59:59.999999. Keeping the time of day instead would let a
    later anchor end earlier (Feb 29 12:00 + 1 year before Feb 28 22:00 + 1 year), so new
    activity could bring erasure forward and no exact cutoff would exist; the end of the
    clamped day keeps the date the calendar rule gives and keeps the order of anchors.

    Raises ``ValidationError`` when the result falls outside years 1..9999.
    """
    years, month0 = divmod(moment.month - 1 + months, 12)
    year = moment.year + years
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        raise ValidationError("date out of the supported calendar range", field="period")
    month = month0 + 1
    last = _days_in_month(year, month)
    if moment.day > last:
        return moment.replace(
            year=year, month=month, day=last, hour=23, minute=59, second=59, microsecond=999_999
        )
    return moment.replace(year=year, month=month)


@attrs.frozen(kw_only=True, repr=False)
class Period:
    """A non-negative ISO 8601 duration: ``P18M``, ``P5Y``, ``P1Y6M``, ``P2W``, ``PT12H``.

    Build one with :meth:`parse` or with keywords (``Period(months=18)``). ``str()`` gives
    the canonical ISO form, and ``Period.parse(str(p)) == p``; canonical strings (no zero
    component, units in ISO order, ``PT0S`` for zero) round-trip exactly. Equality compares
    the written components: ``P1Y`` and ``P12M`` add the same time but are written differently.

    >>> str(Period.parse("P18M"))
    'P18M'
    >>> import datetime as dt
    >>> Period.parse("P1M").add_to(dt.datetime(2024, 1, 31, tzinfo=dt.UTC)).date()
    datetime.date(2024, 2, 29)
    """

    years: int = attrs.field(default=0, validator=_component)
    months: int = attrs.field(default=0, validator=_component)
    weeks: int = attrs.field(default=0, validator=_component)
    days: int = attrs.field(default=0, validator=_component)
    hours: int = attrs.field(default=0, validator=_component)
    minutes: int = attrs.field(default=0, validator=_component)
    seconds: int = attrs.field(default=0, validator=_component)

    def __attrs_post_init__(self) -> None:
        if self.total_months > _MAX_MONTHS:
            raise ValidationError(
                "Period is longer than the calendar allows", field="Period.months"
            )
        if self.total_days > _MAX_DAYS:
            raise ValidationError("Period is longer than the calendar allows", field="Period.days")
        if self.total_seconds > _MAX_SECONDS:
            raise ValidationError(
                "Period is longer than the calendar allows", field="Period.seconds"
            )

    @classmethod
    def parse(cls, text: str) -> Period:
        """Parse an ISO 8601 duration (``PnYnMnWnDTnHnMnS``, whole numbers only).

        Negative, fractional, empty (``P``, ``PT``) or malformed input raises
        ``ValidationError``.
        """
        match = _PATTERN.fullmatch(text) if isinstance(text, str) else None
        if match is None or not any(match.groupdict().values()) or text.endswith("T"):
            raise ValidationError(
                "not a non-negative whole ISO 8601 duration such as P18M, P1Y6M or P30D",
                field="period",
            )
        values = {name: int(v) for name, v in match.groupdict().items() if v is not None}
        return cls(**values)

    @classmethod
    def from_timedelta(cls, value: dt.timedelta) -> Period:
        """The period of a non-negative whole-second ``timedelta``, in days and time."""
        if not isinstance(value, dt.timedelta):
            raise ValidationError("expected a timedelta", field="period")
        if value < dt.timedelta(0) or value.microseconds:
            raise ValidationError(
                "a period must be a non-negative whole number of seconds", field="period"
            )
        hours, rest = divmod(value.seconds, 3_600)
        minutes, seconds = divmod(rest, 60)
        return cls(days=value.days, hours=hours, minutes=minutes, seconds=seconds)

    @property
    def total_months(self) -> int:
        """The calendar part in months (``years * 12 + months``)."""
        return self.years * 12 + self.months

    @property
    def total_days(self) -> int:
        """The day part in days (``weeks * 7 + days``)."""
        return self.weeks * 7 + self.days

    @property
    def total_seconds(self) -> int:
        """The time part in seconds."""
        return self.hours * 3_600 + self.minutes * 60 + self.seconds

    @property
    def is_zero(self) -> bool:
        """Whether the period adds nothing (``PT0S``)."""
        return not (self.total_months or self.total_days or self.total_seconds)

    def __str__(self) -> str:
        date = "".join(f"{getattr(self, n)}{u}" for n, u in _DATE_UNITS if getattr(self, n))
        time = "".join(f"{getattr(self, n)}{u}" for n, u in _TIME_UNITS if getattr(self, n))
        if not date and not time:
            return "PT0S"
        return "P" + date + ("T" + time if time else "")

    def __repr__(self) -> str:
        return f"Period({str(self)!r})"

    def add_to(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` plus this period, calendar-correct, in ``moment``'s own time zone.

        Months and years clamp the day to the end of the month; days keep the wall-clock
        time; hours, minutes and seconds are elapsed time. Naive datetimes and results
        outside years 1..9999 raise ``ValidationError``.
        """
        require_aware(moment, "moment")
        result = moment
        try:
            if self.total_months:
                result = add_months(result, self.total_months)
            if self.total_days:
                result = result + dt.timedelta(days=self.total_days)
            if self.total_seconds:
                zone = result.tzinfo
                shifted = result.astimezone(UTC) + dt.timedelta(seconds=self.total_seconds)
                result = shifted.astimezone(zone)
        except OverflowError:
            raise ValidationError(
                "date out of the supported calendar range", field="period"
            ) from None
        return result

    def cutoff(self, now: dt.datetime) -> dt.datetime | None:
        """The latest anchor whose period has ended at ``now``, in UTC.

        For every anchor ``a``: ``a <= period.cutoff(now)`` if and only if
        ``period.add_to(a.astimezone(UTC)) <= now``. ``None`` means no representable anchor
        has ended yet. This is what a store compares a date column with.
        """
        require_aware(now, "now")
        try:
            target = now.astimezone(UTC) - dt.timedelta(
                days=self.total_days, seconds=self.total_seconds
            )
        except OverflowError:
            return None
        if not self.total_months:
            return target
        return _latest_source(target, self.total_months)


def _latest_source(target: dt.datetime, months: int) -> dt.datetime | None:
    """The latest UTC instant ``a`` with ``add_months(a, months) <= target``.

    Every anchor in an earlier month than ``target``'s month minus ``months`` lands in an
    earlier month than ``target``, every anchor in a later one lands after it, so the answer
    lies in that source month. Inside it, ``add_months`` keeps the day and time but clamps
    the day to the target month's length; the three cases below follow from that.
    """
    years, month0 = divmod(target.month - 1 - months, 12)
    year = target.year + years
    if year < dt.MINYEAR:
        return None
    month = month0 + 1
    source_days = _days_in_month(year, month)
    target_days = _days_in_month(target.year, target.month)
    day = target.day
    if day > source_days:
        # Every anchor of the (shorter) source month lands on or before target's day.
        return dt.datetime.combine(dt.date(year, month, source_days), _LAST_MICROSECOND, UTC)
    time = target.timetz()
    if day == target_days and source_days > day and target.time() == _LAST_MICROSECOND:
        # Source days past the target month's end clamp to its last microsecond, which
        # has passed only when target is that very microsecond: then the whole source
        # month qualifies.
        return dt.datetime.combine(dt.date(year, month, source_days), _LAST_MICROSECOND, UTC)
    # Otherwise anchors land on their own day and time (clamped ones land after target),
    # so the latest qualifying anchor is target's day and time in the source month.
    return dt.datetime.combine(dt.date(year, month, day), time)
