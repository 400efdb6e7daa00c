"""Rules, holds, overrides and schedules: construction, validation and what they read."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar

import attrs
import pytest

from learnprivacy import records as rec
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.retention import (
    Action,
    FiscalYear,
    Hold,
    Override,
    Period,
    RetentionMode,
    RetentionRule,
    Schedule,
    Trigger,
)
from tests import at, sample

UTC = dt.UTC


def learner(**changes: object) -> rec.Learner:
    dates = {
        "created_at": at(2022, 9, 1),
        "last_activity_at": at(2024, 1, 31),
        "contract_end_at": at(2025, 6, 30),
    }
    return sample(rec.Learner, **{**dates, **changes})


def progress(learner_id: str = "L1") -> rec.Progress:
    return sample(
        rec.Progress, learner_id=learner_id, course_id="RGPD-101", recorded_at=at(2023, 5, 2)
    )


ISSUED = dt.datetime(2024, 3, 15, tzinfo=UTC)


def invoice(issued_at: dt.datetime = ISSUED) -> rec.Invoice:
    return sample(
        rec.Invoice,
        billing_address="1 rue de la Paix, Paris",
        amount=Decimal("450.00"),
        issued_at=issued_at,
    )


def test_rule_defaults_and_string_period() -> None:
    """A rule erases by default, is no minimum, GOVERNANCE, and accepts an ISO string."""
    rule = RetentionRule("P18M", Trigger.LAST_ACTIVITY)
    assert rule.period == Period(months=18)
    assert (rule.action, rule.minimum, rule.mode) == (
        Action.ERASE,
        False,
        RetentionMode.GOVERNANCE,
    )
    assert rule.on_missing_anchor is Action.REVIEW
    assert rule.label == "retention: P18M after last_activity"
    minimum = RetentionRule(
        "P10Y", Trigger.ISSUED, minimum=True, mode=RetentionMode.COMPLIANCE, purpose="billing"
    )
    assert minimum.label == "billing: P10Y after issued, legal minimum (compliance)"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"period": 18, "trigger": Trigger.CREATED},
        {"period": "P18", "trigger": Trigger.CREATED},
        {"period": "P1Y", "trigger": "created"},
        {"period": "P1Y", "trigger": Trigger.CREATED, "action": "erase"},
        {"period": "P1Y", "trigger": Trigger.CREATED, "minimum": 1},
        {"period": "P1Y", "trigger": Trigger.CREATED, "mode": RetentionMode.COMPLIANCE},
        {"period": "P1Y", "trigger": Trigger.CREATED, "fallback": Trigger.CREATED},
        {"period": "P1Y", "trigger": Trigger.CREATED, "fallback": "issued"},
        {"period": "P1Y", "trigger": Trigger.CREATED, "on_missing_anchor": Action.ERASE},
        {"period": "P1Y", "trigger": Trigger.CREATED, "on_missing_anchor": Action.ANONYMISE},
        {"period": "P1Y", "trigger": Trigger.CREATED, "purpose": " "},
        {"period": "P1Y", "trigger": Trigger.CREATED, "basis": "gdpr_art_6_1_c"},
        {"period": "P1Y", "trigger": Trigger.CREATED, "where": {"purpose": ["a"]}},
        {"period": "P1Y", "trigger": Trigger.CREATED, "fiscal_year": (12, 31)},
    ],
)
def test_rule_refuses_inconsistent_configuration(kwargs: dict[str, object]) -> None:
    """Wrong types, COMPLIANCE without a minimum, or erasing on a missing date are refused."""
    period = kwargs.pop("period")
    trigger = kwargs.pop("trigger")
    with pytest.raises((ConfigurationError, ValidationError)):
        RetentionRule(period, trigger, **kwargs)  # type: ignore[arg-type]


def test_anchor_reads_the_learner_for_learner_level_triggers() -> None:
    """LAST_ACTIVITY reads the learner: the record itself for an account, else the subject."""
    rule = RetentionRule("P18M", Trigger.LAST_ACTIVITY)
    ana = learner()
    assert rule.anchor(ana) == at(2024, 1, 31)
    assert rule.anchor(progress(), ana) == at(2024, 1, 31)
    assert rule.anchor(progress()) is None
    assert rule.due_at(progress(), ana) == at(2025, 7, 31)
    with pytest.raises(ValidationError):
        rule.anchor(progress(), learner(id="L2"))
    with pytest.raises(ValidationError):
        rule.anchor(ana, learner(id="L2"))


def test_anchor_converts_to_utc_and_uses_the_fallback() -> None:
    """Anchors are UTC instants; the fallback trigger is read only when the first is empty."""
    rule = RetentionRule("P18M", Trigger.LAST_ACTIVITY, fallback=Trigger.CREATED)
    plus_two = dt.timezone(dt.timedelta(hours=2))
    ana = learner(last_activity_at=dt.datetime(2024, 2, 1, 1, tzinfo=plus_two))
    assert rule.anchor(ana) == at(2024, 1, 31, 23)
    assert rule.anchor(ana).tzinfo is UTC  # type: ignore[union-attr]
    assert rule.anchor(learner(last_activity_at=None)) == at(2022, 9, 1)


def test_fiscal_year_trigger_counts_from_the_close() -> None:
    """FISCAL_YEAR_END: 10 years from the close of the year of the invoice."""
    rule = RetentionRule("P10Y", Trigger.FISCAL_YEAR_END, minimum=True)
    assert rule.anchor(invoice()) == at(2025, 1, 1)
    assert rule.due_at(invoice()) == at(2035, 1, 1)
    july = RetentionRule(
        "P10Y", Trigger.FISCAL_YEAR_END, fiscal_year=FiscalYear(end_month=6, end_day=30)
    )
    assert july.due_at(invoice()) == at(2034, 7, 1)


def test_due_at_is_none_beyond_the_calendar() -> None:
    """A period ending after year 9999 never ends: due_at is None."""
    rule = RetentionRule("P9000Y", Trigger.ISSUED)
    assert rule.due_at(invoice()) is None


def test_where_selects_records_by_field_value() -> None:
    """A rule with where= applies only to records whose fields match."""
    opco = RetentionRule("P72M", Trigger.CLOSED, where={"funder": rec.Funder.OPCO})
    funding = sample(rec.Funding, opened_at=at(2024, 1, 1))
    assert opco.applies_to(funding)
    assert not opco.applies_to(attrs.evolve(funding, funder=rec.Funder.CPF))
    assert opco.where == (("funder", rec.Funder.OPCO),)
    assert "where funder=opco" in opco.label


def test_cutoff_only_for_the_rule_triggers() -> None:
    """cutoff() answers for the rule's trigger or fallback, nothing else."""
    rule = RetentionRule("P18M", Trigger.LAST_ACTIVITY, fallback=Trigger.CREATED)
    now = at(2026, 1, 1)
    assert rule.cutoff(now) == rule.cutoff(now, Trigger.CREATED) == at(2024, 7, 1)
    with pytest.raises(ConfigurationError):
        rule.cutoff(now, Trigger.ISSUED)


