"""Checking anonymised rows after the fact: they must no longer identify anyone.

An anonymisation that leaves a ciphertext, a learner id or an exact date behind is not
one, whatever the code that ran meant to do. :func:`check_anonymised` reads the stored
rows themselves (every column, not the decoded record) and compares them with what
identified the people before: their record ids, learner ids and personal values.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Engine, Table, bindparam, event, select

from learnprivacy._validators import require_aware
from learnprivacy.errors import IntegrityError
from learnprivacy.records import fields_of
from learnprivacy.records._base import record_type, subject_of
from learnprivacy.store._actions import RANDOM_SUBJECT
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
# Up to this many learner ids of one length are searched for one by one.
_FEW = 8


class _Known:
    """What identified the people of ``known``: ids, learner ids, personal values."""

    __slots__ = ("coarse", "exact", "learners", "seen", "shortest", "spelled", "types")

    def __init__(
        self, known: Iterable[Any], learner_ids: Iterable[str], record_ids: Iterable[Any]
    ) -> None:
        ids: set[str] = set()
        self.learners: set[str] = set(learner_ids)
        values: set[str] = set()
        types: dict[str, type[Any]] = {}
        for type_name, record_id in record_ids:
            if type_name not in types:
                types[type_name] = record_type(type_name)
            ids.add(record_id)
        for record in known:
            cls = type(record)
            if cls.__name__ not in types:
                types[cls.__name__] = cls
            ids.add(record.id)
            self.learners.add(subject_of(record))
            for name in _personal_fields(cls):
                value = getattr(record, name, None)
                if isinstance(value, str) and len(value) >= _MIN_VALUE_LENGTH:
                    values.add(value)
        self.types = types
        #: Every id, learner id and personal value: a value equal to one names someone.
        self.exact: frozenset[str] = frozenset(ids | self.learners | values)
        # Learner ids of 3 characters or more, by length: whether a value spells one is
        # asked of each stretch of the value that long, not of each learner (an
        # anonymisation of thousands of learners re-checks each row against all of them).
        by_length: dict[int, set[str]] = {}
        for learner in self.learners:
            if len(learner) >= 3:
                by_length.setdefault(len(learner), set()).add(learner)
        self.spelled: tuple[tuple[int, frozenset[str], bool], ...] = tuple(
            (length, frozenset(group), len(group) <= _FEW)
            for length, group in sorted(by_length.items())
        )
        #: No value shorter than this can spell a learner id.
        self.shortest = self.spelled[0][0] if self.spelled else 0
        #: The answers already given (rows of one re-check repeat most of their values).
        self.seen: dict[str, bool] = {}
        self.coarse: dict[Any, bool] = {}

    def generalised(self, value: Any, granularity: Any) -> bool:
        """Whether the date ``value`` is already generalised to ``granularity`` (answers
        kept for this re-check: its rows share a handful of generalised dates)."""
        answer = self.coarse.get(value)
        if answer is None:
            answer = self.coarse[value] = granularity.generalise(value) == value
        return answer

    def names(self, value: str) -> bool:
        """Whether ``value`` is a known id or personal value, or spells a learner id."""
        answer = self.seen.get(value)
        if answer is None:
            answer = self.seen[value] = self._names(value)
        return answer

    def _names(self, value: str) -> bool:
        if value in self.exact:
            return True
        # An id of the form the anonymisation draws at random (32 hex digits) spells a
        # short learner id by chance (for "2026", once in about 2,300 ids), which names
        # nobody; a learner id of _BY_CHANCE characters or more inside it is no chance
        # ("anon-" and a learner's own 32-hex id names that learner).
        least = _BY_CHANCE if RANDOM_SUBJECT.fullmatch(value) else 0
        size = len(value)
        if not self.spelled or size < self.shortest:
            return False
        for length, group, few in self.spelled:
            if length > size:
                break  # the lengths are sorted: no longer id fits either
            if length < least:
                continue
            if few:
                for learner in group:
                    at = value.find(learner)
                    while at >= 0:
                        if _spelled(value, at, length):
                            return True
                        at = value.find(learner, at + 1)
            elif any(
                value[at : at + length] in group and _spelled(value, at, length)
                for at in range(size - length + 1)
            ):
                return True
        return False


_DIGITS = frozenset("0123456789")


def _spelled(value: str, at: int, length: int) -> bool:
    """Whether the learner id found at ``value[at : at + length]`` is spelled there: not
    when a digit at its edge runs on into a digit of the value (learner ``123`` is not in
    course ``1234`` nor in ``mod-5123``: a number inside a longer number is another
    number). Letters around it do not matter (``quiz-for-learner-0042``, ``xL0042``)."""
    end = at + length
    if at and value[at] in _DIGITS and value[at - 1] in _DIGITS:
        return False
    return not (end < len(value) and value[end - 1] in _DIGITS and value[end] in _DIGITS)


#: The shortest learner id that no random id spells by chance: 17 places in 32 hex
#: digits, each matching one id with odds of 16**-16 (about one in 10**18 per id and row).
_BY_CHANCE = 16

_PERSONAL_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _personal_fields(cls: type[Any]) -> tuple[str, ...]:
    """The names of the personal fields of a record class (looked up once per class)."""
    names = _PERSONAL_FIELDS.get(cls)
    if names is None:
        names = _PERSONAL_FIELDS[cls] = tuple(f.name for f in fields_of(cls) if f.personal)
    return names


class _Plan:
    """How one record table's anonymised rows are read and checked, made once per table
    and database dialect: the ``SELECT`` compiled to the driver's SQL, the decoders of
    the columns that need one, and per field which columns it has and what it may hold."""

    __slots__ = (
        "_dialect",
        "_positional",
        "decoders",
        "emptied",
        "others",
        "since_bind",
        "sql",
        "table",
    )

    def __init__(self, rt: RecordTable, dialect: Any) -> None:
        table = rt.table
        self.table = table
        columns = list(table.c)
        position = {column.name: n for n, column in enumerate(columns)}
        anonymised = table.c[ANONYMISED]
        query = select(*columns).where(
            anonymised.isnot(None), anonymised >= bindparam("since", type_=anonymised.type)
        )
        compiled = query.compile(dialect=dialect)
        self.sql = compiled.string
        bind = anonymised.type.dialect_impl(dialect).bind_processor(dialect)
        self.since_bind: Callable[[Any], Any] = bind or _same
        # ``{"since": value}`` for named paramstyles, ``(value,)`` for positional ones.
        self._positional = compiled.positional
        self._dialect = dialect
        #: Made from the first result's description (PostgreSQL's decoders depend on the
        #: type the server reports).
        self.decoders: list[tuple[int, Callable[[Any], Any]]] | None = None
        quasi = {f.name for f in fields_of(rt.cls) if f.quasi_identifier}
        # Per kind of field, the defect it is counted under and its columns' positions.
        #: Personal fields: any value left is a defect (a ciphertext, a personal value).
        self.emptied: list[tuple[str, tuple[int, ...]]] = []
        #: Other fields: a value naming someone, and (quasi-identifier dates) a date more
        #: precise than the store's granularity.
        self.others: list[tuple[str, tuple[int, ...], str | None]] = []
        for spec in rt.fields:
            label = f"{rt.name}.{spec.name}"
            where = tuple(position[column] for column in spec.columns)
            if spec.personal and spec.encrypted:
                self.emptied.append((f"{label} keeps its ciphertext", where))
            elif spec.personal and not spec.identifier:
                self.emptied.append((f"{label} keeps a personal value", where))
            else:
                dated = spec.kind in _DATES and spec.name in quasi
                self.others.append(
                    (
                        f"{label} names a known record, learner or value",
                        where,
                        f"{label} keeps an exact date" if dated else None,
                    )
                )

    def params(self, since: dt.datetime) -> Any:
        """The driver's parameters for anonymised at or after ``since``."""
        value = self.since_bind(to_utc(since))
        return (value,) if self._positional else {"since": value}

    def decoders_for(self, description: Sequence[Any]) -> list[tuple[int, Callable[[Any], Any]]]:
        """The result processors of the columns that have one, for a cursor's
        ``description`` of this plan's statement."""
        if self.decoders is None:
            dialect = self._dialect
            found: list[tuple[int, Callable[[Any], Any]]] = []
            for n, column in enumerate(self.table.c):
                impl = column.type.dialect_impl(dialect)
                decode = impl.result_processor(dialect, description[n][1])
                if decode is not None:
                    found.append((n, decode))
            self.decoders = found
            return found
        return self.decoders

    def decode(
        self, raw: Sequence[Any], decoders: list[tuple[int, Callable[[Any], Any]]]
    ) -> Sequence[Any]:
        """A driver row with the values the store's column types make of it."""
        if not decoders:
            return raw
        row = list(raw)
        for n, decode in decoders:
            value = row[n]
            if value is not None:
                row[n] = decode(value)
        return row

    def problems(
        self, row: Sequence[Any], known: _Known, granularity: Any, found: dict[str, int]
    ) -> None:
        """Count into ``found`` what still identifies someone in one decoded ``row``
        (each field at most once per row)."""
        for problem, where in self.emptied:
            for n in where:
                if row[n] is not None:
                    found[problem] = found.get(problem, 0) + 1
                    break
        names = known.names
        for problem, where, exact_date in self.others:
            if len(where) == 1:
                # Most fields have one column: no generator for them.
                first = row[where[0]]
                if first is None:
                    continue
                named = isinstance(first, str) and names(first)
            else:
                first = row[where[0]]
                named = any(isinstance(row[n], str) and names(row[n]) for n in where)
            if named:
                found[problem] = found.get(problem, 0) + 1
            elif (
                exact_date is not None
                and isinstance(first, dt.date)
                and not known.generalised(first, granularity)
            ):
                found[exact_date] = found.get(exact_date, 0) + 1


