"""Response deadlines (GDPR Art. 12(3)): one calendar month, one extension of two at most."""

from __future__ import annotations

import calendar
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy.errors import PolicyError, RequestStateError, ValidationError
from learnprivacy.requests import RequestBook, RequestType, SubjectRequest
from learnprivacy.requests._deadlines import (
    Extension,
    HolidayCalendar,
    extended_deadline,
    first_deadline,
)
from tests import receive_request

UTC = dt.UTC
#: Where a clamped month end lands (see Period.add_to).
END_OF_DAY = (23, 59, 59, 999_999)
PARIS_WINTER = dt.timezone(dt.timedelta(hours=1))


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # 29 February 2024 is a Thursday: the clamped month end, at the end of the day.
        (
            dt.datetime(2024, 1, 31, 9, tzinfo=UTC),
            dt.datetime(2024, 2, 29, *END_OF_DAY, tzinfo=UTC),
        ),
        # 28 February 2026 is a Saturday: the next working day, Monday 2 March.
        (
            dt.datetime(2026, 1, 31, 9, tzinfo=UTC),
            dt.datetime(2026, 3, 2, *END_OF_DAY, tzinfo=UTC),
        ),
        (
            dt.datetime(2026, 3, 31, 9, tzinfo=UTC),
            dt.datetime(2026, 4, 30, *END_OF_DAY, tzinfo=UTC),
        ),
        # 31 January 2027 is a Sunday.
        (
            dt.datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
            dt.datetime(2027, 2, 1, *END_OF_DAY, tzinfo=UTC),
        ),
        # 15 March 2026 is a Sunday; the zone of receipt is kept.
        (
            dt.datetime(2026, 2, 15, 8, tzinfo=PARIS_WINTER),
            dt.datetime(2026, 3, 16, *END_OF_DAY, tzinfo=PARIS_WINTER),
        ),
        # 14 May 2026 is Ascension Thursday, a public holiday in France and Belgium.
        (
            dt.datetime(2026, 4, 14, 9, tzinfo=UTC),
            dt.datetime(2026, 5, 15, *END_OF_DAY, tzinfo=UTC),
        ),
    ],
)
def test_first_deadline_is_one_calendar_month(received: dt.datetime, due: dt.datetime) -> None:
    """Due at the end of the day one month later, same zone; a day a shorter month lacks
    ends on its last day; a weekend or a public holiday moves it to the next working day
    (Regulation 1182/71 Art. 3(2)(c) and 3(4))."""
    assert first_deadline(received) == due
    assert first_deadline(received).utcoffset() == received.utcoffset()


def test_national_holidays_differ_between_france_and_belgium() -> None:
    """14 July is a holiday in France only, 21 July in Belgium only."""
    bastille = dt.datetime(2026, 6, 14, 9, tzinfo=UTC)
    national = dt.datetime(2026, 6, 21, 9, tzinfo=UTC)
    assert first_deadline(bastille, HolidayCalendar.FR).date() == dt.date(2026, 7, 15)
    assert first_deadline(bastille, HolidayCalendar.BE).date() == dt.date(2026, 7, 14)
    assert first_deadline(national, HolidayCalendar.FR).date() == dt.date(2026, 7, 21)
    assert first_deadline(national, HolidayCalendar.BE).date() == dt.date(2026, 7, 22)
    assert first_deadline(bastille, "none").date() == dt.date(2026, 7, 14)
    assert dt.date(2026, 4, 6) in HolidayCalendar.FR.holidays(2026)  # Easter Monday
    assert dt.date(2026, 5, 25) in HolidayCalendar.BE.holidays(2026)  # Whit Monday
    with pytest.raises(ValidationError):
        first_deadline(bastille, "DE")


def test_extension_counts_from_the_first_deadline() -> None:
    """Jan 31 + 1 + 2 months: the original period prolonged ends Apr 30 (the old code said
    Apr 29, extending the clamped Feb 29); + 1 month lands on Easter Sunday 2024, then
    Easter Monday: Tuesday 2 April."""
    received = dt.datetime(2024, 1, 31, 9, tzinfo=UTC)
    assert extended_deadline(received, 2) == dt.datetime(2024, 4, 30, *END_OF_DAY, tzinfo=UTC)
    assert extended_deadline(received, 1) == dt.datetime(2024, 4, 2, *END_OF_DAY, tzinfo=UTC)


def test_naive_receipt_is_refused() -> None:
    """A naive datetime is ambiguous: ValidationError."""
    with pytest.raises(ValidationError):
        first_deadline(dt.datetime(2026, 1, 1))