def test_hold_matches_what_it_names() -> None:
    """Selectors combine; types match subclasses and names; no selector holds everything."""
    bill = invoice()
    assert Hold("tax audit", subject="L1").matches(bill)
    assert Hold("tax audit", subject="L1").matches(learner())
    assert not Hold("tax audit", subject="L2").matches(bill)
    assert Hold("tax audit", record_type=rec.Invoice).matches(bill)
    assert Hold("tax audit", record_type="Invoice").matches(bill)
    assert not Hold("tax audit", record_type=rec.Learner).matches(bill)
    assert Hold("tax audit", record_id="INV-1").matches(bill)
    assert not Hold("tax audit", subject="L1", record_id="INV-2").matches(bill)
    everything = Hold("regulator freeze")
    assert everything.is_global
    assert everything.matches(bill)
    assert everything.matches(learner())

    @attrs.frozen(kw_only=True)
    class CreditNote(rec.Invoice):
        kind: ClassVar[str] = "credit-note"

    assert Hold("tax audit", record_type=rec.Invoice).matches(
        CreditNote(
            id="CN-1",
            learner_id="L1",
            billing_name="Ana Silva",
            billing_address="1 rue de la Paix, Paris",
            amount=Decimal("-450.00"),
            issued_at=at(2024, 4, 1),
        )
    )


def test_hold_and_override_hide_identifiers_and_need_reasons() -> None:
    """repr masks the subject, record id and actor; empty reasons are refused."""
    hold = Hold("litigation file 2026-04", subject="L-secret", record_id="INV-secret")
    assert "secret" not in repr(hold)
    assert "litigation file 2026-04" in repr(hold)
    override = Override("court order 2026-118", actor="dpo-secret")
    assert "secret" not in repr(override)
    for bad in (lambda: Hold(""), lambda: Hold(" "), lambda: Override("why", actor="")):
        with pytest.raises(ValidationError):
            bad()
    with pytest.raises(ValidationError):
        Hold("x", record_type=3)  # type: ignore[arg-type]


