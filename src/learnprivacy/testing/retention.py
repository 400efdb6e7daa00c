"""Property-check retention schedules: hypothesis strategies, invariants, a state machine.

Three ways to check your own schedule::

    from hypothesis import given
    from learnprivacy.testing.retention import (
        RetentionMachine, assert_schedule_invariants, instants, learners_with_records)

    @given(learners_with_records(), instants())
    def test_my_schedule(data, now):
        learner, records = data
        assert_schedule_invariants(MY_SCHEDULE, [learner, *records], now=now,
                                   subjects={learner.id: learner})

    class MyScheduleMachine(RetentionMachine):
        schedule_strategy = st.just(MY_SCHEDULE)

    TestMySchedule = MyScheduleMachine.TestCase

:func:`assert_schedule_invariants` checks, record by record: a held record is never erased
or anonymised; nothing inside a legal minimum is erased, even on request; a missing date
never erases; the boundary instant is exact; an expired record stays expired later on;
decisions are deterministic and independent of the order rules were declared in; sweeps
(:meth:`Schedule.plan`) agree with :meth:`Schedule.evaluate`; cutoffs agree with due dates.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import attrs
from hypothesis import stateful
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant

from learnprivacy.errors import ConfigurationError
from learnprivacy.records import (
    AccessEvent,
    AccessKind,
    Certificate,
    Consent,
    Funder,
    Funding,
    Invoice,
    Learner,
    Progress,
    ProgressStatus,
)
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
from learnprivacy.testing.strategies import aware_datetimes

__all__ = [
    "RetentionMachine",
    "applicable_triggers",
    "assert_schedule_invariants",
    "aware_datetimes",
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
#: The record types the strategies here know how to build.
RECORD_TYPES: tuple[type[Any], ...] = (
    Learner,
    Progress,
    Certificate,
    Invoice,
    Consent,
    Funding,
    AccessEvent,
)
_FUNDERS = st.sampled_from(Funder)
_CONSENT_PURPOSES = st.sampled_from(["newsletter", "analytics-cookies"])
_WHERE: dict[type[Any], st.SearchStrategy[dict[str, Any]]] = {
    Funding: _FUNDERS.map(lambda f: {"funder": f}),
    Consent: _CONSENT_PURPOSES.map(lambda p: {"purpose": p}),
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


_ACTIONS = st.sampled_from([Action.ERASE, Action.ERASE, Action.ANONYMISE, *Action])
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
    draw: st.DrawFn, record_type: type[Any] = Learner, *, purpose: str | None = None
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
def learners(draw: st.DrawFn, learner_id: str = "L0") -> Learner:
    """Learners whose dates matter (creation, last activity, contract end); fixed texts."""
    created = draw(_DATES)
    return Learner(
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
    if record_type is Progress:
        return Progress(
            id=key,
            learner_id=learner_id,
            course_id="RGPD-101",
            status=ProgressStatus.PASSED,
            recorded_at=draw(_DATES),
        )
    if record_type is Certificate:
        return Certificate(
            id=key,
            learner_id=learner_id,
            course_id="RGPD-101",
            issued_at=draw(_DATES),
            verification_code="K7Q2M9XP",
        )
    if record_type is Invoice:
        return Invoice(
            id=key,
            learner_id=learner_id,
            billing_name="Ana Silva",
            billing_address="1 rue de la Paix, Paris",
            amount=Decimal("450.00"),
            issued_at=draw(_DATES),
            funder=draw(_FUNDERS),
        )
    if record_type is Consent:
        given = draw(_DATES)
        return Consent(
            id=key,
            learner_id=learner_id,
            purpose=draw(_CONSENT_PURPOSES),
            given_at=given,
            withdrawn_at=_after(draw, given),
            expires_at=_after(draw, given + _MICROSECOND),
        )
    if record_type is Funding:
        opened = draw(_DATES)
        return Funding(
            id=key,
            learner_id=learner_id,
            funder=draw(_FUNDERS),
            dossier_reference="OPCO-2024-17",
            opened_at=opened,
            closed_at=_after(draw, opened),
        )
    if record_type is AccessEvent:
        return AccessEvent(id=key, learner_id=learner_id, kind=AccessKind.LOGIN, at=draw(_DATES))
    raise ConfigurationError(f"no strategy for {record_type.__name__}")


@st.composite
def learners_with_records(
    draw: st.DrawFn, max_each: int = 2, learner_id: str = "L0"
) -> tuple[Learner, list[Any]]:
    """A learner and up to ``max_each`` records of every other built-in type of theirs."""
    learner = draw(learners(learner_id))
    records = []
    for record_type in RECORD_TYPES[1:]:
        for number in range(draw(st.integers(0, max_each))):
            records.append(draw(record_of(record_type, learner_id, number)))
    return learner, records


def _check(condition: bool, message: str) -> None:
    # An explicit raise, not assert: the checks must hold under ``python -O`` too.
    if not condition:
        raise AssertionError(message)


def _later(moment: dt.datetime, days: int) -> dt.datetime | None:
    try:
        return moment + dt.timedelta(days=days)
    except OverflowError:
        return None


def _subject(record: Any, subjects: Mapping[str, Any]) -> Any:
    if not hasattr(record, "learner_id"):
        return record
    return subjects.get(record.learner_id)


def assert_schedule_invariants(
    schedule: Schedule,
    records: Iterable[Any],
    *,
    now: dt.datetime,
    subjects: Mapping[str, Any] | None = None,
    holds: Iterable[Hold] = (),
) -> None:
    """Check the retention invariants for every record at ``now``; raise ``AssertionError``.

    Messages name the record type, the rule and the invariant, never a personal value.
    """
    records = list(records)
    subjects = dict(subjects or {})
    holds = tuple(holds)
    reordered = Schedule({k: list(reversed(v)) for k, v in schedule.entries.items()})
    planned = schedule.plan(records, now=now, subjects=subjects, holds=holds).grouped()
    by_plan = {id(r): action for action, group in planned.items() for r in group}
    for record in records:
        _check_record(schedule, reordered, record, now, _subject(record, subjects), holds)
        decision = schedule.evaluate(
            record, now=now, subject=_subject(record, subjects), holds=holds
        )
        kind = type(record).__name__
        _check(by_plan[id(record)] is decision.action, f"{kind}: plan disagrees with evaluate")


def _check_record(
    schedule: Schedule,
    reordered: Schedule,
    record: Any,
    now: dt.datetime,
    subject: Any,
    holds: tuple[Hold, ...],
) -> None:
    kind = type(record).__name__

    def evaluate(at: dt.datetime, *, request: bool = False, held: bool = True) -> Any:
        return schedule.evaluate(
            record, now=at, subject=subject, holds=holds if held else (), erasure_requested=request
        )

    decision = evaluate(now)
    request = evaluate(now, request=True)
    if any(h.matches(record) for h in holds):
        _check(not decision.destructive, f"{kind}: a held record would be erased")
        _check(not request.destructive, f"{kind}: a held record would be erased on request")
    _check(decision == evaluate(now), f"{kind}: evaluation is not deterministic")
    _check(
        decision == reordered.evaluate(record, now=now, subject=subject, holds=holds),
        f"{kind}: decision depends on the order of the rules",
    )
    rules = schedule.applicable_rules(record)
    for rule in rules:
        due = rule.due_at(record, subject)
        if rule.minimum and (due is None or now < due):
            _check(
                not request.destructive,
                f"{kind}: erased inside the legal minimum of rule '{rule.label}'",
            )
        if rule.anchor(record, subject) is None:
            _check(not decision.destructive, f"{kind}: erased without a date for '{rule.label}'")
        _check_cutoff(rule, record, subject, now, due, kind)
    free = evaluate(now, held=False)
    if free.due_at is None or not rules:
        return
    before = free.due_at - _MICROSECOND
    _check(
        evaluate(before, held=False).action is Action.KEEP,
        f"{kind}: acted on before its due instant ('{free.rule.label if free.rule else ''}')",
    )
    at_due = evaluate(free.due_at, held=False)
    _check(at_due.due_at == free.due_at, f"{kind}: due date moved with now")
    _check(at_due.action in {r.action for r in rules}, f"{kind}: not acted on at its due instant")
    if now >= free.due_at:
        for days in (1, 400, 4000):
            later = _later(now, days)
            if later is not None:
                _check(
                    evaluate(later, held=False).action is free.action,
                    f"{kind}: expired record no longer expired later on",
                )


def _check_cutoff(
    rule: RetentionRule,
    record: Any,
    subject: Any,
    now: dt.datetime,
    due: dt.datetime | None,
    kind: str,
) -> None:
    present = [
        (raw, rule.cutoff(now, trigger))
        for trigger in rule.triggers
        if (raw := rule.read(trigger, record, subject)) is not None
    ]
    if present:
        by_cutoff = all(cut is not None and raw <= cut for raw, cut in present)
        by_due = due is not None and due <= now
        _check(by_cutoff == by_due, f"{kind}: cutoff and due date disagree for '{rule.label}'")


class RetentionMachine(RuleBasedStateMachine):
    """A state machine that lives with a schedule: learners, records, time, activity, holds.

    Subclass it and set ``schedule_strategy`` (``st.just(MY_SCHEDULE)``) to check your own
    schedule; the default draws random schedules. After every step it checks
    :func:`assert_schedule_invariants`, and across steps that an expired record stays
    expired as time passes (until its learner is active again), that new activity only
    moves due dates later, and that a sweep never erases a held record.
    """

    schedule_strategy: ClassVar[st.SearchStrategy[Schedule]] = schedules()
    start: ClassVar[dt.datetime] = dt.datetime(2026, 1, 1, tzinfo=UTC)

    def __init__(self) -> None:
        super().__init__()
        self.schedule: Schedule = Schedule({})
        self.now = self.start
        self.learners: dict[str, Learner] = {}
        self.records: dict[tuple[str, str], Any] = {}
        self.holds: list[Hold] = []
        self.expired: set[tuple[str, str]] = set()

    def _key(self, record: Any) -> tuple[str, str]:
        return (type(record).__name__, record.id)

    def _all(self) -> list[Any]:
        return [*self.learners.values(), *self.records.values()]

    def _decide(self, record: Any) -> Any:
        return self.schedule.evaluate(
            record, now=self.now, subject=_subject(record, self.learners), holds=()
        )

    @initialize(data=st.data())
    def choose_schedule(self, data: st.DataObject) -> None:
        """Draw the schedule under test."""
        self.schedule = data.draw(self.schedule_strategy, label="schedule")

    @stateful.rule(data=st.data())
    def add_learner(self, data: st.DataObject) -> None:
        """A learner signs up (dates in the past, or no activity yet)."""
        if len(self.learners) >= 4:
            return
        days = data.draw(st.integers(0, 4_000), label="account age in days")
        created = self.now - dt.timedelta(days=days)
        active = data.draw(st.none() | st.integers(0, days), label="days since activity")
        ends = data.draw(st.none() | st.integers(-2_000, 2_000), label="contract end offset")
        learner = Learner(
            id=f"L{len(self.learners)}",
            username="user",
            email="user@example.org",
            given_name="Ana",
            family_name="Silva",
            created_at=created,
            last_activity_at=None if active is None else self.now - dt.timedelta(days=active),
            contract_end_at=None if ends is None else self.now + dt.timedelta(days=ends),
        )
        self.learners[learner.id] = learner

    @stateful.rule(data=st.data())
    def add_record(self, data: st.DataObject) -> None:
        """A record of some type is created for an existing learner."""
        if not self.learners or len(self.records) >= 12:
            return
        learner_id = data.draw(st.sampled_from(sorted(self.learners)), label="learner")
        record_type = data.draw(st.sampled_from(RECORD_TYPES[1:]), label="record type")
        number = len(self.records)
        record = data.draw(record_of(record_type, learner_id, number), label="record")
        self.records.setdefault(self._key(record), record)

    @stateful.rule(days=st.integers(1, 2_000), micros=st.integers(0, 86_400 * 10**6))
    def advance(self, days: int, micros: int) -> None:
        """Time passes: whatever had expired is still expired."""
        self.now += dt.timedelta(days=days, microseconds=micros)
        for record in self._all():
            if self._key(record) in self.expired:
                decision = self._decide(record)
                _check(
                    decision.due_at is not None and decision.due_at <= self.now,
                    f"{type(record).__name__}: expired record no longer expired later on",
                )

    @stateful.rule(data=st.data())
    def activity(self, data: st.DataObject) -> None:
        """A learner is active now: due dates of their records only move later."""
        if not self.learners:
            return
        learner_id = data.draw(st.sampled_from(sorted(self.learners)), label="learner")
        old = self.learners[learner_id]
        mine = [r for r in self.records.values() if r.learner_id == learner_id]
        before = {self._key(r): self._decide(r).due_at for r in [old, *mine]}
        last = old.last_activity_at
        new = attrs.evolve(old, last_activity_at=self.now if last is None else max(last, self.now))
        self.learners[learner_id] = new
        for record in [new, *mine]:
            was = before[self._key(record)]
            due = self._decide(record).due_at
            if was is not None and due is not None:
                _check(due >= was, f"{type(record).__name__}: activity moved a due date earlier")
            self.expired.discard(self._key(record))

    @stateful.rule(data=st.data())
    def place_hold(self, data: st.DataObject) -> None:
        """A legal hold is placed on a learner, a record or a record type."""
        if len(self.holds) < 3:
            keys = [r.id for r in self._all()]
            self.holds.append(data.draw(holds(sorted(self.learners), keys), label="hold"))

    @stateful.rule()
    def lift_hold(self) -> None:
        """The oldest hold is lifted."""
        if self.holds:
            self.holds.pop(0)

    @stateful.rule()
    def sweep(self) -> None:
        """A sweep erases what it may; held records survive it."""
        groups = self.schedule.plan(
            self._all(), now=self.now, subjects=self.learners, holds=self.holds
        ).grouped()
        for record in groups[Action.ERASE]:
            _check(not any(h.matches(record) for h in self.holds), "a sweep erased a held record")
            if isinstance(record, Learner) and self.learners.get(record.id) is record:
                del self.learners[record.id]
                # Their records lose the dates read on the learner: no longer "expired".
                for other in self.records.values():
                    if other.learner_id == record.id:
                        self.expired.discard(self._key(other))
            else:
                self.records.pop(self._key(record), None)
            self.expired.discard(self._key(record))

    @invariant()
    def invariants_hold(self) -> None:
        """Every record satisfies the schedule invariants now."""
        assert_schedule_invariants(
            self.schedule, self._all(), now=self.now, subjects=self.learners, holds=self.holds
        )
        for record in self._all():
            decision = self._decide(record)
            if decision.due_at is not None and decision.due_at <= self.now:
                self.expired.add(self._key(record))
