"""Stateful property tests: schedules living through time, activity, holds and sweeps."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st

from learnprivacy.records import Certificate, Consent, Funding, Invoice, Learner, Progress
from learnprivacy.retention import Action, RetentionMode, RetentionRule, Schedule, Trigger
from learnprivacy.testing.retention import RetentionMachine

# A schedule shaped like the seed policies: activity-based accounts and learning data, a
# COMPLIANCE-mode legal minimum for invoices, funder files counted from their closing.
POLICY_LIKE = Schedule(
    {
        Learner: RetentionRule("P18M", Trigger.LAST_ACTIVITY, fallback=Trigger.CREATED),
        Progress: [
            RetentionRule("P18M", Trigger.LAST_ACTIVITY, purpose="tracking"),
            RetentionRule("P5Y", Trigger.CREATED, purpose="statistics", action=Action.ANONYMISE),
        ],
        Certificate: RetentionRule("P5Y", Trigger.ISSUED),
        Invoice: RetentionRule(
            "P120M", Trigger.ISSUED, minimum=True, mode=RetentionMode.COMPLIANCE
        ),
        Funding: RetentionRule("P72M", Trigger.CLOSED, minimum=True, on_missing_anchor=Action.KEEP),
        Consent: RetentionRule("P6M", Trigger.CONSENT_GIVEN),
    }
)


class RandomScheduleMachine(RetentionMachine):
    """Random schedules: the invariants hold for any schedule the library accepts."""


class PolicyScheduleMachine(RetentionMachine):
    """One fixed schedule, the way users check their own (``schedule_strategy``)."""

    schedule_strategy = st.just(POLICY_LIKE)


TestRandomSchedules = RandomScheduleMachine.TestCase
TestRandomSchedules.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestPolicySchedule = PolicyScheduleMachine.TestCase
TestPolicySchedule.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
