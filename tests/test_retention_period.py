"""Period: ISO 8601 parsing, calendar arithmetic, and the exact cutoff used by sweeps."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.retention import FiscalYear, Period
from learnprivacy.testing._retention_strategies import instants, periods

UTC = dt.UTC
MICRO = dt.timedelta(microseconds=1)


def at(*args: int, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P18M", Period(months=18)),
        ("P5Y", Period(years=5)),
        ("P1Y6M", Period(years=1, months=6)),
        ("P30D", Period(days=30)),
        ("P2W", Period(weeks=2)),
        ("PT12H", Period(hours=12)),
        (
            "P1Y2M3W4DT5H6M7S",
            Period(years=1, months=2, weeks=3, days=4, hours=5, minutes=6, seconds=7),
        ),
        ("P120M", Period(months=120)),
        ("P0D", Period()),
        ("P0Y0M0DT0H0M0S", Period()),
        ("P1Y0M0D", Period(years=1)),
    ],
)
def test_parse_moodle_style_durations(text: str, expected: Period) -> None:
    """The ISO 8601 forms Moodle's data registry stores parse to their components."""
    assert Period.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["P18M", "P5Y", "P1Y6M", "P30D", "P2W", "PT12H", "P1Y2M3W4DT5H6M7S", "PT0S", "P1DT1S"],
)
def test_canonical_strings_round_trip(text: str) -> None:
    """str() of a parsed canonical duration gives back the same text."""
    assert str(Period.parse(text)) == text
    assert repr(Period.parse(text)) == f"Period({text!r})"


@given(periods())
def test_str_parses_back_to_an_equal_period(period: Period) -> None:
    """Period.parse(str(p)) == p for every period."""
    assert Period.parse(str(period)) == period


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P",
        "PT",
        "P1YT",
        "-P1Y",
        "P-1Y",
        "P1.5Y",
        "P0,5M",
        "PT1.5S",
        "1Y",
        "P1M1Y",
        "p1y",
        " P1Y",
        "P1Y ",
        "P١Y",  # an Arabic-Indic digit: only ASCII digits are ISO 8601
        "P99999999Y",
        "PT1H2D",
    ],
)
def test_malformed_negative_fractional_or_empty_is_refused(text: str) -> None:
    """Anything but a non-negative whole ISO 8601 duration raises ValidationError."""
    with pytest.raises(ValidationError) as info:
        Period.parse(text)
    assert info.value.field == "period" or (info.value.field or "").startswith("Period.")


