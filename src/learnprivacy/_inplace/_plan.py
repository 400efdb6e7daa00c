"""Decisions on the rows of declared tables: erasure requests and retention sweeps.

The retention engine of ``learnprivacy.retention`` decides, unchanged: the rules of a
model are those its :class:`~learnprivacy.retention.Schedule` declares for the model
class (or its name), legal minimums and holds are respected the same way as in the
store. This module only turns rows into record views, finds the hold that covers a row
(a hold's ``record_type`` may be the model class, its name or its table name) and groups
the decisions by table and action, ready for an integration to carry out in SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from learnprivacy._inplace._spec import ModelSpec, RecordView
from learnprivacy._vocabulary import Action, Article
from learnprivacy.errors import ValidationError
from learnprivacy.retention import Decision, Hold, Schedule
from learnprivacy.retention._decide import decide, unscheduled_erasure

__all__ = [
    "ErasurePlan",
    "RowDecision",
    "check_holds",
    "decide_on_request",
    "decide_routine",
    "hold_for",
    "plan_erasure",
    "with_activity",
]


def check_holds(holds: Iterable[object]) -> tuple[Hold, ...]:
    """``holds`` as a tuple; ``ValidationError`` unless every item is a :class:`Hold`."""
    found = tuple(holds)
    checked = tuple(h for h in found if isinstance(h, Hold))
    if len(checked) != len(found):
        raise ValidationError("holds must be Hold objects", field="holds")
    return checked


def _type_matches(selector: type | str, spec: ModelSpec) -> bool:
    if isinstance(selector, type):
        return issubclass(spec.model, selector)
    return selector in (spec.name, spec.table) or any(
        cls.__name__ == selector for cls in spec.model.__mro__
    )


def hold_for(spec: ModelSpec, view: RecordView, holds: Sequence[Hold]) -> Hold | None:
    """The first hold covering the row ``view`` of ``spec``'s table, or ``None``."""
    for hold in holds:
        if hold.record_type is not None and not _type_matches(hold.record_type, spec):
            continue
        if hold.record_id is not None and view.__dict__.get("id") != hold.record_id:
            continue
        if hold.subject is not None and subject_of(spec, view) != hold.subject:
            continue
        return hold
    return None


def subject_of(spec: ModelSpec, view: RecordView) -> str | None:
    """The learner id of the row ``view``."""
    values = view.__dict__
    return values.get("id") if spec.is_subject_table else values.get("learner_id")


def with_activity(view: RecordView | None, latest: dt.datetime | None, subject: str) -> Any:
    """The learner's view with ``last_activity_at`` the latest their rows show.

    ``latest`` is the latest value of the ``Privacy(activity=...)`` columns over every
    declared table of the learner (progress recorded, posts, logins), as the store's
    sweep counts activity from the learner's records: an account whose own login date
    lags behind recent progress is still active. Without an account row (``view`` is
    ``None``) the learner is seen through their rows alone.
    """
    if latest is None:
        return view
    if view is None:
        return RecordView({"id": subject, "last_activity_at": latest})
    own = view.__dict__.get("last_activity_at")
    if own is not None and own >= latest:
        return view
    return type(view)({**view.__dict__, "last_activity_at": latest})


def _rules(spec: ModelSpec, schedule: Schedule, view: RecordView) -> tuple[Any, ...]:
    return tuple(rule for rule in schedule.rules_for(spec.model) if rule.applies_to(view))


def decide_on_request(
    spec: ModelSpec,
    view: RecordView,
    *,
    subject: RecordView | None,
    now: dt.datetime,
    holds: Sequence[Hold],
    schedule: Schedule | None,
) -> Decision:
    """What an erasure request does to one row (GDPR Art. 17).

    Without a schedule: a hold restricts (Art. 17(3)(e)), a table processed under legal
    obligation or public task is restricted (Art. 17(3)(b)), everything else is erased
    (Art. 17(1)). With one, the schedule decides with ``erasure_requested=True``: legal
    minimums still running restrict, a missing date asks for review.
    """
    hold = hold_for(spec, view, holds)
    if schedule is None:
        action, article, reason = unscheduled_erasure(spec.privacy.basis, hold)
        return Decision(
            action=action,
            due_at=now if action is Action.ERASE else None,
            rule=None,
            reason=f"{reason} ({article})",
            article=article,
            hold=hold,
        )
    return decide(
        view,
        _rules(spec, schedule, view),
        view if spec.is_subject_table else subject,
        now=now,
        hold=hold,
        erasure_requested=True,
        override=None,
    )


