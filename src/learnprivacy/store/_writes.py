"""Adding, rectifying and restricting records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

import attrs
from sqlalchemy import Connection, and_, select, update
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from learnprivacy.errors import (
    DecryptionError,
    IntegrityError,
    NotFoundError,
    RestrictedRecordError,
    ValidationError,
)
from learnprivacy.records._base import record_type as named_type
from learnprivacy.records._base import subject_of
from learnprivacy.store._actions import every_row, restrict_rows
from learnprivacy.store._audit import AuditEvent
from learnprivacy.store._bulk import bulk_insert, bulk_insert_values, ids_in, insert_plan
from learnprivacy.store._codec import Codec
from learnprivacy.store._common import chunked, collector_paused, ids_detail
from learnprivacy.store._keystore import KeyRace
from learnprivacy.store._schema import ANONYMISED, RESTRICTED, Kind, RecordTable
from learnprivacy.store._types import to_utc

if TYPE_CHECKING:
    from learnprivacy.store._core import StoreCore as Store

__all__ = ["add_all", "rectify", "set_restriction"]

_CHECK_CHUNK = 5_000


def _record_class(record: object) -> type[Any]:
    """The class of ``record``, if it is a record class."""
    return _checked_class(type(record))


def _checked_class(cls: type[Any]) -> type[Any]:
    """``cls``, the class of a record to store; ``ValidationError`` for any other."""
    if not attrs.has(cls) or not isinstance(getattr(cls, "key_scope", None), str):
        raise ValidationError(f"{cls.__name__} is not a learnprivacy record class", field="record")
    return cls


def _check_learners(store: Store, connection: Connection, needed: set[str], kind: str) -> None:
    """Every id in ``needed`` is a stored, unrestricted learner, else a typed error."""
    if not needed:
        return
    table = store._table("Learner").table
    found: dict[str, bool] = {}
    wanted = sorted(needed)
    for start in range(0, len(wanted), _CHECK_CHUNK):
        chunk = wanted[start : start + _CHECK_CHUNK]
        query = select(table.c.id, table.c[RESTRICTED]).where(
            ids_in(table.c.id, chunk, connection.dialect.name), table.c[ANONYMISED].is_(None)
        )
        if store._db.is_postgres:
            # Held until commit: an erasure of one of these learners waits, then sees the
            # new rows (see _actions.live_keys).
            query = query.order_by(table.c.id).with_for_update(read=True)
        for learner_id, restricted_at in connection.execute(query).all():
            found[learner_id] = restricted_at is not None
    missing = len(needed) - len(found)
    if missing:
        raise IntegrityError(
            f"{missing} learner(s) referenced by {kind} record(s) are not in the store"
        )
    if any(found.values()):
        raise RestrictedRecordError(
            "the learner of a new record is restricted (GDPR Art. 18): no new processing"
        )


def add_all(store: Store, records: Iterable[Any], *, now: dt.datetime) -> int:
    """Insert ``records`` in one transaction, in batches; see :meth:`Store.add_all`."""
    counts: dict[str, int] = {}
    subjects_by_type: dict[str, set[str]] = {}
    keys = store._keys
    keyring = store.keyring
    with store._writing() as connection:
        for chunk in chunked(records, store.batch_size):
            # Paused per batch: see collector_paused.
            with collector_paused():
                by_type: dict[type[Any], list[Any]] = {}
                for record in chunk:
                    by_type.setdefault(type(record), []).append(record)
                for cls in by_type:
                    _checked_class(cls)
                tables = {cls: store._table(cls) for cls in by_type}
                new_learners = {
                    r.id for cls, rs in by_type.items() if cls.__name__ == "Learner" for r in rs
                }
                needed = {
                    r.learner_id
                    for cls, rs in by_type.items()
                    if tables[cls].has_learner
                    for r in rs
                }
                kinds = ", ".join(
                    sorted(cls.__name__ for cls in by_type if tables[cls].has_learner)
                )
                _check_learners(store, connection, needed - new_learners, kinds)
                secret = [cls for cls in by_type if any(f.encrypted for f in tables[cls].fields)]
                subjects = {subject_of(r) for cls in secret for r in by_type[cls]}
                # Keys cached from an earlier transaction may have been shredded since.
                keyring._forget_many(subjects)
                refs = set(keyring._key_refs(subjects).values())
                # An erasure of these learners may have committed a moment ago with its
                # shreds still in the outbox: destroy those keys before using any.
                keys.settle(connection, refs)
                rows: dict[type[Any], list[dict[str, Any]] | list[tuple[Any, ...]]] = {}
                with keys.batch(refs, lock=True):
                    for cls, items in by_type.items():
                        if cls in secret:
                            # The keys of the batch's new learners made in one pass.
                            owners = {subject_of(r) for r in items}
                            keyring._sealers(owners, tables[cls].scope)
                        rows[cls] = _rows(connection, store._codec(cls), items)
                    try:
                        keys.flush()
                    except KeyRace:
                        raise IntegrityError(
                            "a data key was created concurrently for a learner of this batch; "
                            "retry the operation"
                        ) from None
                # The learner's own rows go in first, so a batch may add learners and records.
                for cls in sorted(by_type, key=lambda c: tables[c].has_learner):
                    _insert(connection, tables[cls], rows[cls])
                    name = cls.__name__
                    counts[name] = counts.get(name, 0) + len(rows[cls])
                    subjects_by_type.setdefault(name, set()).update(
                        subject_of(r) for r in by_type[cls]
                    )
                # Freed while the collector is still paused: resuming it runs a collection
                # of everything made since the pause that is still alive, and these rows
                # and sets (tens of thousands of objects a batch) need no looking at.
                del rows, by_type, subjects, refs, new_learners, needed
        events = []
        for name, count in counts.items():
            owners = subjects_by_type[name]
            only = next(iter(owners)) if len(owners) == 1 else None
            events.append(
                AuditEvent(
                    action="add",
                    outcome="done",
                    record_type=name,
                    subject_ref=None if only is None else store.audit.subject_ref(only),
                    details={"count": count, "subjects": len(owners)},
                )
            )
        store.audit.append(connection, events, now=now)
    return sum(counts.values())


def _rows(
    connection: Connection, codec: Codec, records: list[Any]
) -> list[dict[str, Any]] | list[tuple[Any, ...]]:
    """The rows to insert for ``records``: the driver's values in the table's column
    order where the connection has a bulk insert plan, else column dicts."""
    plan = insert_plan(connection, codec.rt.table)
    build = None if plan is None else codec.insert_values(connection.dialect.name, *plan)
    if build is None:
        to_row = codec.to_row
        return [to_row(r) for r in records]
    return [build(r) for r in records]


def _insert(
    connection: Connection,
    rt: RecordTable,
    rows: list[dict[str, Any]] | list[tuple[Any, ...]],
) -> None:
    if not rows:
        return
    try:
        if type(rows[0]) is tuple:
            bulk_insert_values(connection, rt.table, rows)
        else:
            bulk_insert(connection, rt.table, cast("list[dict[str, Any]]", rows))
    except SQLIntegrityError:
        # The driver's message quotes the offending id; it is not passed on.
        raise IntegrityError(f"a {rt.name} record with the same id is already stored") from None


def rectify(store: Store, record: Any, *, now: dt.datetime) -> None:
    """Rectify ``record`` in place; see :meth:`Store.update`."""
    cls = _record_class(record)
    rt = store._table(cls)
    codec = store._codec(cls)
    table = rt.table
    subject = subject_of(record)
    with store._writing() as connection:
        query = select(table).where(table.c.id == record.id, table.c[ANONYMISED].is_(None))
        if store._db.is_postgres:
            query = query.with_for_update()
        row = connection.execute(query).first()
        if row is None:
            raise NotFoundError(f"no {rt.name} record with that id")
        if row._mapping[RESTRICTED] is not None:
            raise RestrictedRecordError(
                f"the {rt.name} record is restricted (GDPR Art. 18): lift the restriction first"
            )
        if row._mapping[rt.subject_column] != subject:
            raise IntegrityError(f"a {rt.name} record cannot move to another learner")
        store.keyring.clear_cache(subject)
        ref = store.keyring.key_ref(subject)
        store._keys.settle(connection, [ref])
        with store._keys.batch([ref], lock=True):
            try:
                old = codec.from_row(row)
                changed = [
                    f.name for f in rt.fields if getattr(old, f.name) != getattr(record, f.name)
                ]
            except DecryptionError:
                changed = [f.name for f in rt.fields if f.personal]
            values = codec.to_row(record)
            store._keys.flush()
        values.pop("id")
        detail = ids_detail(store.audit, rt, [record.id], [subject])
        # The new dates (withdrawn_at...) are not personal: the entry carries them, so a
        # restored backup gets them back (Store.replay_erasures).
        dates = {
            spec.name: _utc_text(getattr(record, spec.name))
            for spec in rt.fields
            if spec.name in changed and spec.kind is Kind.DATETIME and not spec.personal
        }
        store.audit.append(
            connection,
            [
                AuditEvent(
                    action="rectify",
                    outcome="done",
                    record_type=rt.name,
                    subject_ref=store.audit.subject_ref(subject),
                    details={
                        **detail,
                        "fields": changed,
                        "dates": dates,
                    },
                )
            ],
            now=now,
        )
        written = connection.execute(update(table).where(table.c.id == record.id).values(**values))
        every_row(written.rowcount, 1, rt.name, "rectified")
    # The previous tokens may linger in the write-ahead log until it is checkpointed.
    store._db.checkpoint()


def _utc_text(value: dt.datetime | None) -> str | None:
    """A date as the store keeps it (naive UTC), in ISO form for an audit entry."""
    return None if value is None else to_utc(value).isoformat()


def set_restriction(
    store: Store,
    record_type: type[Any] | str | None,
    record_id: str | None,
    learner_id: str | None,
    *,
    reason: str | None,
    now: dt.datetime,
) -> int:
    """Restrict (``reason`` given) or lift (``reason=None``) rows; return how many changed."""
    if (record_id is None) == (learner_id is None):
        raise ValidationError("give either record_id or learner_id=", field="record_id")
    if record_id is not None and record_type is None:
        raise ValidationError("record_id needs record_type", field="record_type")
    if reason is not None and (not isinstance(reason, str) or not reason.strip()):
        raise ValidationError("reason must be non-empty text", field="reason")
    if isinstance(record_type, str):
        record_type = named_type(record_type)
    tables = [store._table(record_type)] if record_type is not None else store._record_tables()
    restrict = reason is not None
    total = 0
    with store._writing() as connection:
        for rt in tables:
            table = rt.table
            target = (
                table.c.id == record_id
                if record_id is not None
                else table.c[rt.subject_column] == learner_id
            )
            state = table.c[RESTRICTED].is_(None) if restrict else table.c[RESTRICTED].isnot(None)
            where = and_(target, state, table.c[ANONYMISED].is_(None))
            query = select(table.c.id, table.c[rt.subject_column]).where(where)
            if store._db.is_postgres:
                # Rows before the audit head: the lock order every writer follows.
                query = query.with_for_update()
            found = connection.execute(query).all()
            if not found:
                continue
            ids = [r[0] for r in found]
            subjects = [r[1] for r in found]
            owners = set(subjects)
            store.audit.append(
                connection,
                [
                    AuditEvent(
                        action="restrict" if restrict else "lift_restriction",
                        outcome="done",
                        record_type=rt.name,
                        subject_ref=store.audit.subject_ref(subjects[0])
                        if len(owners) == 1
                        else None,
                        details={
                            **ids_detail(store.audit, rt, ids, subjects),
                            "reason": reason,
                        },
                    )
                ],
                now=now,
            )
            # Checked after the fact: a row the database skipped raises, nothing reported.
            total += restrict_rows(
                connection, rt, ids, now=now if restrict else None, reason=reason
            )
    return total
