"""Schedule.evaluate: the decision for one record, its reasons, and the retention invariants."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy import records as rec
from learnprivacy.errors import RetentionViolation, ValidationError
from learnprivacy.retention import (
    Action,
    Hold,
    Override,
    Period,
    RetentionMode,
    RetentionRule,
    Schedule,
    Trigger,
)
from learnprivacy.testing._retention_checks import check_cutoff
from learnprivacy.testing._retention_strategies import holds, instants
from learnprivacy.testing.retention import learners_with_records, retention_rules, schedules
from tests import at, sample

UTC = dt.UTC
MICRO = dt.timedelta(microseconds=1)


ANA = sample(
    rec.Learner,
    username="ana.silva",
    created_at=at(2022, 9, 1),
    last_activity_at=at(2024, 1, 31, 10),
)
INVOICE = sample(
    rec.Invoice,
    billing_address="1 rue de la Paix, Paris",
    amount=Decimal("450.00"),
    issued_at=at(2024, 3, 15),
)
PROGRESS = sample(rec.Progress, course_id="RGPD-101", recorded_at=at(2023, 5, 2))
CONTRACT = Schedule(
    {
        rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
        rec.Progress: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
        rec.Invoice: RetentionRule(Period.parse("P10Y"), Trigger.ISSUED, minimum=True),
    }
)


def test_keep_until_due_then_erase_at_the_exact_instant() -> None:
    """Expired iff now >= due_at: one microsecond before is KEEP, the instant itself ERASE."""
    due = at(2025, 7, 31, 10)
    before = CONTRACT.evaluate(ANA, now=due - MICRO)
    assert (before.action, before.due_at) == (Action.KEEP, due)
    assert "P18M after last_activity" in before.reason
    assert before.article == "GDPR Art. 5(1)(e)"
    on_time = CONTRACT.evaluate(ANA, now=due)
    assert (on_time.action, on_time.due_at) == (Action.ERASE, due)
    assert on_time.rule is CONTRACT.rules_for(rec.Learner)[0]
    assert "GDPR Art. 5(1)(e)" in on_time.reason
    assert on_time.article == "GDPR Art. 17(1)(a)"


def test_records_of_a_learner_count_from_the_learner_activity() -> None:
    """LAST_ACTIVITY on a progress record reads the subject; without it, REVIEW."""
    decision = CONTRACT.evaluate(PROGRESS, now=at(2025, 7, 31, 10), subject=ANA)
    assert decision.action is Action.ERASE
    assert CONTRACT.evaluate(PROGRESS, now=at(2030, 1, 1)).action is Action.REVIEW
    with pytest.raises(ValidationError):
        CONTRACT.evaluate(PROGRESS, now=at(2030, 1, 1), subject=attrs.evolve(ANA, id="L2"))


def test_missing_anchor_reviews_unless_told_the_clock_has_not_started() -> None:
    """No date: REVIEW by default, KEEP with on_missing_anchor=KEEP, the fallback if any."""
    idle = attrs.evolve(ANA, last_activity_at=None)
    now = at(2040, 1, 1)
    review = CONTRACT.evaluate(idle, now=now)
    assert (review.action, review.due_at) == (Action.REVIEW, None)
    assert "no last_activity date" in review.reason
    pending = Schedule(
        {rec.Learner: RetentionRule("P0D", Trigger.CONTRACT_END, on_missing_anchor=Action.KEEP)}
    )
    assert pending.evaluate(idle, now=now).action is Action.KEEP
    fallback = Schedule(
        {rec.Learner: RetentionRule("P18M", Trigger.LAST_ACTIVITY, fallback=Trigger.CREATED)}
    )
    decision = fallback.evaluate(idle, now=now)
    assert (decision.action, decision.due_at) == (Action.ERASE, at(2024, 3, 1))


def test_no_rule_means_review_citing_the_register() -> None:
    """A record type the schedule does not cover is REVIEW, never ERASE."""
    consent = sample(rec.Consent, id="C1", given_at=at(2020, 1, 1))
    decision = CONTRACT.evaluate(consent, now=at(2040, 1, 1), erasure_requested=False)
    assert (decision.action, decision.rule) == (Action.REVIEW, None)
    assert decision.article == "GDPR Art. 30(1)(f)"
    assert CONTRACT.evaluate(consent, now=at(2040, 1, 1), erasure_requested=True).action is (
        Action.REVIEW
    )


def test_erasure_request_erases_what_no_legal_minimum_protects() -> None:
    """On request: ERASE now under Art. 17(1), whatever the remaining period."""
    decision = CONTRACT.evaluate(ANA, now=at(2024, 2, 1), erasure_requested=True)
    assert (decision.action, decision.due_at) == (Action.ERASE, at(2024, 2, 1))
    assert decision.article == "GDPR Art. 17(1)"


def test_erasure_request_inside_a_legal_minimum_restricts() -> None:
    """An invoice inside its 10-year minimum is restricted, citing Art. 17(3)(b), until it ends."""
    decision = CONTRACT.evaluate(INVOICE, now=at(2026, 1, 1), erasure_requested=True)
    assert (decision.action, decision.due_at) == (Action.RESTRICT, at(2034, 3, 15))
    assert decision.article == "GDPR Art. 17(3)(b)"
    assert "legal minimum" in decision.reason
    assert "P10Y after issued" in decision.reason
    after = CONTRACT.evaluate(INVOICE, now=at(2034, 3, 15), erasure_requested=True)
    assert after.action is Action.ERASE


def test_request_for_a_legal_obligation_record_without_a_declared_minimum_is_reviewed() -> None:
    """An invoice (legal obligation) whose rule is no minimum is not erased on request."""
    loose = Schedule({rec.Invoice: RetentionRule("P10Y", Trigger.ISSUED)})
    decision = loose.evaluate(INVOICE, now=at(2026, 1, 1), erasure_requested=True)
    assert decision.action is Action.REVIEW
    assert decision.article == "GDPR Art. 17(3)(b)"


def test_hold_blocks_erasure_routine_and_on_request() -> None:
    """A held record is kept when expired and restricted on request (Art. 17(3)(e))."""
    hold = Hold("litigation file 2026-04", subject="L1")
    routine = CONTRACT.evaluate(ANA, now=at(2030, 1, 1), holds=[hold])
    assert (routine.action, routine.hold) == (Action.KEEP, hold)
    assert routine.due_at == at(2025, 7, 31, 10)
    request = CONTRACT.evaluate(ANA, now=at(2024, 2, 1), holds=[hold], erasure_requested=True)
    assert (request.action, request.article) == (Action.RESTRICT, "GDPR Art. 17(3)(e)")
    other = Hold("litigation file 2026-04", subject="L2")
    assert CONTRACT.evaluate(ANA, now=at(2030, 1, 1), holds=[other]).action is Action.ERASE


def test_governance_minimum_yields_only_to_an_audited_override() -> None:
    """GOVERNANCE: an Override erases and is carried in the decision; COMPLIANCE: refused."""
    override = Override("court order 2026-118", actor="dpo")
    decision = CONTRACT.evaluate(
        INVOICE, now=at(2026, 1, 1), erasure_requested=True, override=override
    )
    assert (decision.action, decision.override) == (Action.ERASE, override)
    assert "override" in decision.reason
    locked = Schedule(
        {
            rec.Invoice: RetentionRule(
                "P10Y", Trigger.ISSUED, minimum=True, mode=RetentionMode.COMPLIANCE
            )
        }
    )
    with pytest.raises(RetentionViolation):
        locked.evaluate(INVOICE, now=at(2026, 1, 1), erasure_requested=True, override=override)
    with pytest.raises(ValidationError):
        CONTRACT.evaluate(INVOICE, now=at(2026, 1, 1), override=override)
    with pytest.raises(ValidationError):
        CONTRACT.evaluate(
            INVOICE,
            now=at(2026, 1, 1),
            erasure_requested=True,
            override="dpo said so",  # type: ignore[arg-type]
        )


def test_several_purposes_keep_until_the_last_ends() -> None:
    """An invoice kept for billing (10 years) and marketing (18 months) waits for both."""
    schedule = Schedule(
        {
            rec.Invoice: [
                RetentionRule("P18M", Trigger.ISSUED, purpose="marketing"),
                RetentionRule("P10Y", Trigger.ISSUED, purpose="billing", minimum=True),
            ]
        }
    )
    two_years = schedule.evaluate(INVOICE, now=at(2026, 3, 15))
    assert (two_years.action, two_years.due_at) == (Action.KEEP, at(2034, 3, 15))
    assert two_years.rule is not None
    assert two_years.rule.purpose == "billing"
    ended = schedule.evaluate(INVOICE, now=at(2034, 3, 15))
    assert ended.action is Action.ERASE
    assert "1 other purpose(s)" in ended.reason


def test_the_most_protective_action_wins_when_purposes_end() -> None:
    """Erase for one purpose and anonymise for another: anonymise (statistics survive)."""
    schedule = Schedule(
        {
            rec.Progress: [
                RetentionRule("P18M", Trigger.LAST_ACTIVITY, purpose="tracking"),
                RetentionRule(
                    "P1Y", Trigger.CREATED, purpose="statistics", action=Action.ANONYMISE
                ),
            ]
        }
    )
    decision = schedule.evaluate(PROGRESS, now=at(2030, 1, 1), subject=ANA)
    assert decision.action is Action.ANONYMISE
    assert decision.due_at == at(2025, 7, 31, 10)


def test_now_must_be_aware() -> None:
    """A naive now is refused."""
    with pytest.raises(ValidationError):
        CONTRACT.evaluate(ANA, now=dt.datetime(2030, 1, 1))


def test_decisions_never_show_personal_values() -> None:
    """Reason and repr name rules and articles, never the learner's values."""
    hold = Hold("litigation file 2026-04", subject="L1")
    decisions = [
        CONTRACT.evaluate(ANA, now=at(2030, 1, 1)),
        CONTRACT.evaluate(ANA, now=at(2030, 1, 1), holds=[hold]),
        CONTRACT.evaluate(INVOICE, now=at(2026, 1, 1), erasure_requested=True),
        CONTRACT.evaluate(attrs.evolve(ANA, last_activity_at=None), now=at(2030, 1, 1)),
    ]
    for decision in decisions:
        for text in (decision.reason, repr(decision)):
            for value in ("ana.silva", "ana@example.org", "Silva", "'L1'", "rue de la Paix"):
                assert value not in text