def test_non_string_and_bad_components_are_refused() -> None:
    """parse() wants text; keywords want non-negative whole numbers."""
    with pytest.raises(ValidationError):
        Period.parse(18)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Period(months=-1)
    with pytest.raises(ValidationError):
        Period(months=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Period(days=True)  # type: ignore[arg-type]


def test_leap_year_month_end_clamping() -> None:
    """Jan 31 + P1M = Feb 29 in a leap year; Feb 29 + P1Y = Feb 28; month ends clamp.

    A clamped day ends at the last microsecond of the month's last day (see
    ``test_clamping_keeps_later_anchors_later``); unclamped days keep their time.
    """
    end = (23, 59, 59, 999_999)
    assert Period.parse("P1M").add_to(at(2024, 1, 31)) == at(2024, 2, 29, *end)
    assert Period.parse("P1M").add_to(at(2023, 1, 31)) == at(2023, 2, 28, *end)
    assert Period.parse("P1Y").add_to(at(2024, 2, 29)) == at(2025, 2, 28, *end)
    assert Period.parse("P4Y").add_to(at(2024, 2, 29)) == at(2028, 2, 29)
    assert Period.parse("P12M").add_to(at(2024, 2, 29)) == at(2025, 2, 28, *end)
    assert Period.parse("P1M").add_to(at(2024, 3, 31, 23, 59)) == at(2024, 4, 30, *end)
    assert Period.parse("P18M").add_to(at(2024, 8, 31)) == at(2026, 2, 28, *end)
    assert Period.parse("P6M").add_to(at(2023, 8, 31)) == at(2024, 2, 29, *end)
    assert Period.parse("P1M").add_to(at(2024, 1, 29, 10)) == at(2024, 2, 29, 10)
    for result in (
        Period.parse("P1M").add_to(at(2024, 1, 31)),
        Period.parse("P1Y").add_to(at(2024, 2, 29)),
    ):
        assert result.day in (28, 29)


def test_clamping_keeps_later_anchors_later() -> None:
    """Feb 29 12:00 + P1Y must not end before Feb 28 22:00 + P1Y (hypothesis found it).

    Keeping the time of day on a clamped date would end the later anchor ten hours
    earlier: new activity would bring erasure forward and no exact SQL cutoff would exist.
    """
    year = Period.parse("P1Y")
    earlier, later = at(2024, 2, 28, 22), at(2024, 2, 29, 12)
    assert year.add_to(earlier) <= year.add_to(later)


def test_add_applies_months_then_days_then_time() -> None:
    """P1M1D from Jan 31 clamps first (end of Feb 29) then adds the day (Mar 1)."""
    assert Period.parse("P1M1D").add_to(at(2024, 1, 31)) == at(2024, 3, 1, 23, 59, 59, 999_999)
    assert Period.parse("P2W").add_to(at(2024, 2, 20)) == at(2024, 3, 5)
    assert Period.parse("PT36H").add_to(at(2024, 2, 28, 12)) == at(2024, 3, 1)


def test_add_keeps_the_time_zone_and_wall_clock_for_calendar_parts() -> None:
    """Months and days move the wall clock; hours are elapsed time, across DST too."""
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    start = dt.datetime(2024, 3, 30, 12, tzinfo=paris)  # the day before DST starts
    assert Period.parse("P1D").add_to(start) == dt.datetime(2024, 3, 31, 12, tzinfo=paris)
    assert Period.parse("PT24H").add_to(start) == dt.datetime(2024, 3, 31, 13, tzinfo=paris)
    assert Period.parse("P1M").add_to(start).tzinfo is paris
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert Period.parse("P1M").add_to(at(2024, 1, 29, 23, tz=plus_two)) == at(
        2024, 2, 29, 23, tz=plus_two
    )
    assert Period.parse("P1M").add_to(at(2024, 1, 31, 23, tz=plus_two)) == at(
        2024, 2, 29, 23, 59, 59, 999_999, tz=plus_two
    )


def test_add_refuses_naive_datetimes_and_calendar_overflow() -> None:
    """A naive datetime or a result past year 9999 raises ValidationError."""
    with pytest.raises(ValidationError):
        Period.parse("P1M").add_to(dt.datetime(2024, 1, 31))
    with pytest.raises(ValidationError):
        Period.parse("P10Y").add_to(at(9995, 1, 1))
    with pytest.raises(ValidationError):
        Period.parse("P30D").add_to(at(9999, 12, 15))


def test_from_timedelta_and_totals() -> None:
    """A whole-second timedelta becomes days and time; totals add the parts up."""
    period = Period.from_timedelta(dt.timedelta(days=3, hours=4, seconds=5))
    assert str(period) == "P3DT4H5S"
    assert Period.from_timedelta(dt.timedelta(0)).is_zero
    full = Period.parse("P1Y2M1W3DT1H1M1S")
    assert (full.total_months, full.total_days, full.total_seconds) == (14, 10, 3661)
    with pytest.raises(ValidationError):
        Period.from_timedelta(dt.timedelta(seconds=-1))
    with pytest.raises(ValidationError):
        Period.from_timedelta(dt.timedelta(microseconds=5))


def test_cutoff_where_naive_month_subtraction_is_wrong() -> None:
    """Mar 30 - P1M is Feb 29, yet every anchor through Feb 29 (whole day) has ended.

    Subtracting months would give 2024-02-29T00:00, missing anchors later that day, and for
    Mar 31 it would miss Feb 29 altogether if it clamped the other way.
    """
    month = Period.parse("P1M")
    assert month.cutoff(at(2024, 3, 30)) == at(2024, 2, 29, 23, 59, 59, 999_999)
    assert month.cutoff(at(2024, 3, 29, 8)) == at(2024, 2, 29, 8)
    # Jan 30 and 31 clamp to the end of Feb 29, so at Feb 29 08:00 only Jan 29 08:00 and
    # earlier have ended; at the last microsecond of Feb 29 the whole of January has.
    assert month.cutoff(at(2024, 2, 29, 8)) == at(2024, 1, 29, 8)
    assert month.cutoff(at(2024, 2, 29, 23, 59, 59, 999_999)) == at(
        2024, 1, 31, 23, 59, 59, 999_999
    )
    assert month.cutoff(at(2024, 2, 28, 8)) == at(2024, 1, 28, 8)
    assert month.add_to(at(2024, 1, 29, 8)) == at(2024, 2, 29, 8)
    assert month.add_to(at(2024, 1, 29, 8) + MICRO) > at(2024, 2, 29, 8)
    assert Period.parse("PT0S").cutoff(at(2024, 5, 1)) == at(2024, 5, 1)
    assert Period.parse("P1Y").cutoff(at(1, 6, 1)) is None


@settings(max_examples=400)
@given(periods(), instants(), instants())
def test_cutoff_is_exact(period: Period, anchor: dt.datetime, now: dt.datetime) -> None:
    """anchor <= cutoff(now) iff add_to(anchor in UTC) <= now, for every anchor and now."""
    cutoff = period.cutoff(now)
    ended = period.add_to(anchor.astimezone(UTC)) <= now
    assert (cutoff is not None and anchor <= cutoff) == ended


@settings(max_examples=300)
@given(periods(), instants())
def test_cutoff_is_the_latest_ended_anchor(period: Period, now: dt.datetime) -> None:
    """The cutoff itself has ended, one microsecond later has not."""
    cutoff = period.cutoff(now)
    assert cutoff is not None
    assert period.add_to(cutoff) <= now
    assert period.add_to(cutoff + MICRO) > now


@given(periods(), instants(), instants())
def test_add_to_is_monotonic_in_utc(period: Period, a: dt.datetime, b: dt.datetime) -> None:
    """Later anchors never end earlier (what makes a cutoff possible at all)."""
    first, second = sorted((a.astimezone(UTC), b.astimezone(UTC)))
    assert period.add_to(first) <= period.add_to(second)


def test_fiscal_year_close() -> None:
    """A fiscal year closes at midnight after its end day, in its own time zone."""
    calendar_year = FiscalYear()
    assert calendar_year.closing(at(2024, 6, 1)) == at(2025, 1, 1)
    assert calendar_year.closing(at(2024, 12, 31, 23, 59, 59, 999_999)) == at(2025, 1, 1)
    assert calendar_year.closing(at(2025, 1, 1)) == at(2026, 1, 1)
    june = FiscalYear(end_month=6, end_day=30)
    assert june.closing(at(2024, 6, 30, 12)) == at(2024, 7, 1)
    assert june.closing(at(2024, 7, 1)) == at(2025, 7, 1)
    february = FiscalYear(end_month=2, end_day=29)
    assert february.closing(at(2024, 2, 29, 12)) == at(2024, 3, 1)
    assert february.closing(at(2023, 2, 28, 12)) == at(2023, 3, 1)
    paris = FiscalYear(tz=zoneinfo.ZoneInfo("Europe/Paris"))
    # 00:30 on 1 January in Paris is still 31 December in UTC, but a new fiscal year.
    new_year = dt.datetime(2025, 1, 1, 0, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    assert paris.closing(new_year) == at(2025, 12, 31, 23)
    assert paris.last_close_at_or_before(new_year) == at(2024, 12, 31, 23)


def test_fiscal_year_is_validated() -> None:
    """End month 1..12, end day within the month (29 allowed in February), a real tzinfo."""
    for bad in (
        {"end_month": 13},
        {"end_month": 4, "end_day": 31},
        {"end_month": 2, "end_day": 30},
        {"end_day": 0},
        {"tz": "Europe/Paris"},
    ):
        with pytest.raises(ConfigurationError):
            FiscalYear(**bad)  # type: ignore[arg-type]


@settings(max_examples=300)
@given(
    st.builds(
        FiscalYear,
        end_month=st.integers(1, 12),
        end_day=st.integers(1, 28),
        tz=st.sampled_from(
            [UTC, dt.timezone(dt.timedelta(hours=-3)), zoneinfo.ZoneInfo("Europe/Paris")]
        ),
    ),
    instants(),
    instants(),
)
def test_fiscal_cutoff_is_exact(
    fiscal: FiscalYear, record_date: dt.datetime, close: dt.datetime
) -> None:
    """A record's fiscal year closed by ``close`` iff its date <= the fiscal cutoff."""
    cutoff = fiscal.cutoff(close)
    assert (cutoff is not None and record_date <= cutoff) == (fiscal.closing(record_date) <= close)