def _same(value: Any) -> Any:
    return value


_PLANS: dict[tuple[Table, type[Any], str], _Plan] = {}


def _plan(rt: RecordTable, dialect: Any) -> _Plan:
    # Per dialect class and parameter style, not per engine: every store over the same
    # driver shares one plan per table.
    key = (rt.table, type(dialect), dialect.paramstyle)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _Plan(rt, dialect)
    return plan


class _Held:
    """One driver connection of a store's own SQLite engine, kept between re-checks.

    A re-check after one withdrawal reads a handful of rows: checking a connection out
    of the pool and back in (its reset, its events) cost about as much as the read. The
    connection is used by one re-check at a time (the others check one out of the pool
    as before), ends every use outside any transaction, is dropped after an error, and
    is closed when the engine is disposed (``Store.close``). Only for SQLite engines the
    store made itself: an application's engine keeps all its pooled connections, and
    PostgreSQL connections keep the pool's pre-ping.
    """

    __slots__ = ("__weakref__", "lock", "raw")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.raw: Any = None

    def close(self, *_args: Any) -> None:
        """Close the kept connection (``engine_disposed`` listener)."""
        with self.lock:
            raw, self.raw = self.raw, None
        if raw is not None:
            # Closed, not returned to a pool the engine is discarding.
            raw.invalidate()