# -- invariants, each its own property ---------------------------------------------------


@st.composite
def situations(draw: st.DrawFn) -> tuple[Schedule, rec.Learner, list[Any], dt.datetime, list[Hold]]:
    """A random schedule, a learner with records, an instant and some holds."""
    learner, records = draw(learners_with_records())
    ids = [learner.id] + [r.id for r in records]
    chosen = draw(st.lists(holds([learner.id, "L-other"], ids), max_size=2))
    return draw(schedules()), learner, [learner, *records], draw(instants()), chosen


@settings(max_examples=150, deadline=None)
@given(situations())
def test_a_held_record_is_never_erased(case: Any) -> None:
    """Held records are never erased or anonymised, routine or on request."""
    schedule, learner, records, now, chosen = case
    for record in records:
        if any(h.matches(record) for h in chosen):
            for request in (False, True):
                decision = schedule.evaluate(
                    record, now=now, subject=learner, holds=chosen, erasure_requested=request
                )
                assert not decision.destructive


@settings(max_examples=150, deadline=None)
@given(situations())
def test_nothing_inside_a_legal_minimum_is_erased_even_on_request(case: Any) -> None:
    """While a minimum rule's period runs (or its date is unknown), no erasure on request."""
    schedule, learner, records, now, _ = case
    for record in records:
        running = [
            rule
            for rule in schedule.applicable_rules(record)
            if rule.minimum and ((due := rule.due_at(record, learner)) is None or now < due)
        ]
        if running:
            for request in (False, True):
                decision = schedule.evaluate(
                    record, now=now, subject=learner, erasure_requested=request
                )
                assert not decision.destructive


