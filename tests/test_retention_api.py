"""The public surface of learnprivacy.retention and of its testing helpers."""

from __future__ import annotations

import datetime as dt
import doctest
from typing import Any

import pytest

import learnprivacy.retention
import learnprivacy.retention._period
import learnprivacy.testing.retention
from learnprivacy.records import Learner
from learnprivacy.retention import Action, Decision, Hold, RetentionRule, Schedule, Trigger
from learnprivacy.testing.retention import RetentionMachine, assert_schedule_invariants
from tests import modules_after, packages_in, sample

UTC = dt.UTC


def test_retention_vocabulary_members() -> None:
    """The contract's enums have the members DESIGN.md names."""
    assert {a.name for a in Action if a.retention} == {
        "KEEP",
        "ERASE",
        "ANONYMISE",
        "RESTRICT",
        "REVIEW",
    }
    assert {t.name for t in Trigger} == {
        "CREATED",
        "LAST_ACTIVITY",
        "CONTRACT_END",
        "ISSUED",
        "FISCAL_YEAR_END",
        "CONSENT_GIVEN",
        "WITHDRAWN",
        "CLOSED",
    }


@pytest.mark.parametrize("module", [learnprivacy.retention, learnprivacy.retention._period])
def test_docstring_examples_run(module: Any) -> None:
    """The examples in the docstrings are true."""
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0


def test_retention_import_is_light() -> None:
    """Importing the engine loads neither SQLAlchemy nor hypothesis."""
    modules = modules_after("import learnprivacy.retention")
    assert packages_in(modules, ("sqlalchemy", "sqlmodel", "hypothesis")) == set()


class _IgnoresHolds(Schedule):
    """A schedule whose evaluate() forgets holds: what the checker must catch."""

    __slots__ = ()

    def evaluate(self, record: object, **kwargs: Any) -> Decision:
        kwargs["holds"] = ()
        return super().evaluate(record, **kwargs)


def test_the_invariant_checker_catches_a_schedule_that_ignores_holds() -> None:
    """assert_schedule_invariants fails for a schedule that would erase a held record."""
    rules = {Learner: RetentionRule("P18M", Trigger.LAST_ACTIVITY)}
    ana = sample(Learner, last_activity_at=dt.datetime(2021, 1, 1, tzinfo=UTC))
    now = dt.datetime(2026, 1, 1, tzinfo=UTC)
    hold = [Hold("litigation file 2026-04", subject="L1")]
    assert_schedule_invariants(Schedule(rules), [ana], now=now, holds=hold)
    with pytest.raises(AssertionError, match="held record"):
        assert_schedule_invariants(_IgnoresHolds(rules), [ana], now=now, holds=hold)


def test_the_state_machine_is_a_hypothesis_state_machine() -> None:
    """RetentionMachine can be subclassed and run as a unittest TestCase."""
    assert hasattr(RetentionMachine, "TestCase")
    assert Action.ERASE.destructive
    assert not Action.RESTRICT.destructive
