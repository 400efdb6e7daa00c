"""The property-test how-to, run as written against the built-in preset schedule."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy.records import Learner
from learnprivacy.retention.presets import french_training_organisation
from learnprivacy.testing._retention_strategies import instants
from learnprivacy.testing.retention import (
    RetentionMachine,
    assert_schedule_invariants,
    learners_with_records,
)

MY_SCHEDULE = french_training_organisation()


@settings(max_examples=60)
@given(learners_with_records(), instants())
def test_preset_keeps_the_invariants(data: tuple[Learner, list[Any]], now: dt.datetime) -> None:
    """The preset schedule satisfies every retention invariant for generated data."""
    learner, records = data
    assert_schedule_invariants(
        MY_SCHEDULE, [learner, *records], now=now, learners={learner.id: learner}
    )


class PresetMachine(RetentionMachine):
    """The preset schedule living through time."""

    schedule_strategy = st.just(MY_SCHEDULE)


TestPresetMachine = PresetMachine.TestCase
TestPresetMachine.settings = settings(max_examples=15, stateful_step_count=20)