@settings(max_examples=150, deadline=None)
@given(situations(), st.integers(1, 20_000))
def test_once_expired_a_record_stays_expired(case: Any, days: int) -> None:
    """Absent new activity, an expired record is expired (same action) at any later now."""
    schedule, learner, records, now, _ = case
    later = now + dt.timedelta(days=days)
    for record in records:
        decision = schedule.evaluate(record, now=now, subject=learner)
        if decision.due_at is not None and decision.due_at <= now:
            again = schedule.evaluate(record, now=later, subject=learner)
            assert (again.action, again.due_at) == (decision.action, decision.due_at)


@settings(max_examples=150, deadline=None)
@given(situations(), st.integers(0, 4_000))
def test_new_activity_only_moves_due_dates_later(case: Any, days: int) -> None:
    """A later last_activity_at never brings any record's due date earlier."""
    schedule, learner, records, now, _ = case
    base = learner.last_activity_at or learner.created_at
    active = attrs.evolve(learner, last_activity_at=base + dt.timedelta(days=days))
    for record in records:
        mine = active if record is learner else record
        before = schedule.evaluate(record, now=now, subject=learner)
        after = schedule.evaluate(mine, now=now, subject=active)
        if before.due_at is not None and after.due_at is not None:
            assert after.due_at >= before.due_at
        if before.action is Action.KEEP and before.due_at is not None:
            assert after.action in (Action.KEEP, Action.REVIEW)