def test_schedule_matches_classes_subclasses_and_names() -> None:
    """Keys may be classes (subclasses match) or class names; the most specific wins."""

    @attrs.frozen(kw_only=True)
    class Apprentice(rec.Learner):
        pass

    general = RetentionRule("P18M", Trigger.LAST_ACTIVITY)
    special = RetentionRule("P5Y", Trigger.LAST_ACTIVITY)
    schedule = Schedule({rec.Learner: general, "Apprentice": special, "Invoice": general})
    assert schedule.rules_for(rec.Learner) == (general,)
    assert schedule.rules_for(Apprentice) == (special,)
    assert schedule.rules_for(rec.Invoice) == (general,)
    assert schedule.rules_for(rec.Progress) == ()
    assert "Learner: 1 rule(s)" in repr(schedule)


def test_schedule_refuses_ambiguous_or_impossible_rules() -> None:
    """Duplicate keys, empty or duplicate-purpose rule lists and missing dates are refused."""
    rule = RetentionRule("P18M", Trigger.LAST_ACTIVITY)
    with pytest.raises(ConfigurationError):
        Schedule({rec.Learner: rule, "Learner": rule})
    with pytest.raises(ConfigurationError):
        Schedule({rec.Learner: []})
    with pytest.raises(ConfigurationError):
        Schedule({rec.Learner: [rule, RetentionRule("P2Y", Trigger.CREATED)]})
    with pytest.raises(ConfigurationError):
        Schedule({rec.Learner: RetentionRule("P1Y", Trigger.ISSUED)})
    with pytest.raises(ConfigurationError):
        Schedule({rec.Consent: RetentionRule("P1Y", Trigger.CLOSED)})
    with pytest.raises(ConfigurationError):
        Schedule({rec.Consent: RetentionRule("P1Y", Trigger.CREATED, where={"funder": "opco"})})
    with pytest.raises(ConfigurationError):
        Schedule({rec.Learner: "P18M"})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError):
        Schedule([(rec.Learner, rule)])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Schedule({3: rule})  # type: ignore[dict-item]


def test_rules_of_a_type_are_kept_in_canonical_order() -> None:
    """Several purposes are sorted by purpose, whatever order they were declared in."""
    billing = RetentionRule("P10Y", Trigger.ISSUED, purpose="billing", minimum=True)
    marketing = RetentionRule("P18M", Trigger.LAST_ACTIVITY, purpose="marketing")
    one = Schedule({rec.Invoice: [marketing, billing]})
    other = Schedule({rec.Invoice: [billing, marketing]})
    assert one.rules_for(rec.Invoice) == other.rules_for(rec.Invoice) == (billing, marketing)


def test_cutoffs_tell_a_store_what_to_compare() -> None:
    """Schedule.cutoffs gives per rule and trigger the column, where it lives and the bound."""
    schedule = Schedule(
        {
            rec.Learner: RetentionRule(
                "P18M", Trigger.LAST_ACTIVITY, fallback=Trigger.CREATED, basis=LawfulBasis.CONTRACT
            ),
            rec.Progress: RetentionRule("P18M", Trigger.LAST_ACTIVITY),
            "Invoice": RetentionRule("P10Y", Trigger.FISCAL_YEAR_END, minimum=True),
        }
    )
    now = at(2026, 1, 1)
    rows = {(c.record_type, c.trigger): c for c in schedule.cutoffs(now)}
    assert set(rows) == {
        (rec.Learner, Trigger.LAST_ACTIVITY),
        (rec.Learner, Trigger.CREATED),
        (rec.Progress, Trigger.LAST_ACTIVITY),
        ("Invoice", Trigger.FISCAL_YEAR_END),
    }
    own = rows[(rec.Learner, Trigger.LAST_ACTIVITY)]
    assert (own.field, own.on_subject, own.value) == ("last_activity_at", False, at(2024, 7, 1))
    joined = rows[(rec.Progress, Trigger.LAST_ACTIVITY)]
    assert (joined.field, joined.on_subject) == ("last_activity_at", True)
    created = rows[(rec.Learner, Trigger.CREATED)]
    assert created.field == "created_at"
    fiscal = rows[("Invoice", Trigger.FISCAL_YEAR_END)]
    # Invoices of fiscal year 2015 (closed 2016-01-01 00:00) have ended on 2026-01-01.
    assert fiscal.field == "issued_at"
    assert fiscal.value == at(2015, 12, 31, 23, 59, 59, 999_999)
    with pytest.raises(ConfigurationError):
        Schedule({"NoSuchRecord": RetentionRule("P1Y", Trigger.CREATED)}).cutoffs(now)
    with pytest.raises(ValidationError):
        schedule.cutoffs(dt.datetime(2026, 1, 1))
