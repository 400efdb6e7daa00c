"""The retention invariants, checked record by record (see ``assert_schedule_invariants``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from learnprivacy.retention import Action, Hold, RetentionRule, Schedule

__all__ = ["assert_schedule_invariants", "check", "check_cutoff", "subject_of_record"]

_MICROSECOND = dt.timedelta(microseconds=1)


def check(condition: bool, message: str) -> None:
    # An explicit raise, not assert: the checks must hold under ``python -O`` too.
    if not condition:
        raise AssertionError(message)


def _later(moment: dt.datetime, days: int) -> dt.datetime | None:
    try:
        return moment + dt.timedelta(days=days)
    except OverflowError:
        return None


def subject_of_record(record: Any, learners: Mapping[str, Any]) -> Any:
    if not hasattr(record, "learner_id"):
        return record
    return learners.get(record.learner_id)


def assert_schedule_invariants(
    schedule: Schedule,
    records: Iterable[Any],
    *,
    now: dt.datetime,
    learners: Mapping[str, Any] | None = None,
    holds: Iterable[Hold] = (),
) -> None:
    """Check the retention invariants for every record at ``now``; raise ``AssertionError``.

    Messages name the record type, the rule and the invariant, never a personal value.
    """
    records = list(records)
    learners = dict(learners or {})
    holds = tuple(holds)
    reordered = Schedule({k: list(reversed(v)) for k, v in schedule.entries.items()})
    planned = schedule.plan(records, now=now, learners=learners, holds=holds).grouped()
    by_plan = {id(r): action for action, group in planned.items() for r in group}
    for record in records:
        _check_record(schedule, reordered, record, now, subject_of_record(record, learners), holds)
        decision = schedule.evaluate(
            record, now=now, learner=subject_of_record(record, learners), holds=holds
        )
        kind = type(record).__name__
        check(by_plan[id(record)] is decision.action, f"{kind}: plan disagrees with evaluate")


def _check_record(
    schedule: Schedule,
    reordered: Schedule,
    record: Any,
    now: dt.datetime,
    subject: Any,
    holds: tuple[Hold, ...],
) -> None:
    kind = type(record).__name__

    def evaluate(at: dt.datetime, *, request: bool = False, held: bool = True) -> Any:
        return schedule.evaluate(
            record, now=at, subject=subject, holds=holds if held else (), erasure_requested=request
        )

    decision = evaluate(now)
    request = evaluate(now, request=True)
    if any(h.matches(record) for h in holds):
        check(not decision.destructive, f"{kind}: a held record would be erased")
        check(not request.destructive, f"{kind}: a held record would be erased on request")
    check(decision == evaluate(now), f"{kind}: evaluation is not deterministic")
    check(
        decision == reordered.evaluate(record, now=now, subject=subject, holds=holds),
        f"{kind}: decision depends on the order of the rules",
    )
    rules = schedule.applicable_rules(record)
    for rule in rules:
        due = rule.due_at(record, subject)
        if rule.minimum and (due is None or now < due):
            check(
                not request.destructive,
                f"{kind}: erased inside the legal minimum of rule '{rule.label}'",
            )
        if rule.anchor(record, subject) is None:
            check(not decision.destructive, f"{kind}: erased without a date for '{rule.label}'")
        check_cutoff(rule, record, subject, now, due, kind)
    free = evaluate(now, held=False)
    if free.due_at is None or not rules:
        return
    before = free.due_at - _MICROSECOND
    check(
        evaluate(before, held=False).action is Action.KEEP,
        f"{kind}: acted on before its due instant ('{free.rule.label if free.rule else ''}')",
    )
    at_due = evaluate(free.due_at, held=False)
    check(at_due.due_at == free.due_at, f"{kind}: due date moved with now")
    check(at_due.action in {r.action for r in rules}, f"{kind}: not acted on at its due instant")
    if now >= free.due_at:
        for days in (1, 400, 4000):
            later = _later(now, days)
            if later is not None:
                check(
                    evaluate(later, held=False).action is free.action,
                    f"{kind}: expired record no longer expired later on",
                )


def check_cutoff(
    rule: RetentionRule,
    record: Any,
    subject: Any,
    now: dt.datetime,
    due: dt.datetime | None,
    kind: str,
) -> None:
    """``record``'s dates are all at or before ``rule.cutoff(now)`` iff ``due <= now``.

    ``due`` is ``rule.due_at(record, subject)``; ``kind`` names the record in the message.
    A record with none of the rule's dates is not checked.
    """
    present = [
        (raw, rule.cutoff(now, trigger))
        for trigger in rule.triggers
        if (raw := rule.read(trigger, record, subject)) is not None
    ]
    if present:
        by_cutoff = all(cut is not None and raw <= cut for raw, cut in present)
        by_due = due is not None and due <= now
        check(by_cutoff == by_due, f"{kind}: cutoff and due date disagree for '{rule.label}'")
