"""The decision for one record: how rules, holds and an erasure request combine.

The order of the checks is the order of precedence, and each returns the safest answer
available: a hold before anything else, then legal minimums, then missing dates, then
the periods themselves. Rules come in their schedule's canonical order, so ties always
resolve the same way whatever order the rules were declared in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import attrs

from learnprivacy._vocabulary import Action, Article
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import RetentionViolation
from learnprivacy.retention._decision import Decision
from learnprivacy.retention._hold import Hold, Override
from learnprivacy.retention._rule import RetentionRule
from learnprivacy.retention._vocabulary import (
    PROTECTIVE_ORDER,
    RetentionMode,
)

__all__ = ["decide", "expiry_action"]

_FAR = dt.datetime.max.replace(tzinfo=dt.UTC)


@attrs.frozen
class _State:
    rule: RetentionRule
    anchor: dt.datetime | None
    due: dt.datetime | None

    @property
    def never(self) -> bool:
        return self.anchor is not None and self.due is None

    def running(self, now: dt.datetime) -> bool:
        return self.due is None or now < self.due


def _decision(*, reason: str, article: str, **fields: Any) -> Decision:
    # Every reason names its article, so an audit line read on its own says why.
    if article not in reason:
        reason = f"{reason} ({article})"
    return Decision(reason=reason, article=article, **fields)


def _review(rule: RetentionRule | None, reason: str, article: str) -> Decision:
    # A person decides: no date is due.
    return _decision(action=Action.REVIEW, due_at=None, rule=rule, reason=reason, article=article)


def unscheduled_erasure(basis: LawfulBasis | None, hold: Hold | None) -> tuple[Action, str, str]:
    """``(action, article, reason)`` for an erasure request on a record no schedule rules:
    a hold restricts it (Art. 17(3)(e)), as does processing under a basis that erasure
    does not reach, such as a legal obligation (Art. 17(3)(b)); anything else is erased
    (Art. 17(1))."""
    if hold is not None:
        return Action.RESTRICT, Article.ART_17_3_E, "a legal hold covers the record"
    if basis is not None and not basis.erasable_on_request:
        return (
            Action.RESTRICT,
            Article.ART_17_3_B,
            f"processed under {basis.article}: kept for the legal obligation, restricted",
        )
    return Action.ERASE, Article.ART_17_1, "erasure requested and no legal minimum or hold applies"


def expiry_action(rules: Sequence[RetentionRule]) -> Action:
    """The action once every rule has ended: the most protective of their actions."""
    return min((rule.action for rule in rules), key=PROTECTIVE_ORDER.__getitem__)


def _latest(states: Sequence[_State]) -> _State:
    # max() keeps the first of equal keys, and states are in canonical order.
    return max(states, key=lambda s: _FAR if s.due is None else s.due)


def _ended_due(states: Sequence[_State]) -> dt.datetime | None:
    if any(s.due is None for s in states):
        return None
    return max(s.due for s in states if s.due is not None)


def decide(
    record: object,
    rules: Sequence[RetentionRule],
    subject: object | None,
    *,
    now: dt.datetime,
    hold: Hold | None,
    erasure_requested: bool,
    override: Override | None,
) -> Decision:
    """Combine ``rules`` for ``record`` at ``now``; see :meth:`Schedule.evaluate`."""
    kind = type(record).__name__
    if not rules:
        if erasure_requested and hold is not None:
            return _held_on_request(None, None, hold)
        return _review(
            None,
            f"no retention rule covers {kind}: a person must decide and declare one",
            Article.ART_30_1_F,
        )
    states = []
    for rule in rules:
        anchor = rule.anchor_of(record, subject)
        states.append(_State(rule, anchor, None if anchor is None else rule.period_end(anchor)))
    purpose = getattr(type(record), "processing_purpose", None)
    if erasure_requested:
        return _on_request(record, states, now, hold, override, purpose)
    return _routine(states, now, hold, purpose)


def _held_on_request(rule: RetentionRule | None, due: dt.datetime | None, hold: Hold) -> Decision:
    return _decision(
        action=Action.RESTRICT,
        due_at=due,
        rule=rule,
        reason="erasure requested but a legal hold covers the record: erasure refused "
        "while the hold lasts, processing restricted",
        article=Article.ART_17_3_E,
        hold=hold,
    )


def _on_request(
    record: object,
    states: list[_State],
    now: dt.datetime,
    hold: Hold | None,
    override: Override | None,
    purpose: str | None,
) -> Decision:
    if hold is not None:
        return _held_on_request(_latest(states).rule, _ended_due(states), hold)
    running = [s for s in states if s.rule.minimum and s.running(now)]
    if running and override is not None:
        locked = [s for s in running if s.rule.mode is RetentionMode.COMPLIANCE]
        if locked:
            name = locked[0].rule.label_for(purpose)
            raise RetentionViolation(
                f"the legal minimum of rule '{name}' is in COMPLIANCE mode: "
                "no override can shorten it"
            )
        return _decision(
            action=Action.ERASE,
            due_at=now,
            rule=running[0].rule,
            reason=f"erasure requested; the GOVERNANCE-mode legal minimum of rule "
            f"'{running[0].rule.label_for(purpose)}' is bypassed by an audited override",
            article=Article.ART_17_1,
            override=override,
        )
    unknown = [s for s in running if s.anchor is None]
    if unknown:
        name = unknown[0].rule.label_for(purpose)
        return _review(
            unknown[0].rule,
            f"erasure requested but rule '{name}' has no date to tell "
            "whether its legal minimum has ended: a person must decide",
            Article.ART_17_3_B,
        )
    if running:
        binding = _latest(running)
        name = binding.rule.label_for(purpose)
        return _decision(
            action=Action.RESTRICT,
            due_at=binding.due,
            rule=binding.rule,
            reason=f"erasure requested but the legal minimum of rule '{name}' "
            "has not ended: erasure refused, processing restricted until it does",
            article=Article.ART_17_3_B,
        )
    basis = getattr(record, "basis", None)
    if (
        isinstance(basis, LawfulBasis)
        and not basis.erasable_on_request
        and not any(s.rule.minimum for s in states)
    ):
        return _review(
            states[0].rule,
            f"erasure requested for a record processed under {basis.article} but no "
            "rule declares its legal minimum: a person must decide",
            Article.ART_17_3_B,
        )
    return _decision(
        action=Action.ERASE,
        due_at=now,
        rule=states[0].rule,
        reason="erasure requested and no legal minimum or hold applies",
        article=Article.ART_17_1,
    )


def _routine(
    states: list[_State], now: dt.datetime, hold: Hold | None, purpose: str | None
) -> Decision:
    missing = [s for s in states if s.anchor is None]
    if missing:
        review = [s for s in missing if s.rule.on_missing_anchor is Action.REVIEW]
        chosen = (review or missing)[0]
        name = chosen.rule.label_for(purpose)
        if review:
            why = "a person must decide"
            action = Action.REVIEW
        else:
            why = "its period has not started"
            action = Action.KEEP
        return _decision(
            action=action,
            due_at=None,
            rule=chosen.rule,
            reason=f"no {chosen.rule.trigger.value} date for rule '{name}': {why}",
            article=Article.ART_5_1_E,
        )
    never = [s for s in states if s.never]
    if never:
        return _decision(
            action=Action.KEEP,
            due_at=None,
            rule=never[0].rule,
            reason=f"rule '{never[0].rule.label_for(purpose)}' ends beyond the supported calendar",
            article=Article.ART_5_1_E,
        )
    binding = _latest(states)
    due = binding.due
    if due is None or now < due:
        return _decision(
            action=Action.KEEP,
            due_at=due,
            rule=binding.rule,
            reason=f"retention runs under rule '{binding.rule.label_for(purpose)}'",
            article=Article.ART_5_1_E,
        )
    action = expiry_action([s.rule for s in states])
    chosen = _latest([s for s in states if s.rule.action is action])
    if action.destructive and hold is not None:
        return _decision(
            action=Action.KEEP,
            due_at=due,
            rule=chosen.rule,
            reason="retention has ended but a legal hold covers the record: kept while the "
            "hold lasts",
            article=Article.ART_17_3_E,
            hold=hold,
        )
    others = len(states) - 1
    also = f" and {others} other purpose(s)" if others else ""
    name = chosen.rule.label_for(purpose)
    reason = f"retention has ended under rule '{name}'{also}: storage limitation"
    if action is Action.ERASE:
        reason += f" ({Article.ART_5_1_E}) requires erasure"
    return _decision(
        action=action,
        due_at=due,
        rule=chosen.rule,
        reason=reason,
        article=Article.ART_17_1_A if action is Action.ERASE else Article.ART_5_1_E,
    )
