"""A hypothesis state machine that lives with a retention schedule."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import attrs
from hypothesis import stateful
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant

from learnprivacy.records import Learner
from learnprivacy.retention import Action, Hold, Schedule
from learnprivacy.testing._retention_checks import (
    assert_schedule_invariants,
    check,
    subject_of_record,
)
from learnprivacy.testing._retention_strategies import RECORD_TYPES, holds, record_of, schedules

__all__ = ["RetentionMachine"]

UTC = dt.UTC


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
        # Ids are never reused: a sweep erases learners and records, and a newcomer must
        # not inherit the "already expired" status of an erased one.
        self.created = 0

    def _key(self, record: Any) -> tuple[str, str]:
        return (type(record).__name__, record.id)

    def _all(self) -> list[Any]:
        return [*self.learners.values(), *self.records.values()]

    def _decide(self, record: Any) -> Any:
        return self.schedule.evaluate(
            record, now=self.now, learner=subject_of_record(record, self.learners), holds=()
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
        self.created += 1
        learner = Learner(
            id=f"L{self.created}",
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
        self.created += 1
        number = self.created
        record = data.draw(record_of(record_type, learner_id, number), label="record")
        self.records.setdefault(self._key(record), record)

    @stateful.rule(days=st.integers(1, 2_000), micros=st.integers(0, 86_400 * 10**6))
    def advance(self, days: int, micros: int) -> None:
        """Time passes: whatever had expired is still expired."""
        self.now += dt.timedelta(days=days, microseconds=micros)
        for record in self._all():
            if self._key(record) in self.expired:
                decision = self._decide(record)
                check(
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
                check(due >= was, f"{type(record).__name__}: activity moved a due date earlier")
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
            self._all(), now=self.now, learners=self.learners, holds=self.holds
        ).grouped()
        for record in groups[Action.ERASE]:
            check(not any(h.matches(record) for h in self.holds), "a sweep erased a held record")
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
            self.schedule, self._all(), now=self.now, learners=self.learners, holds=self.holds
        )
        for record in self._all():
            decision = self._decide(record)
            if decision.due_at is not None and decision.due_at <= self.now:
                self.expired.add(self._key(record))