def decide_routine(
    spec: ModelSpec,
    view: RecordView,
    *,
    subject: RecordView | None,
    now: dt.datetime,
    holds: Sequence[Hold],
    schedule: Schedule,
) -> Decision:
    """What a retention sweep does to one row at ``now`` (no request)."""
    return decide(
        view,
        _rules(spec, schedule, view),
        view if spec.is_subject_table else subject,
        now=now,
        hold=hold_for(spec, view, holds),
        erasure_requested=False,
        override=None,
    )


@attrs.frozen(kw_only=True)
class RowDecision:
    """One row and what was decided for it."""

    spec: ModelSpec
    key: Any
    subject: str
    decision: Decision


@attrs.frozen(kw_only=True)
class ErasurePlan:
    """What an erasure request does to every row of one learner, grouped for SQL.

    ``erase``/``restrict`` map a table name to the keys of its rows; rows a request
    sends to review are restricted too (kept, not processed, until a person decides).
    ``shred_scopes`` are the key scopes no kept row needs any more: they are shredded
    once the transaction that erased the rows has committed; ``kept_scopes`` stay.
    """

    subject: str
    rows: tuple[RowDecision, ...]
    erase: Mapping[str, tuple[Any, ...]]
    restrict: Mapping[str, tuple[Any, ...]]
    shred_scopes: tuple[str, ...]
    kept_scopes: tuple[str, ...]

    @property
    def erased(self) -> int:
        """How many rows are erased."""
        return sum(len(keys) for keys in self.erase.values())

    @property
    def restricted(self) -> int:
        """How many rows are kept, restricted (legal minimum, hold or review)."""
        return sum(len(keys) for keys in self.restrict.values())


def plan_erasure(
    subject: str,
    rows: Iterable[tuple[ModelSpec, Any, RecordView]],
    *,
    specs: Iterable[ModelSpec],
    now: dt.datetime,
    holds: Sequence[Hold],
    schedule: Schedule | None,
) -> ErasurePlan:
    """Decide every row of ``subject`` (``(spec, key, view)`` each) for an erasure request.

    ``specs`` are every bound model: scopes used by none of the learner's kept rows are
    shredded, including scopes of tables where the learner has no row (nothing is lost,
    and no key of theirs survives by accident). While any row of the learner is kept,
    their account row (in the table whose key is the learner id) is kept too, restricted:
    the kept rows refer to it.
    """
    found = list(rows)
    account = next((view for spec, _key, view in found if spec.is_subject_table), None)
    decided = [
        (
            spec,
            key,
            decide_on_request(spec, view, subject=account, now=now, holds=holds, schedule=schedule),
        )
        for spec, key, view in found
    ]
    # The account row is what the kept rows refer to (by foreign key, and to be of use at
    # all): while any row of the learner is kept, the account is kept too, restricted.
    others_kept = any(
        d.action is not Action.ERASE for spec, _key, d in decided if not spec.is_subject_table
    )
    decisions: list[RowDecision] = []
    erase: dict[str, list[Any]] = {}
    restrict: dict[str, list[Any]] = {}
    kept: set[str] = set()
    for spec, key, decision in decided:
        if spec.is_subject_table and others_kept and decision.action is Action.ERASE:
            decision = Decision(
                action=Action.RESTRICT,
                due_at=None,
                rule=decision.rule,
                reason="erasure requested but rows of the learner kept by law or a hold refer "
                f"to the account: kept with them, restricted ({Article.ART_17_3_B})",
                article=Article.ART_17_3_B,
            )
        decisions.append(RowDecision(spec=spec, key=key, subject=subject, decision=decision))
        if decision.action is Action.ERASE:
            erase.setdefault(spec.table, []).append(key)
        else:
            restrict.setdefault(spec.table, []).append(key)
            if spec.personal:
                kept.add(spec.scope)
    scopes = sorted({spec.scope for spec in specs if spec.personal})
    return ErasurePlan(
        subject=subject,
        rows=tuple(decisions),
        erase={k: tuple(v) for k, v in erase.items()},
        restrict={k: tuple(v) for k, v in restrict.items()},
        shred_scopes=tuple(s for s in scopes if s not in kept),
        kept_scopes=tuple(sorted(kept)),
    )
