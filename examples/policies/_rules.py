"""The kinds of retention rule the five seed policies have in common.

Each kind ties a lawful basis to the event that ends its purpose, so a policy module says
only what its text decides: the period, the purpose, and what differs (an action, a
``where``, a mode). The seed line each rule comes from stays cited where the module uses it.
"""

from __future__ import annotations

from typing import Any

from learnprivacy.basis import LawfulBasis
from learnprivacy.retention import Action, Period, RetentionRule, Trigger

__all__ = ["after_contract", "after_last_activity", "after_withdrawal", "legal_minimum", "logged"]


def _after_end(
    end: Trigger, basis: LawfulBasis, period: Period | str, purpose: str, **options: Any
) -> RetentionRule:
    """Kept ``period`` after ``end``, the event that ends what ``basis`` rests on. Before
    that event there is no date: the clock has not started, so the record is kept (KEEP),
    not flagged for review."""
    return RetentionRule(
        period, end, on_missing_anchor=Action.KEEP, purpose=purpose, basis=basis, **options
    )


def after_contract(period: Period | str, purpose: str, **options: Any) -> RetentionRule:
    """Kept ``period`` after the contract ends (basis: the contract); kept while the
    contract runs."""
    return _after_end(Trigger.CONTRACT_END, LawfulBasis.CONTRACT, period, purpose, **options)


def after_withdrawal(period: Period | str, purpose: str, **options: Any) -> RetentionRule:
    """Kept ``period`` after the consent is withdrawn (basis: consent), as the proof of
    the past lawfulness; kept while the consent stands."""
    return _after_end(Trigger.WITHDRAWN, LawfulBasis.CONSENT, period, purpose, **options)


def after_last_activity(
    period: Period | str, purpose: str, basis: LawfulBasis, **options: Any
) -> RetentionRule:
    """Kept ``period`` after the learner's last activity, counted from the account's
    creation for a learner who never connected."""
    return RetentionRule(
        period,
        Trigger.LAST_ACTIVITY,
        fallback=Trigger.CREATED,
        purpose=purpose,
        basis=basis,
        **options,
    )


def legal_minimum(
    period: Period | str, trigger: Trigger, purpose: str, **options: Any
) -> RetentionRule:
    """Kept at least ``period`` after ``trigger`` by a legal obligation (accounting,
    funding files): an erasure request cannot shorten it, it becomes a restriction."""
    return RetentionRule(
        period,
        trigger,
        minimum=True,
        purpose=purpose,
        basis=LawfulBasis.LEGAL_OBLIGATION,
        **options,
    )


def logged(period: Period | str, purpose: str) -> RetentionRule:
    """Kept ``period`` after the event it logs (basis: legitimate interests, e.g. the
    security of the platform)."""
    return RetentionRule(
        period, Trigger.CREATED, purpose=purpose, basis=LawfulBasis.LEGITIMATE_INTERESTS
    )
