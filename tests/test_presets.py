"""The ready-made French training organisation schedule keeps its promises."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from learnprivacy.records import Invoice, Learner, Progress
from learnprivacy.retention import Action, Hold, Period
from learnprivacy.retention.presets import french_training_organisation
from tests import sample

UTC = dt.UTC
LEARNER = sample(
    Learner,
    created_at=dt.datetime(2020, 1, 6, tzinfo=UTC),
    last_activity_at=dt.datetime(2024, 3, 31, 10, 0, tzinfo=UTC),
)


def test_learner_erased_exactly_18_months_after_last_activity() -> None:
    """Kept until the instant 18 calendar months after the last activity, erased from then."""
    schedule = french_training_organisation()
    # Mar 31 + 18 months: Sep 31 does not exist, so the end of Sep 30.
    due = dt.datetime(2025, 9, 30, 23, 59, 59, 999_999, tzinfo=UTC)
    before = schedule.evaluate(LEARNER, now=due - dt.timedelta(seconds=1))
    at = schedule.evaluate(LEARNER, now=due)
    assert before.action is Action.KEEP
    assert at.action is Action.ERASE
    assert at.due_at == due


def test_progress_is_anonymised_not_erased() -> None:
    """Learning records are anonymised so statistics survive the learner."""
    progress = sample(Progress, recorded_at=dt.datetime(2024, 3, 1, tzinfo=UTC))
    decision = french_training_organisation().evaluate(
        progress, now=dt.datetime(2026, 1, 1, tzinfo=UTC), subject=LEARNER
    )
    assert decision.action is Action.ANONYMISE


def test_invoice_is_a_ten_year_minimum_from_fiscal_year_close() -> None:
    """An invoice cannot be erased on request before 10 years after its fiscal year closed."""
    invoice = sample(
        Invoice,
        id="I1",
        billing_address="Paris",
        amount=Decimal("450.00"),
        issued_at=dt.datetime(2020, 2, 1, tzinfo=UTC),
    )
    schedule = french_training_organisation()
    requested = schedule.evaluate(
        invoice, now=dt.datetime(2026, 1, 1, tzinfo=UTC), erasure_requested=True
    )
    assert requested.action is Action.RESTRICT
    assert "17(3)(b)" in requested.reason
    assert requested.due_at is not None
    assert requested.due_at.year == 2031  # 31 Dec 2020 close + 10 years


@given(st.from_type(Period), st.from_type(Hold))
def test_period_and_hold_strategies_are_registered(period: Period, hold: Hold) -> None:
    """st.from_type builds Periods and Holds through the hypothesis entry point."""
    assert str(Period.parse(str(period))) == str(period)
    assert hold.reason
