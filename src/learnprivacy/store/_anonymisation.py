"""Checking anonymised rows after the fact: they must no longer identify anyone.

An anonymisation that leaves a ciphertext, a learner id or an exact date behind is not
one, whatever the code that ran meant to do. :func:`check_anonymised` reads the stored
rows themselves (every column, not the decoded record) and compares them with what
identified the people before: their record ids, learner ids and personal values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, select

from learnprivacy._validators import require_aware
from learnprivacy.errors import IntegrityError
from learnprivacy.records import fields_of
from learnprivacy.records._base import record_type, subject_of
from learnprivacy.store._bulk import ids_in
from learnprivacy.store._common import chunked
from learnprivacy.store._schema import ANONYMISED, Kind, RecordTable
from learnprivacy.store._types import to_utc

if TYPE_CHECKING:
    from learnprivacy.store._core import StoreCore as Store

__all__ = ["check_anonymised"]

_CHUNK = 5_000
# Shorter values would be found in unrelated columns by chance ("C1", "Al").
_MIN_VALUE_LENGTH = 4
_DATES = (Kind.DATETIME, Kind.DATE)


class _Known:
    """What identified the people of ``known``: ids, learner ids, personal values."""

    def __init__(
        self, known: Iterable[Any], learner_ids: Iterable[str], record_ids: Iterable[Any]
    ) -> None:
        self.ids: set[str] = set()
        self.learners: set[str] = set(learner_ids)
        self.values: set[str] = set()
        self.types: dict[str, type[Any]] = {}
        for type_name, record_id in record_ids:
            self.types.setdefault(type_name, record_type(type_name))
            self.ids.add(record_id)
        for record in known:
            cls = type(record)
            self.types.setdefault(cls.__name__, cls)
            self.ids.add(record.id)
            self.learners.add(subject_of(record))
            for info in fields_of(cls):
                value = getattr(record, info.name, None)
                if info.personal and isinstance(value, str) and len(value) >= _MIN_VALUE_LENGTH:
                    self.values.add(value)
        self.long_learners = [i for i in self.learners if len(i) >= 3]

    def names(self, value: str) -> bool:
        """Whether ``value`` is a known id or personal value, or spells a learner id."""
        return (
            value in self.ids
            or value in self.learners
            or value in self.values
            or any(learner in value for learner in self.long_learners)
        )


def _problems_of(
    rt: RecordTable, row: Mapping[Any, Any], known: _Known, quasi: set[str], granularity: Any
) -> list[str]:
    found = []
    for spec in rt.fields:
        if spec.personal and spec.encrypted:
            if row[spec.token_column] is not None or (
                spec.blind_index and row[spec.index_column] is not None
            ):
                found.append(f"{rt.name}.{spec.name} keeps its ciphertext")
            continue
        values = [row[column] for column in spec.columns]
        if all(value is None for value in values):
            continue
        if spec.personal and not spec.identifier:
            found.append(f"{rt.name}.{spec.name} keeps a personal value")
        elif any(isinstance(value, str) and known.names(value) for value in values):
            found.append(f"{rt.name}.{spec.name} names a known record, learner or value")
        elif (
            spec.kind in _DATES
            and spec.name in quasi
            and isinstance(values[0], dt.date)
            and granularity.generalise(values[0]) != values[0]
        ):
            found.append(f"{rt.name}.{spec.name} keeps an exact date")
    return found


def check_anonymised(
    store: Store,
    known: Iterable[Any],
    *,
    ids: Mapping[str, Sequence[str]] | None = None,
    since: dt.datetime | None = None,
    learner_ids: Iterable[str] = (),
    record_ids: Iterable[tuple[str, str]] = (),
) -> int:
    """Check the anonymised rows of the record types of ``known`` (those anonymised at
    or after ``since``, or only the rows ``ids`` per type name); return how many were
    read. ``IntegrityError`` counts, per field and defect, the rows that still identify
    someone of ``known``: a ciphertext or personal value left, an id, learner id or
    personal value of ``known`` in any column, a quasi-identifier date not generalised
    to the store's granularity. ``learner_ids`` and ``record_ids`` (type name, id) name
    people and records no longer in ``known``. Names fields and counts, never values."""
    if since is not None:
        require_aware(since, "since")
    facts = _Known(known, learner_ids, record_ids)
    problems: dict[str, int] = {}
    read = 0
    granularity = store.anonymise_dates_to
    with store._reading() as connection:
        for name, cls in sorted(facts.types.items()):
            rt = store._table(cls)
            table = rt.table
            quasi = {f.name for f in fields_of(cls) if f.quasi_identifier}
            conditions: list[ColumnElement[bool]] = [table.c[ANONYMISED].isnot(None)]
            if since is not None:
                conditions.append(table.c[ANONYMISED] >= to_utc(since))
            if ids is None:
                batches: Iterable[Sequence[str] | None] = [None]
            else:
                batches = chunked(list(ids.get(name, ())), _CHUNK)
            for batch in batches:
                where = list(conditions)
                if batch is not None:
                    where.append(ids_in(table.c.id, batch, connection.dialect.name))
                query = select(table).where(*where).execution_options(yield_per=1_000)
                for row in connection.execute(query):
                    read += 1
                    for problem in _problems_of(rt, row._mapping, facts, quasi, granularity):
                        problems[problem] = problems.get(problem, 0) + 1
    if problems:
        raise IntegrityError(
            "anonymised rows still identify their subject: "
            + "; ".join(f"{what} ({count} row(s))" for what, count in sorted(problems.items()))
        )
    return read
