"""Property-check retention schedules: hypothesis strategies, invariants, a state machine.

Three ways to check your own schedule::

    from hypothesis import given
    from learnprivacy.testing.retention import (
        RetentionMachine, assert_schedule_invariants, instants, learners_with_records)

    @given(learners_with_records(), instants())
    def test_my_schedule(data, now):
        learner, records = data
        assert_schedule_invariants(MY_SCHEDULE, [learner, *records], now=now,
                                   learners={learner.id: learner})

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

from learnprivacy.testing._retention_checks import assert_schedule_invariants
from learnprivacy.testing._retention_machine import RetentionMachine
from learnprivacy.testing._retention_strategies import (
    instants,
    learners_with_records,
    retention_rules,
    schedules,
)

__all__ = [
    "RetentionMachine",
    "assert_schedule_invariants",
    "instants",
    "learners_with_records",
    "retention_rules",
    "schedules",
]
