"""The SQL side of a sweep: which columns to read and which rows can be candidates.

For one record type, the schedule's rules become one condition that every row the
retention engine would *not* keep satisfies: rows past a rule's exact cutoff
(:meth:`RetentionRule.cutoff`), rows missing the date a rule needs, rows no rule selects.
Learner-level triggers read the learner's row through an outer join. A rule that reads
something SQL cannot see makes every row a candidate: the engine still decides.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, and_, false, not_, or_, select, true

from learnprivacy.errors import ConfigurationError
from learnprivacy.retention import Action, RetentionRule, Trigger
from learnprivacy.store._actions import unanonymised
from learnprivacy.store._codec import column_value
from learnprivacy.store._schema import ANONYMISED, RESTRICTED, Kind, RecordTable
from learnprivacy.store._types import to_utc

if TYPE_CHECKING:
    from learnprivacy.store._core import StoreCore as Store

__all__ = ["Selection"]


class _Unknown(Exception):
    """A rule reads something SQL cannot see: every row becomes a candidate."""


class Selection:
    """Columns, join and candidate condition of the sweep of one record type."""

    def __init__(
        self, store: Store, rt: RecordTable, rules: tuple[RetentionRule, ...], now: dt.datetime
    ) -> None:
        self.rt, self.rules, self.now = rt, rules, now
        self.dialect = store._db.engine.dialect.name
        self.learner_rt = store._table("Learner") if rt.has_learner else None
        self.subject_alias = None if self.learner_rt is None else self.learner_rt.table.alias("s")
        self.join = rt.has_learner and any(
            t.on_subject for rule in self.rules for t in rule.triggers
        )
        for rule in self.rules:
            for name, _ in rule.where:
                spec = next((f for f in rt.fields if f.name == name), None)
                if spec is not None and spec.encrypted:
                    raise ConfigurationError(
                        f"a rule for {rt.name} selects on encrypted field {name}: "
                        "the store cannot sweep it without decrypting every row"
                    )

    def _needed(self) -> tuple[set[str], set[str]]:
        """Fields of the record, and of its learner, that the rules and holds read."""
        own = {"id", self.rt.subject_column, "basis"}
        on_subject = {"id"}
        for rule in self.rules:
            own.update(name for name, _ in rule.where)
            for trigger in rule.triggers:
                field = trigger.field_for(self.rt.cls)
                (on_subject if trigger.on_subject and self.rt.has_learner else own).add(field)
        return own, on_subject

    def columns(self) -> tuple[list[Any], dict[str, int], dict[str, int]]:
        table = self.rt.table
        own, on_subject = self._needed()
        wanted = {RESTRICTED}
        for spec in self.rt.fields:
            if spec.name in own and not spec.encrypted:
                wanted.update(spec.columns)
        clear = [c for c in table.columns if c.name in wanted]
        columns: list[Any] = list(clear)
        positions = {c.name: i for i, c in enumerate(clear)}
        subject_positions: dict[str, int] = {}
        if self.join:
            assert self.subject_alias is not None  # set whenever join is
            for c in self.subject_alias.columns:
                if c.name not in on_subject:
                    continue
                subject_positions[c.name] = len(columns)
                columns.append(c.label(f"s__{c.name}"))
        return columns, positions, subject_positions

    def _anchor(self, trigger: Trigger) -> ColumnElement[Any]:
        field = trigger.field_for(self.rt.cls)
        if trigger.on_subject and self.rt.has_learner:
            assert self.learner_rt is not None
            assert self.subject_alias is not None
            specs, source = self.learner_rt.fields, self.subject_alias
        else:
            specs, source = self.rt.fields, self.rt.table
        spec = next((f for f in specs if f.name == field), None)
        if spec is None or spec.encrypted or spec.kind is not Kind.DATETIME:
            raise _Unknown
        return source.c[field]

    def _expired(self, rule: RetentionRule) -> ColumnElement[bool]:
        first = self._anchor(rule.trigger)
        cut = rule.cutoff(self.now, rule.trigger)
        out = false() if cut is None else and_(first.isnot(None), first <= to_utc(cut))
        if rule.fallback is not None:
            second = self._anchor(rule.fallback)
            cut2 = rule.cutoff(self.now, rule.fallback)
            if cut2 is not None:
                out = or_(out, and_(first.is_(None), second.isnot(None), second <= to_utc(cut2)))
        return out

    def _missing(self, rule: RetentionRule) -> ColumnElement[bool]:
        missing: ColumnElement[bool] = self._anchor(rule.trigger).is_(None)
        if rule.fallback is not None:
            missing = and_(missing, self._anchor(rule.fallback).is_(None))
        return missing

    def _selects(self, rule: RetentionRule) -> ColumnElement[bool]:
        specs = {f.name: f for f in self.rt.fields}
        parts: list[ColumnElement[bool]] = []
        for name, value in rule.where:
            spec = specs.get(name)
            if spec is None or spec.kind is Kind.SCORE:
                raise _Unknown
            column = self.rt.table.c[name]
            if value is None:
                parts.append(column.is_(None))
            else:
                parts.append(and_(column.isnot(None), column == column_value(spec, value)))
        return and_(true(), *parts)

    def candidates(self) -> ColumnElement[bool]:
        """A condition every row the engine would not keep satisfies (a superset)."""
        try:
            missing = [
                and_(self._selects(r), self._missing(r))
                for r in self.rules
                if r.on_missing_anchor is Action.REVIEW
            ]
            ended = and_(*(or_(not_(self._selects(r)), self._expired(r)) for r in self.rules))
            return or_(ended, *missing)
        except _Unknown:
            return true()

    def query(self, columns: list[Any], condition: ColumnElement[bool]) -> Select[Any]:
        table = self.rt.table
        query = select(*columns).select_from(table)
        if self.join:
            alias = self.subject_alias
            assert alias is not None
            query = select(*columns).select_from(
                table.outerjoin(
                    alias,
                    and_(alias.c.id == table.c.learner_id, alias.c[ANONYMISED].is_(None)),
                )
            )
        # Pages are read in id order from the last one: through the primary key, not by
        # walking and sorting every live row for each page.
        return query.where(unanonymised(table, self.dialect), condition)
