"""The sweep hot path: classify many records with one precomputed cutoff per rule.

:meth:`Schedule.evaluate` computes each record's due date; a sweep over millions of records
cannot afford that. Since ``date <= rule.cutoff(now)`` is exactly "the period counted from
that date has ended" (see :meth:`Period.cutoff`), a sweep computes each rule's cutoff once
and compares one date per record and rule. Dates are read with C-level ``attrgetter`` and
``map``; no decision object is allocated. Records of types the engine cannot read this way
(non-attrs classes, fields missing) and erasure requests go through ``evaluate`` instead, so
both paths always agree; the property tests check that they do.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from learnprivacy._validators import require_aware
from learnprivacy._vocabulary import RETENTION_ACTIONS
from learnprivacy.errors import ValidationError
from learnprivacy.retention._decide import expiry_action
from learnprivacy.retention._hold import Hold, type_matches
from learnprivacy.retention._loops import sweep_loop
from learnprivacy.retention._rule import RetentionRule
from learnprivacy.retention._schedule import Schedule, subject_for
from learnprivacy.retention._vocabulary import Action, Trigger

__all__ = ["Engine", "subject_map"]

# Per-rule status codes; a record's status is the minimum over its rules, so one missing
# date outranks everything and a record is expired only when every rule is.
_MISSING_REVIEW, _MISSING_KEEP, _RUNNING, _EXPIRED = 0, 1, 2, 3

Out = dict[Action, list[Any]]


def subject_map(subjects: Mapping[str, Any] | Iterable[Any] | None) -> Mapping[str, Any]:
    """Learners by id, from a mapping (checked) or an iterable of learners."""
    if subjects is None:
        return {}
    if isinstance(subjects, Mapping):
        for key, learner in subjects.items():
            if getattr(learner, "id", None) != key:
                raise ValidationError(
                    "subjects must map each learner id to that learner", field="subjects"
                )
        return subjects
    learners: Iterable[Any] = subjects
    return {item.id: item for item in learners}


@attrs.frozen
class _HoldSpec:
    everything: bool
    subjects: frozenset[str | None]
    ids: frozenset[str | None]
    pairs: frozenset[tuple[str | None, str | None]]


@attrs.frozen
class _TypeSpec:
    rules: tuple[RetentionRule, ...]
    own: bool  # the record is the learner's own account
    fast: bool
    has_where: bool


class Engine:
    """Classifies batches of records for one schedule, ``now``, subjects and holds."""

    def __init__(
        self,
        schedule: Schedule,
        now: dt.datetime,
        subjects: Mapping[str, Any],
        holds: tuple[Hold, ...],
        decide_one: Callable[[Any], Action],
    ) -> None:
        self._schedule = schedule
        self._now = now
        self._subjects = subjects
        self._holds = holds
        self.decide_one = decide_one
        self._cutoffs: dict[tuple[RetentionRule, Trigger], dt.datetime | None] = {}
        self._subject_values: dict[str, Mapping[str, Any]] = {}
        self._specs: dict[type, _TypeSpec] = {}
        self._held: dict[type, _HoldSpec | None] = {}

    # -- precomputation, once per plan ---------------------------------------------------

    def _cutoff(self, rule: RetentionRule, trigger: Trigger) -> dt.datetime | None:
        key = (rule, trigger)
        if key not in self._cutoffs:
            self._cutoffs[key] = rule.cutoff(self._now, trigger)
        return self._cutoffs[key]

    def _values_on_subject(self, field: str) -> Mapping[str, Any]:
        values = self._subject_values.get(field)
        if values is None:
            values = {}
            for key, learner in self._subjects.items():
                value = getattr(learner, field, None)
                if value is not None:
                    values[key] = require_aware(value, f"{type(learner).__name__}.{field}")
            self._subject_values[field] = values
        return values

    def _spec(self, cls: type) -> _TypeSpec:
        spec = self._specs.get(cls)
        if spec is None:
            rules = self._schedule.rules_for(cls)
            fast = attrs.has(cls)
            own = False
            if fast:
                fields = {a.name for a in attrs.fields(cls)}
                own = "learner_id" not in fields
                for rule in rules:
                    for trigger in rule.triggers:
                        on_record = not trigger.on_subject or own
                        if on_record and trigger.field_for(cls) not in fields:
                            fast = False
            has_where = any(rule.where for rule in rules)
            spec = _TypeSpec(rules=rules, own=own, fast=fast, has_where=has_where)
            self._specs[cls] = spec
        return spec

    def _hold_spec(self, cls: type) -> _HoldSpec | None:
        if cls in self._held:
            return self._held[cls]
        relevant = [
            h for h in self._holds if h.record_type is None or type_matches(h.record_type, cls)
        ]
        spec: _HoldSpec | None = None
        if relevant:
            spec = _HoldSpec(
                everything=any(h.subject is None and h.record_id is None for h in relevant),
                subjects=frozenset(h.subject for h in relevant if h.record_id is None),
                ids=frozenset(h.record_id for h in relevant if h.subject is None),
                pairs=frozenset(
                    (h.subject, h.record_id) for h in relevant if h.subject and h.record_id
                ),
            )
        self._held[cls] = spec
        return spec

    def _split_held(self, cls: type, own: bool, records: list[Any]) -> tuple[list[Any], list[Any]]:
        """``(held, free)``: the records a hold covers, and the others."""
        spec = self._hold_spec(cls)
        if spec is None or not records:
            return [], records
        if spec.everything:
            return records, []
        owners = list(map(operator.attrgetter("id" if own else "learner_id"), records))
        ids = list(map(operator.attrgetter("id"), records))
        # Set membership through map() keeps the per-record work in C.
        flags: list[bool] = [False] * len(records)
        if spec.subjects:
            flags = list(map(spec.subjects.__contains__, owners))
        if spec.ids:
            flags = list(map(operator.or_, flags, map(spec.ids.__contains__, ids)))
        if spec.pairs:
            found = map(spec.pairs.__contains__, zip(owners, ids, strict=True))
            flags = list(map(operator.or_, flags, found))
        held = list(itertools.compress(records, flags))
        free = list(itertools.compress(records, map(operator.not_, flags)))
        return held, free

    # -- classification ------------------------------------------------------------------

    def classify(self, batch: list[Any], out: Out) -> None:
        """Append every record of ``batch`` to the list of the action decided for it."""
        types = list(map(type, batch))
        first = types[0]
        if types.count(first) == len(types):
            self._classify_type(first, batch, out)
            return
        # Types in order of first appearance, so the output order is reproducible.
        for cls in dict.fromkeys(types):
            same = functools.partial(operator.is_, cls)
            self._classify_type(cls, list(itertools.compress(batch, map(same, types))), out)

    def _slow(self, records: list[Any], out: Out) -> None:
        decide_one = self.decide_one
        for record in records:
            out[decide_one(record)].append(record)

    def _classify_type(self, cls: type, records: list[Any], out: Out) -> None:
        spec = self._spec(cls)
        if not spec.fast:
            self._slow(records, out)
            return
        local: Out = {action: [] for action in RETENTION_ACTIONS}
        try:
            if not spec.has_where:
                self._classify_rules(cls, spec, spec.rules, records, local)
            else:
                buckets: dict[tuple[bool, ...], list[Any]] = {}
                for record in records:
                    key = tuple(rule.applies_to(record) for rule in spec.rules)
                    buckets.setdefault(key, []).append(record)
                for key, part in buckets.items():
                    chosen = tuple(
                        r for r, selected in zip(spec.rules, key, strict=True) if selected
                    )
                    self._classify_rules(cls, spec, chosen, part, local)
        except TypeError as exc:
            if "offset-naive" not in str(exc):
                raise
            # A naive datetime cannot be compared with the cutoff: evaluate() names the field.
            self._slow(records, out)
            return
        for action, chosen_records in local.items():
            if chosen_records:
                out[action].extend(chosen_records)

    def _column(
        self, cls: type, spec: _TypeSpec, trigger: Trigger, records: list[Any]
    ) -> Iterator[Any]:
        field = trigger.field_for(cls)
        if trigger.on_subject and not spec.own:
            values = self._values_on_subject(field)
            return map(values.get, map(operator.attrgetter("learner_id"), records))
        return map(operator.attrgetter(field), records)

    def _sweep_one(
        self,
        cls: type,
        spec: _TypeSpec,
        trigger: Trigger,
        records: list[Any],
        cut: dt.datetime,
        missing: list[Any],
        expired: list[Any],
        keep: list[Any],
    ) -> None:
        field = trigger.field_for(cls)
        on_subject = trigger.on_subject and not spec.own
        lookup = self._values_on_subject(field).get if on_subject else None
        loop = sweep_loop(field, on_subject)
        loop(records, cut, missing.append, expired.append, keep.append, lookup)

    def _status(
        self, cls: type, spec: _TypeSpec, rule: RetentionRule, records: list[Any]
    ) -> list[int]:
        missing = _MISSING_REVIEW if rule.on_missing_anchor is Action.REVIEW else _MISSING_KEEP
        first = self._column(cls, spec, rule.trigger, records)
        cut = self._cutoff(rule, rule.trigger)
        if rule.fallback is None:
            return [
                missing if a is None else (_EXPIRED if cut is not None and a <= cut else _RUNNING)
                for a in first
            ]
        second = self._column(cls, spec, rule.fallback, records)
        cut2 = self._cutoff(rule, rule.fallback)
        out = []
        # The later present date counts, so the rule has ended only if both present ended.
        for a, b in zip(first, second, strict=True):
            if a is None and b is None:
                out.append(missing)
            elif (a is None or (cut is not None and a <= cut)) and (
                b is None or (cut2 is not None and b <= cut2)
            ):
                out.append(_EXPIRED)
            else:
                out.append(_RUNNING)
        return out

    def _classify_rules(
        self,
        cls: type,
        spec: _TypeSpec,
        rules: tuple[RetentionRule, ...],
        records: list[Any],
        out: Out,
    ) -> None:
        if not rules:
            out[Action.REVIEW].extend(records)
            return
        expired_action = expiry_action(rules)
        check_holds = expired_action.destructive and bool(self._holds)
        expired: list[Any] = [] if check_holds else out[expired_action]
        keep = out[Action.KEEP]
        if len(rules) == 1 and rules[0].fallback is None:
            rule = rules[0]
            cut = self._cutoff(rule, rule.trigger)
            missing = out[rule.on_missing_anchor]
            if cut is None:
                anchors = self._column(cls, spec, rule.trigger, records)
                for record, anchor in zip(records, anchors, strict=True):
                    (missing if anchor is None else keep).append(record)
            else:
                self._sweep_one(cls, spec, rule.trigger, records, cut, missing, expired, keep)
        else:
            columns = [self._status(cls, spec, rule, records) for rule in rules]
            statuses = columns[0] if len(columns) == 1 else map(min, *columns)
            targets = (out[Action.REVIEW], keep, keep, expired)
            for record, status in zip(records, statuses, strict=True):
                targets[status].append(record)
        if check_holds:
            held, free = self._split_held(cls, spec.own, expired)
            keep.extend(held)
            out[expired_action].extend(free)


def decide_action(
    schedule: Schedule,
    now: dt.datetime,
    subjects: Mapping[str, Any],
    holds: tuple[Hold, ...],
    erasure_requested: bool,
) -> Callable[[Any], Action]:
    """The slow path: one full :meth:`Schedule.evaluate` per record."""

    def action_of(record: Any) -> Action:
        return schedule.evaluate(
            record,
            now=now,
            learner=subject_for(record, subjects),
            holds=holds,
            erasure_requested=erasure_requested,
        ).action

    return action_of
