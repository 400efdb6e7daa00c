"""Hypothesis strategies for retention: instants, periods, rules, schedules, holds, records."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from learnprivacy import records as rec
from learnprivacy._vocabulary import RETENTION_ACTIONS
from learnprivacy.errors import ConfigurationError
from learnprivacy.records._base import record_types
from learnprivacy.retention import (
    Action,
    FiscalYear,
    Hold,
    Period,
    RetentionMode,
    RetentionRule,
    Schedule,
    Trigger,
)

__all__ = [
    "RECORD_TYPES",
    "applicable_triggers",
    "holds",
    "instants",
    "learners",
    "learners_with_records",
    "periods",
    "record_of",
    "retention_rules",
    "schedules",
]

UTC = dt.UTC
_MICROSECOND = dt.timedelta(microseconds=1)
_ZONES = (
    UTC,
    dt.timezone(dt.timedelta(hours=1)),
    dt.timezone(dt.timedelta(hours=-5)),
    dt.timezone(dt.timedelta(hours=5, minutes=30)),
    dt.timezone(dt.timedelta(hours=14)),
)
#: The record types the strategies here know how to build: the built-in ones, in the
#: order they register (``Learner`` first).
RECORD_TYPES: tuple[type[Any], ...] = tuple(
    t for t in record_types() if t.__module__ == rec.Learner.__module__
)
_FUNDERS = st.sampled_from(rec.Funder)
_CONSENT_PURPOSES = st.sampled_from(["newsletter", "analytics-cookies"])
_WHERE: dict[type[Any], st.SearchStrategy[dict[str, Any]]] = {
    rec.Funding: _FUNDERS.map(lambda f: {"funder": f}),
    rec.Consent: _CONSENT_PURPOSES.map(lambda p: {"purpose": p}),
}


@functools.cache
def instants(min_year: int = 1995, max_year: int = 2060) -> st.SearchStrategy[dt.datetime]:
    """Timezone-aware datetimes to the microsecond, in a few fixed offsets.

    Month ends, leap days and midnights come up often, since that is where calendar
    arithmetic breaks.
    """
    plain = st.datetimes(
        min_value=dt.datetime(min_year, 1, 1),
        max_value=dt.datetime(max_year, 12, 31),
        timezones=st.sampled_from(_ZONES),
    )
    edges = st.builds(
        _month_edge,
        st.integers(min_year + 1, max_year - 1),
        st.integers(1, 12),
        st.booleans(),
        st.sampled_from(_ZONES),
    )
    leap = st.builds(
        lambda year, zone: dt.datetime(year, 2, 29, 12, tzinfo=zone),
        st.sampled_from([y for y in range(min_year, max_year + 1) if y % 4 == 0 and y != 1900]),
        st.sampled_from(_ZONES),
    )
    return st.one_of(plain, plain, edges, leap)


def _month_edge(year: int, month: int, last: bool, zone: dt.tzinfo) -> dt.datetime:
    if last:
        day = calendar.monthrange(year, month)[1]
        return dt.datetime.combine(dt.date(year, month, day), dt.time.max, zone)
    return dt.datetime(year, month, 1, tzinfo=zone)


@functools.cache
def periods(max_years: int = 12) -> st.SearchStrategy[Period]:
    """Non-negative periods mixing calendar (years, months) and day/time parts."""
    small = st.integers(0, 3) | st.just(0)
    return st.builds(
        Period,
        years=st.integers(0, max_years) | st.just(0),
        months=st.integers(0, 30) | st.just(0),
        weeks=small,
        days=st.integers(0, 45) | st.just(0),
        hours=st.integers(0, 48) | st.just(0),
        minutes=small,
        seconds=small,
    )


_TRIGGERS: dict[type[Any], tuple[Trigger, ...]] = {}


def applicable_triggers(record_type: type[Any]) -> tuple[Trigger, ...]:
    """The triggers whose date ``record_type`` (or its learner) has."""
    if record_type in _TRIGGERS:
        return _TRIGGERS[record_type]
    out = []
    for trigger in Trigger:
        try:
            RetentionRule(Period(), trigger).check_applicable(record_type)
        except ConfigurationError:
            continue
        out.append(trigger)
    _TRIGGERS[record_type] = tuple(out)
    return _TRIGGERS[record_type]


_ACTIONS = st.sampled_from([Action.ERASE, Action.ERASE, Action.ANONYMISE, *RETENTION_ACTIONS])
_ON_MISSING = st.sampled_from([Action.REVIEW, Action.KEEP])
_MODES = st.sampled_from(RetentionMode)
_FISCAL_YEARS = st.just(FiscalYear()) | st.builds(
    FiscalYear,
    end_month=st.integers(1, 12),
    end_day=st.integers(1, 28),
    tz=st.sampled_from(_ZONES),
)


_Choices = tuple[st.SearchStrategy[Trigger], dict[Trigger, st.SearchStrategy[Trigger | None]]]
_CHOICES: dict[type[Any], _Choices] = {}


def _trigger_choices(record_type: type[Any]) -> _Choices:
    # Strategies are built once per record type: building them is what costs in hypothesis.
    if record_type not in _CHOICES:
        triggers = applicable_triggers(record_type)
        fallbacks = {
            t: st.none() | st.sampled_from([o for o in triggers if o is not t]) for t in triggers
        }
        _CHOICES[record_type] = (st.sampled_from(triggers), fallbacks)
    return _CHOICES[record_type]


@st.composite
def retention_rules(
    draw: st.DrawFn, record_type: type[Any] = rec.Learner, *, purpose: str | None = None
) -> RetentionRule:
    """Valid rules for ``record_type``: any applicable trigger, fallback, action and mode."""
    trigger_strategy, fallbacks = _trigger_choices(record_type)
    trigger = draw(trigger_strategy)
    minimum = draw(st.booleans())
    where_strategy = _WHERE.get(record_type)
    return RetentionRule(
        draw(periods()),
        trigger,
        action=draw(_ACTIONS),
        minimum=minimum,
        mode=draw(_MODES) if minimum else RetentionMode.GOVERNANCE,
        purpose=purpose,
        fallback=draw(fallbacks[trigger]),
        on_missing_anchor=draw(_ON_MISSING),
        where=draw(st.none() | where_strategy) if where_strategy is not None else None,
        fiscal_year=draw(_FISCAL_YEARS),
    )


_PURPOSES = st.lists(
    st.sampled_from(["account", "billing", "statistics", "security", "marketing"]),
    min_size=1,
    max_size=3,
    unique=True,
)


@functools.cache
def _type_choices(record_types: tuple[type[Any], ...]) -> st.SearchStrategy[list[type[Any]]]:
    return st.lists(st.sampled_from(record_types), min_size=1, unique=True)


@st.composite
def schedules(
    draw: st.DrawFn, record_types: Sequence[type[Any]] = RECORD_TYPES, max_rules: int = 3
) -> Schedule:
    """Schedules over some of ``record_types``, each with 1..max_rules purposes."""
    entries: dict[type | str, list[RetentionRule]] = {}
    for record_type in draw(_type_choices(tuple(record_types))):
        purposes = draw(_PURPOSES)[:max_rules]
        entries[record_type] = [draw(retention_rules(record_type, purpose=p)) for p in purposes]
    return Schedule(entries)


def holds(
    subject_ids: Sequence[str] = (), record_ids: Sequence[str] = ()
) -> st.SearchStrategy[Hold]:
    """Holds naming some of the given subjects, record ids and built-in record types."""
    return _holds(tuple(subject_ids), tuple(record_ids))


@functools.cache
def _holds(subject_ids: tuple[str, ...], record_ids: tuple[str, ...]) -> st.SearchStrategy[Hold]:
    maybe_subject = st.none() | st.sampled_from(subject_ids) if subject_ids else st.none()
    maybe_id = st.none() | st.sampled_from(record_ids) if record_ids else st.none()
    maybe_type = st.none() | st.sampled_from([*RECORD_TYPES, "Invoice", "Learner"])
    return st.builds(
        Hold,
        reason=st.sampled_from(["litigation file 2026-04", "tax audit", "regulator inquiry"]),
        subject=maybe_subject,
        record_type=maybe_type,
        record_id=maybe_id,
    )


_DATES = instants(1998, 2045)
_DAYS = st.integers(0, 4_000)
_MICROS = st.integers(0, 86_400 * 10**6)


def _after(draw: st.DrawFn, start: dt.datetime, *, optional: bool = True) -> dt.datetime | None:
    if optional and not draw(st.booleans()):
        return None
    return start + dt.timedelta(days=draw(_DAYS), microseconds=draw(_MICROS))


@st.composite
def learners(draw: st.DrawFn, learner_id: str = "L0") -> rec.Learner:
    """Learners whose dates matter (creation, last activity, contract end); fixed texts."""
    created = draw(_DATES)
    return rec.Learner(
        id=learner_id,
        username="learner",
        email="learner@example.org",
        given_name="Ana",
        family_name="Silva",
        created_at=created,
        last_activity_at=_after(draw, created),
        contract_end_at=_after(draw, created),
    )


@st.composite
def record_of(draw: st.DrawFn, record_type: type[Any], learner_id: str, number: int = 0) -> Any:
    """One record of a built-in ``record_type`` for ``learner_id``, with varied dates.

    Texts are fixed: retention reads dates, and cheap generation keeps properties fast.
    """
    key = f"{record_type.__name__[:3].upper()}{number}"
    if record_type is rec.Progress:
        return rec.Progress(
            id=key,
            learner_id=learner_id,
            course_id="RGPD-101",
            status=rec.ProgressStatus.PASSED,
            recorded_at=draw(_DATES),
        )
    if record_type is rec.Certificate:
        return rec.Certificate(
            id=key,
            learner_id=learner_id,
            course_id="RGPD-101",
            issued_at=draw(_DATES),
            verification_code="K7Q2M9XP",
        )
    if record_type is rec.Invoice:
        return rec.Invoice(
            id=key,
            learner_id=learner_id,
            billing_name="Ana Silva",
            billing_address="1 rue de la Paix, Paris",
            amount=Decimal("450.00"),
            issued_at=draw(_DATES),
            funder=draw(_FUNDERS),
        )
    if record_type is rec.Consent:
        given = draw(_DATES)
        return rec.Consent(
            id=key,
            learner_id=learner_id,
            purpose=draw(_CONSENT_PURPOSES),
            given_at=given,
            withdrawn_at=_after(draw, given),
            expires_at=_after(draw, given + _MICROSECOND),
        )
    if record_type is rec.Funding:
        opened = draw(_DATES)
        return rec.Funding(
            id=key,
            learner_id=learner_id,
            funder=draw(_FUNDERS),
            dossier_reference="OPCO-2024-17",
            opened_at=opened,
            closed_at=_after(draw, opened),
        )
    if record_type is rec.AccessEvent:
        return rec.AccessEvent(
            id=key, learner_id=learner_id, kind=rec.AccessKind.LOGIN, at=draw(_DATES)
        )
    raise ConfigurationError(f"no strategy for {record_type.__name__}")


@st.composite
def learners_with_records(
    draw: st.DrawFn, max_each: int = 2, learner_id: str = "L0"
) -> tuple[rec.Learner, list[Any]]:
    """A learner and up to ``max_each`` records of every other built-in type of theirs."""
    learner = draw(learners(learner_id))
    records = []
    for record_type in RECORD_TYPES[1:]:
        for number in range(draw(st.integers(0, max_each))):
            records.append(draw(record_of(record_type, learner_id, number)))
    return learner, records
