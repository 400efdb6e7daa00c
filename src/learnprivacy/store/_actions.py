"""The destructive actions, shared by sweeps, erasure requests and erasure replay.

Each function runs inside the caller's write transaction, after the caller has written
the audit entries that describe it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Table, bindparam, delete, func, select, update

from learnprivacy.errors import IntegrityError
from learnprivacy.records import Granularity, fields_of
from learnprivacy.store._bulk import ids_in
from learnprivacy.store._common import chunked
from learnprivacy.store._schema import ANONYMISED, REASON, RESTRICTED, Kind, RecordTable
from learnprivacy.store._types import to_utc

if TYPE_CHECKING:
    from learnprivacy.store._core import StoreCore as Store

__all__ = [
    "RANDOM_SUBJECT",
    "anonymise_rows",
    "as_written",
    "erase_rows",
    "every_row",
    "has_live_rows",
    "live_keys",
    "random_subject",
    "restrict_rows",
    "scopes_in_use",
    "shred_keys",
    "unanonymised",
]

_CHUNK = 5_000


def unanonymised(table: Table, dialect: str) -> ColumnElement[bool]:
    """ "Not anonymised", for a statement that finds its rows another way: by a list of
    ids or subjects (``ids_in``), or a page at a time in id order.

    Without statistics SQLite's planner takes ``lp_anonymised_at IS NULL`` for an
    equality on an index and prefers it to the list or the primary key: it then walks
    every live row of the table (and sorts them for a page), for each page of a sweep,
    instead of looking the listed rows up or reading on from the last id. Wrapped in
    ``likely()`` (the value unchanged) the term uses no index.
    """
    column = table.c[ANONYMISED]
    if dialect == "sqlite":
        return func.likely(column).is_(None)
    return column.is_(None)


def random_subject() -> str:
    """A random identifier replacing a learner id on anonymisation (irreversible)."""
    return "anon-" + os.urandom(16).hex()


#: What :func:`random_subject` draws, and nothing else.
RANDOM_SUBJECT = re.compile(r"anon-[0-9a-f]{32}")


def every_row(changed: int, planned: int, table: str, done: str) -> int:
    """``changed``, the rows a statement over ``planned`` rows of ``table`` changed, when
    that is every one of them; else ``IntegrityError`` (the caller's transaction rolls
    back, its audit entries with it, and no key is shredded). For rows read and locked in
    the same write transaction, where only the database itself (a trigger, a rule, a
    row-level security policy) can skip one: an outcome is never reported for a row that
    kept its data. The store and both in-place integrations check their statements
    through it."""
    if changed != planned:
        raise IntegrityError(
            f"{table}: {planned - changed} of {planned} row(s) were not {done}: the "
            "database skipped them (a trigger, rule or row-level security policy?); "
            "nothing was done"
        )
    return changed


def as_written(
    rows: Iterable[Sequence[Any]], columns: Sequence[str], written: Mapping[str, Any], table: str
) -> None:
    """Rows an anonymising statement wrote, read back as stored (their ``columns`` in
    order), hold ``written`` (column -> value); else ``IntegrityError`` naming table and
    column, never a value (the caller's transaction rolls back). A trigger or rule that
    put the learner id, a token or a blind index back leaves a row that still identifies
    the learner, whatever the statement's count said. Both in-place integrations check
    their anonymised rows through it."""
    for row in rows:
        for column, found in zip(columns, row, strict=True):
            value = written[column]
            if found is value or (None not in (found, value) and str(found) == str(value)):
                continue
            raise IntegrityError(
                f"{table}.{column}: an anonymised row does not hold what was written (a "
                "trigger or rule put a value back?); nothing was done"
            )


def erase_rows(connection: Connection, rt: RecordTable, ids: Sequence[str]) -> int:
    """Delete the rows ``ids`` of ``rt``; return how many were deleted."""
    table = rt.table
    count = 0
    for chunk in chunked(ids, _CHUNK):
        where = ids_in(table.c.id, chunk, connection.dialect.name)
        count += connection.execute(delete(table).where(where)).rowcount
    return count


def anonymise_rows(
    connection: Connection,
    rt: RecordTable,
    ids: Sequence[str],
    now: dt.datetime,
    *,
    granularity: Granularity = Granularity.MONTH,
    persons: dict[str, str] | None = None,
    new_ids: list[str] | None = None,
) -> int:
    """Anonymise rows ``ids``: tokens and blind indexes emptied, other personal values
    emptied, the row's id replaced by a fresh random one, date quasi-identifiers
    generalised to ``granularity``; the rows are flagged anonymised.

    The learner id becomes a random person id, the same for every row of that learner
    anonymised with the same ``persons`` map (one sweep, one call), so statistics can
    count people rather than rows; nothing derives it from the learner id, and the map
    lives in memory only. Other identifiers get a random value per row. ``new_ids``,
    when given, receives the rows' new ids (in memory, for the caller's re-check: they
    are never written next to the old ones).
    """
    if not ids:
        return 0
    table = rt.table
    persons = {} if persons is None else persons
    quasi = {f.name for f in fields_of(rt.cls) if f.quasi_identifier}
    dates = [
        spec
        for spec in rt.fields
        if spec.name in quasi and spec.kind in (Kind.DATETIME, Kind.DATE) and not spec.encrypted
    ]
    values: dict[str, Any] = {ANONYMISED: to_utc(now), RESTRICTED: None, REASON: None}
    replaced: list[str] = []
    for spec in rt.fields:
        if not spec.personal:
            continue
        if spec.encrypted:
            values[spec.token_column] = None
            if spec.blind_index:
                values[spec.index_column] = None
        elif spec.identifier:
            replaced.append(spec.name)
        else:
            values[spec.name] = None
    for name in replaced:
        values[name] = bindparam(f"new_{name}")
    if not rt.id_personal:
        values["id"] = bindparam("new_id")
    for spec in dates:
        values[spec.name] = bindparam(f"gen_{spec.name}")
    statement = (
        update(table)
        .where(table.c.id == bindparam("old_id"), table.c[ANONYMISED].is_(None))
        .values(**values)
    )
    subject = rt.subject_column
    count = 0
    for chunk in chunked(ids, _CHUNK):
        read = select(table.c.id, table.c[subject], *(table.c[d.name] for d in dates)).where(
            ids_in(table.c.id, chunk, connection.dialect.name),
            unanonymised(table, connection.dialect.name),
        )
        params = []
        for row in connection.execute(read):
            person = persons.get(row[1])
            if person is None:
                person = persons[row[1]] = random_subject()
            one: dict[str, Any] = {"old_id": row[0]}
            for name in replaced:
                one[f"new_{name}"] = person if name in (subject, "id") else random_subject()
            if not rt.id_personal:
                one["new_id"] = random_subject()
            for position, spec in enumerate(dates, start=2):
                value = row[position]
                one[f"gen_{spec.name}"] = None if value is None else granularity.generalise(value)
            params.append(one)
            if new_ids is not None:
                new_ids.append(one["new_id"])
        if params:
            # executemany with a WHERE on a bound parameter: one statement, many rows.
            count += connection.execute(statement, params).rowcount
    return count


def restrict_rows(
    connection: Connection,
    rt: RecordTable,
    ids: Sequence[str],
    *,
    now: dt.datetime | None,
    reason: str | None,
) -> int:
    """Restrict (``now`` given) or lift (``now`` None) rows ``ids``; return rows changed.

    Rows already in the wanted state are left as they are. Checked after the fact: a
    row of ``ids`` still in the other state (the database skipped it: a trigger, a rule,
    a row-level security policy) raises ``IntegrityError`` (see :func:`every_row`), so no
    restriction is reported that did not happen.
    """
    table = rt.table
    if now is None:
        values: dict[str, Any] = {RESTRICTED: None, REASON: None}
        state = table.c[RESTRICTED].isnot(None)
    else:
        values = {RESTRICTED: to_utc(now), REASON: reason}
        state = table.c[RESTRICTED].is_(None)
    count = 0
    for chunk in chunked(ids, _CHUNK):
        where = (
            ids_in(table.c.id, chunk, connection.dialect.name),
            state,
            unanonymised(table, connection.dialect.name),
        )
        changed = connection.execute(update(table).where(*where).values(**values)).rowcount
        left = connection.execute(select(func.count()).select_from(table).where(*where))
        every_row(changed, changed + left.scalar_one(), rt.name, _DONE[now is None])
        count += changed
    return count


_DONE = {False: "restricted", True: "lifted from restriction"}


def has_live_rows(connection: Connection, rt: RecordTable) -> bool:
    """Whether ``rt`` holds at least one row not anonymised (erased rows are gone)."""
    live = select(rt.table.c.id).where(rt.table.c[ANONYMISED].is_(None)).limit(1)
    return connection.execute(live).first() is not None


def scopes_in_use(
    store: Store,
    connection: Connection,
    subjects: Iterable[str],
    scope: str,
    *,
    emptied: str | None = None,
) -> set[str]:
    """Which of ``subjects`` still have a row whose encrypted fields use ``scope``.

    A table with no live row at all, seen in the caller's transaction, holds none of
    them: it is asked that (one indexed row at most) instead of being probed for each
    subject. ``emptied``: a table keyed by the subject itself (the learners' own, one
    row per learner) whose row of every one of ``subjects`` the caller's transaction has
    just deleted or anonymised, holding its lock until the commit: it holds none of them
    and is not probed.
    """
    wanted = sorted(set(subjects))
    used: set[str] = set()
    if not wanted:
        return used
    for rt in store._record_tables():
        if rt.scope != scope or not any(f.encrypted for f in rt.fields):
            continue
        if rt.name == emptied and rt.subject_column == "id":
            continue
        if not has_live_rows(connection, rt):
            continue
        column = rt.table.c[rt.subject_column]
        for chunk in chunked(wanted, _CHUNK):
            query = select(column).where(
                ids_in(column, chunk, connection.dialect.name),
                unanonymised(rt.table, connection.dialect.name),
            )
            used.update(connection.execute(query.distinct()).scalars())
    return used


def live_keys(
    store: Store,
    connection: Connection,
    subjects: Iterable[str],
    scope: str,
    *,
    refs: dict[str, str] | None = None,
    locked: bool = False,
) -> list[tuple[str, str]]:
    """``(subject, key_id)`` of the keys of ``subjects`` in ``scope`` not yet shredded.

    ``refs``, when given, is filled with each subject's key reference, for a following
    :func:`shred_keys` (a sweep names thousands of subjects: one HMAC each is enough).

    On PostgreSQL the learners' rows are locked until the transaction ends (``locked``:
    the caller's transaction already holds each of them ``FOR UPDATE``, as a sweep page
    of learner accounts does; they are not looked up again): a writer
    adding a row for one of them waits (it share-locks the learner's row), so the
    caller's check of the rows still using the scope, made after this call, sees it;
    and once the caller commits, the writer settles the shreds it sent to the outbox
    before using any key (``SqlKeyStore.settle``).
    """
    wanted = sorted(set(subjects))
    if store._db.is_postgres and wanted and not locked:
        learners = store._table("Learner").table
        for chunk in chunked(wanted, _CHUNK):
            connection.execute(
                select(learners.c.id)
                .where(ids_in(learners.c.id, chunk, connection.dialect.name))
                .order_by(learners.c.id)
                .with_for_update()
            ).all()
    named = store.keyring._key_refs(wanted)
    by_ref = {ref: s for s, ref in named.items()}
    if refs is not None:
        refs.update(named)
    return [(by_ref[ref], key_id) for ref, key_id in store._key_db.live(by_ref, scope)]


def shred_keys(
    store: Store,
    connection: Connection,
    subjects: Iterable[str],
    scope: str,
    *,
    live: Sequence[tuple[str, str]] | None = None,
    refs: dict[str, str] | None = None,
) -> int:
    """Destroy the key material of ``subjects`` in ``scope`` once the caller's transaction
    commits (no tombstone: a learner whose data expired may come back; an erasure request
    uses ``Keyring.shred`` instead). Returns how many keys that destroys.

    ``live`` and ``refs`` are what :func:`live_keys` found and filled in this transaction:
    with them the references are not computed, nor the live keys counted, a second time.
    """
    del connection  # the key store is bound to it: the shred goes to its outbox
    wanted = sorted(set(subjects))
    keyring = store.keyring
    known = {} if refs is None else refs
    pairs = [(known.get(s) or keyring.key_ref(s), scope) for s in wanted]
    if live is None:
        count = store._keys.shred_many(pairs, tombstone=False)
    else:
        doomed = set(wanted)
        count = sum(1 for subject, _key_id in live if subject in doomed)
        store._keys.shred_many(pairs, tombstone=False, counted=True)
    keyring._forget_many(wanted)
    return count