_HELD: weakref.WeakKeyDictionary[Engine, _Held] = weakref.WeakKeyDictionary()
_HELD_LOCK = threading.Lock()


def _held(store: Store) -> _Held | None:
    """The kept connection's holder of ``store``'s engine, or ``None`` where none is kept."""
    db = store._db
    if not (db.is_sqlite and db.owned):
        return None
    engine = db.engine
    held = _HELD.get(engine)
    if held is None:
        with _HELD_LOCK:
            held = _HELD.get(engine)
            if held is None:
                held = _HELD[engine] = _Held()
                event.listen(engine, "engine_disposed", held.close)
    return held


def _read_since(
    store: Store, plans: list[_Plan], since: dt.datetime, check: Callable[[_Plan, Any], None]
) -> None:
    """Read, on one driver connection, the rows of each plan's table anonymised at or
    after ``since``; ``check`` each decoded row."""
    held = _held(store)
    if held is not None and held.lock.acquire(blocking=False):
        try:
            raw = held.raw
            if raw is None:
                raw = held.raw = store._db.engine.raw_connection()
            try:
                _read_on(raw, plans, since, check)
                # Whatever the driver opened ends here: the next re-check reads the
                # database as it is then, and no read lock outlives this one.
                raw.rollback()
            except BaseException:
                held.raw = None
                raw.invalidate()
                raise
        finally:
            held.lock.release()
        return
    raw = store._db.engine.raw_connection()
    try:
        _read_on(raw, plans, since, check)
    finally:
        # Back to the pool, which rolls back whatever transaction the driver opened.
        raw.close()


def _read_on(
    raw: Any, plans: list[_Plan], since: dt.datetime, check: Callable[[_Plan, Any], None]
) -> None:
    cursor = raw.cursor()
    try:
        for plan in plans:
            cursor.execute(plan.sql, plan.params(since))
            decoders = plan.decoders_for(cursor.description)
            while batch := cursor.fetchmany(1_000):
                for row in batch:
                    check(plan, plan.decode(row, decoders))
    finally:
        cursor.close()


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
    people and records no longer in ``known``. Names fields and counts, never values.

    A re-check after one withdrawal reads a handful of rows, so its fixed cost is most of
    it: with ``since`` and no ``ids`` the statements are compiled once per table and run
    on the driver's cursor, with no SQLAlchemy statement or result per call.
    """
    if since is not None:
        require_aware(since, "since")
    facts = _Known(known, learner_ids, record_ids)
    problems: dict[str, int] = {}
    read = 0
    granularity = store.anonymise_dates_to
    dialect = store._db.engine.dialect
    plans = {name: _plan(store._table(cls), dialect) for name, cls in sorted(facts.types.items())}

    def check(plan: _Plan, row: Sequence[Any]) -> None:
        nonlocal read
        read += 1
        plan.problems(row, facts, granularity, problems)

    if since is not None and ids is None:
        _read_since(store, list(plans.values()), since, check)
    else:
        with store._reading() as connection:
            for name, plan in plans.items():
                table = plan.table
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
                    query = select(*table.c).where(*where).execution_options(yield_per=1_000)
                    for row in connection.execute(query):
                        check(plan, row)
    if problems:
        raise IntegrityError(
            "anonymised rows still identify their subject: "
            + "; ".join(f"{what} ({count} row(s))" for what, count in sorted(problems.items()))
        )
    return read