@settings(max_examples=150, deadline=None)
@given(situations())
def test_the_boundary_instant_is_exact(case: Any) -> None:
    """KEEP at due_at - 1 microsecond, the rule's action at due_at itself."""
    schedule, learner, records, _, _ = case
    for record in records:
        probe = schedule.evaluate(record, now=at(2000, 1, 1), subject=learner)
        if probe.due_at is None:
            continue
        before = schedule.evaluate(record, now=probe.due_at - MICRO, subject=learner)
        on_time = schedule.evaluate(record, now=probe.due_at, subject=learner)
        assert before.action is Action.KEEP
        assert on_time.due_at == probe.due_at
        rules = schedule.applicable_rules(record)
        assert on_time.action in {rule.action for rule in rules}


@settings(max_examples=150, deadline=None)
@given(situations())
def test_a_missing_anchor_never_erases(case: Any) -> None:
    """Without a request, a record missing any rule's date is REVIEW or KEEP, never erased."""
    schedule, learner, records, now, _ = case
    alone = attrs.evolve(learner, last_activity_at=None, contract_end_at=None)
    for record in [alone, *records[1:]]:
        for subject in (alone, None):
            rules = schedule.applicable_rules(record)
            if any(rule.anchor(record, subject) is None for rule in rules):
                decision = schedule.evaluate(record, now=now, subject=subject)
                assert decision.action in (Action.REVIEW, Action.KEEP)


@settings(max_examples=150, deadline=None)
@given(situations(), st.randoms(use_true_random=False))
def test_evaluation_is_deterministic_and_independent_of_rule_order(
    case: Any, rng: random.Random
) -> None:
    """Same inputs, same decision; shuffling each type's rules changes nothing."""
    schedule, learner, records, now, chosen = case
    shuffled = {}
    for key, rules in schedule.entries.items():
        rules = list(rules)
        rng.shuffle(rules)
        shuffled[key] = rules
    other = Schedule(shuffled)
    for record in records:
        for request in (False, True):
            decision = schedule.evaluate(
                record, now=now, subject=learner, holds=chosen, erasure_requested=request
            )
            assert decision == schedule.evaluate(
                record, now=now, subject=learner, holds=chosen, erasure_requested=request
            )
            assert decision == other.evaluate(
                record, now=now, subject=learner, holds=chosen, erasure_requested=request
            )


@settings(max_examples=100, deadline=None)
@given(st.data(), instants())
def test_cutoff_agrees_with_due_dates(data: st.DataObject, now: dt.datetime) -> None:
    """For every rule and record: dates <= rule.cutoff(now) iff the rule's due_at <= now."""
    learner, records = data.draw(learners_with_records())
    for record in [learner, *records]:
        rule = data.draw(retention_rules(type(record)))
        due = rule.due_at(record, learner)
        check_cutoff(rule, record, learner, now, due, type(record).__name__)


def test_funding_and_consent_triggers() -> None:
    """CLOSED reads funding files, WITHDRAWN and CONSENT_GIVEN read consents."""
    funding = sample(rec.Funding, opened_at=at(2023, 1, 10), closed_at=at(2024, 6, 30))
    consent = sample(rec.Consent, id="C1", given_at=at(2024, 1, 31), withdrawn_at=at(2024, 8, 31))
    schedule = Schedule(
        {
            rec.Funding: RetentionRule("P72M", Trigger.CLOSED, minimum=True),
            rec.Consent: [
                RetentionRule("P6M", Trigger.CONSENT_GIVEN, purpose="validity"),
                RetentionRule("P5Y", Trigger.WITHDRAWN, purpose="proof"),
            ],
        }
    )
    assert schedule.evaluate(funding, now=at(2030, 6, 30)).action is Action.ERASE
    assert schedule.evaluate(funding, now=at(2030, 6, 29)).due_at == at(2030, 6, 30)
    assert schedule.evaluate(consent, now=at(2029, 8, 31)).action is Action.ERASE
    assert schedule.evaluate(consent, now=at(2029, 8, 30)).action is Action.KEEP
