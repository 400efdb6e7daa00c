"""The destructive actions, shared by sweeps, erasure requests and erasure replay.

Each function runs inside the caller's write transaction, after the caller has written
the audit entries that describe it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, select, update

from learnprivacy.store._bulk import ids_in
from learnprivacy.store._common import chunked
from learnprivacy.store._schema import ANONYMISED, REASON, RESTRICTED, RecordTable
from learnprivacy.store._types import to_utc

if TYPE_CHECKING:
    from learnprivacy.store._store import Store

__all__ = [
    "anonymise_rows",
    "erase_rows",
    "live_keys",
    "random_subject",
    "restrict_rows",
    "scopes_in_use",
    "shred_keys",
]

_CHUNK = 5_000


def random_subject() -> str:
    """A random identifier replacing a learner id on anonymisation (irreversible)."""
    return "anon-" + os.urandom(16).hex()


def erase_rows(connection: Connection, rt: RecordTable, ids: Sequence[str]) -> int:
    """Delete the rows ``ids`` of ``rt``; return how many were deleted."""
    table = rt.table
    count = 0
    for chunk in chunked(ids, _CHUNK):
        where = ids_in(table.c.id, chunk, connection.dialect.name)
        count += connection.execute(delete(table).where(where)).rowcount
    return count


def anonymise_rows(
    connection: Connection, rt: RecordTable, ids: Sequence[str], now: dt.datetime
) -> int:
    """Replace the personal values of rows ``ids``: tokens and blind indexes emptied,
    identifiers replaced by random ids, other personal values emptied; non-personal facts
    are kept and the rows flagged anonymised. Each row gets its own random id, so
    anonymised rows cannot be linked to each other either.
    """
    table = rt.table
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
    statement = (
        update(table)
        .where(table.c.id == bindparam("old_id"), table.c[ANONYMISED].is_(None))
        .values(**values)
    )
    params = [
        {"old_id": record_id, **{f"new_{name}": random_subject() for name in replaced}}
        for record_id in ids
    ]
    count = 0
    for chunk in chunked(params, _CHUNK):
        # executemany with a WHERE on a bound parameter: one statement, many rows.
        count += connection.execute(statement, chunk).rowcount
    return count


def restrict_rows(
    connection: Connection,
    rt: RecordTable,
    ids: Sequence[str],
    *,
    now: dt.datetime | None,
    reason: str | None,
) -> int:
    """Restrict (``now`` given) or lift (``now`` None) rows ``ids``; return rows changed."""
    table = rt.table
    if now is None:
        values: dict[str, Any] = {RESTRICTED: None, REASON: None}
        state = table.c[RESTRICTED].isnot(None)
    else:
        values = {RESTRICTED: to_utc(now), REASON: reason}
        state = table.c[RESTRICTED].is_(None)
    count = 0
    for chunk in chunked(ids, _CHUNK):
        count += connection.execute(
            update(table)
            .where(
                ids_in(table.c.id, chunk, connection.dialect.name),
                state,
                table.c[ANONYMISED].is_(None),
            )
            .values(**values)
        ).rowcount
    return count


def scopes_in_use(
    store: Store, connection: Connection, subjects: Iterable[str], scope: str
) -> set[str]:
    """Which of ``subjects`` still have a row whose encrypted fields use ``scope``."""
    wanted = sorted(set(subjects))
    used: set[str] = set()
    for rt in store.tables():
        if rt.scope != scope or not any(f.encrypted for f in rt.fields):
            continue
        column = rt.table.c[rt.subject_column]
        for chunk in chunked(wanted, _CHUNK):
            query = select(column).where(
                ids_in(column, chunk, connection.dialect.name), rt.table.c[ANONYMISED].is_(None)
            )
            used.update(connection.execute(query.distinct()).scalars())
    return used


def live_keys(
    store: Store, connection: Connection, subjects: Iterable[str], scope: str
) -> list[tuple[str, str]]:
    """``(subject, key_id)`` of the keys of ``subjects`` in ``scope`` not yet shredded.

    On PostgreSQL the learners' rows are locked until the transaction ends: a writer
    adding a row for one of them waits (it share-locks the learner's row), so the
    caller's check of the rows still using the scope, made after this call, sees it;
    and once the caller commits, the writer settles the shreds it sent to the outbox
    before using any key (``SqlKeyStore.settle``).
    """
    wanted = sorted(set(subjects))
    if store.database.is_postgres and wanted:
        learners = store.table("Learner").table
        for chunk in chunked(wanted, _CHUNK):
            connection.execute(
                select(learners.c.id)
                .where(ids_in(learners.c.id, chunk, connection.dialect.name))
                .order_by(learners.c.id)
                .with_for_update()
            ).all()
    keyring = store.keyring
    by_ref = {keyring.key_ref(s): s for s in wanted}
    return [(by_ref[ref], key_id) for ref, key_id in store.key_database.live(by_ref, scope)]


def shred_keys(store: Store, connection: Connection, subjects: Iterable[str], scope: str) -> int:
    """Destroy the key material of ``subjects`` in ``scope`` once the caller's transaction
    commits (no tombstone: a learner whose data expired may come back; an erasure request
    uses ``Keyring.shred`` instead). Returns how many keys that destroys.
    """
    del connection  # the key store is bound to it: the shred goes to its outbox
    wanted = sorted(set(subjects))
    keyring = store.keyring
    count = store.key_store.shred_many(
        [(keyring.key_ref(s), scope) for s in wanted], tombstone=False
    )
    for subject in wanted:
        keyring.clear_cache(subject)
    return count