@settings(max_examples=300)
@given(
    received=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2090, 12, 31),
        timezones=st.just(UTC),
    ),
    months=st.integers(1, 2),
)
def test_deadline_properties(received: dt.datetime, months: int) -> None:
    """At the end of a working day; 28 to 35 days (a clamped month end rolled over a long
    weekend); on the same date or the month's last day unless moved forward; an extension
    only adds time."""
    due = first_deadline(received)
    assert due.time() == dt.time(*END_OF_DAY)
    assert HolidayCalendar.FR.is_working_day(due.date())
    assert dt.timedelta(days=28) <= due - received <= dt.timedelta(days=35)
    month = received.month % 12 + 1
    year = received.year + (received.month == 12)
    last_day = calendar.monthrange(year, month)[1]
    plain = dt.date(year, month, min(received.day, last_day))
    assert plain <= due.date() <= plain + dt.timedelta(days=4)
    extended = extended_deadline(received, months)
    assert extended > due
    assert extended <= extended_deadline(received, 2)
    assert extended - due <= dt.timedelta(days=66)


# -- extensions on requests --------------------------------------------------------------

T0 = dt.datetime(2026, 1, 31, 9, tzinfo=UTC)


def received(book: RequestBook) -> SubjectRequest:
    """An access request received at T0 (due 28 February)."""
    return receive_request(book, RequestType.ACCESS, received_at=T0)


def test_extension_before_the_deadline_moves_it() -> None:
    """Recorded before the first deadline, with reasons and the date the subject was told."""
    book = RequestBook()
    request = received(book)
    decided = dt.datetime(2026, 2, 27, 17, tzinfo=UTC)
    extended = book.extend(
        request,
        months=2,
        reasons="Data spread over five systems.",
        subject_informed_at=decided,
        now=decided,
    )
    # 28 February 2026 is a Saturday: the first deadline is Monday 2 March; the extension
    # prolongs the original period: three months from 31 January end on 30 April.
    assert extended.first_due_at == dt.datetime(2026, 3, 2, *END_OF_DAY, tzinfo=UTC)
    assert extended.due_at == dt.datetime(2026, 4, 30, *END_OF_DAY, tzinfo=UTC)
    assert extended.extension == Extension(
        months=2,
        reasons="Data spread over five systems.",
        decided_at=decided,
        subject_informed_at=decided,
    )
    entry = book.history(request)[-1]
    assert entry.event == "extended"
    assert entry.detail == {"months": "2", "due_at": "2026-04-30T23:59:59.999999+00:00"}
    assert "five systems" not in str(entry.to_dict())


def test_extension_at_or_after_the_deadline_is_refused() -> None:
    """At the first deadline itself it is too late."""
    book = RequestBook()
    request = received(book)
    due = request.first_due_at
    with pytest.raises(PolicyError):
        book.extend(request, months=1, reasons="Late.", subject_informed_at=T0, now=due)
    assert book.get(request).extension is None


@pytest.mark.parametrize("months", [0, 3, -1])
def test_extension_is_one_or_two_months(months: int) -> None:
    """Zero, negative or more than two months: ValidationError."""
    book = RequestBook()
    with pytest.raises(ValidationError):
        book.extend(received(book), months=months, reasons="r", subject_informed_at=T0, now=T0)


def test_extension_needs_reasons_and_the_subject_told_in_time() -> None:
    """No reasons, or the subject told before receipt or in the future: refused."""
    book = RequestBook()
    request = received(book)
    now = T0 + dt.timedelta(days=5)
    with pytest.raises(ValidationError):
        book.extend(request, months=1, reasons="  ", subject_informed_at=now, now=now)
    with pytest.raises(PolicyError):
        book.extend(
            request,
            months=1,
            reasons="r",
            subject_informed_at=T0 - dt.timedelta(days=1),
            now=now,
        )
    with pytest.raises(PolicyError):
        book.extend(
            request,
            months=1,
            reasons="r",
            subject_informed_at=now + dt.timedelta(days=1),
            now=now,
        )
    assert book.get(request).version == 1


def test_only_one_extension() -> None:
    """The same extension again is a no-op; any other second extension is refused."""
    book = RequestBook()
    request = received(book)
    once = book.extend(request, months=1, reasons="r", subject_informed_at=T0, now=T0)
    assert book.extend(request, months=1, reasons="r", subject_informed_at=T0, now=T0) == once
    with pytest.raises(RequestStateError):
        book.extend(request, months=2, reasons="more", subject_informed_at=T0, now=T0)
    assert book.get(request).due_at == once.due_at


def test_overdue_boundary() -> None:
    """On time at the deadline instant itself, late one microsecond after."""
    book = RequestBook()
    request = received(book)
    assert book.overdue(request.due_at) == ()
    assert book.overdue(request.due_at + dt.timedelta(microseconds=1)) == (request,)
    assert request.is_overdue(request.due_at + dt.timedelta(microseconds=1))
