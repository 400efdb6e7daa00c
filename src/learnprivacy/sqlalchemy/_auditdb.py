"""An audit log in a database the caller names, fed through an outbox in the app's database.

``LearnPrivacy(..., audit=URL)`` keeps the hash-chained audit log (the store's format)
in a database of its own, the key database for instance. Its entries cannot commit in
the same transaction as the application's change, so they travel in two steps:

1. the events are written to ``lp_audit_outbox`` in the application's database, in the
   caller's transaction: the change and the record that it happened commit, or roll
   back, together;
2. once that transaction has committed, the events are appended to the audit database
   and removed from the outbox. Each outbox row carries a unique id, recorded in the
   audit database (``lp_audit_moved``) in the same transaction as its entries, so a
   crash between the two steps never loses an entry nor writes one twice: what is left
   in the outbox is moved on the next call.

Nothing personal travels: the events hold pseudonymous references and counts only.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from learnprivacy.store._audit import AuditEvent, AuditLog
from learnprivacy.store._engine import Database
from learnprivacy.store._tables import AUDIT, AUDIT_HEAD

__all__ = ["OUTBOX", "AuditDatabase", "outbox_table"]

OUTBOX = "lp_audit_outbox"
_MOVED = Table(
    "lp_audit_moved",
    MetaData(),
    Column("uid", String(36), primary_key=True),
    Column("at", DateTime, nullable=False),
)


def outbox_table(metadata: MetaData) -> Table:
    """The outbox table in the application's ``metadata`` (added if absent)."""
    existing = metadata.tables.get(OUTBOX)
    if existing is not None:
        return existing
    return Table(
        OUTBOX,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("uid", String(36), nullable=False, unique=True),
        Column("at", DateTime, nullable=False),
        Column("events", Text, nullable=False),
    )


def _naive(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(tzinfo=None)


def _dump(events: Sequence[AuditEvent]) -> str:
    return json.dumps(
        [
            {
                "action": e.action,
                "outcome": e.outcome,
                "record_type": e.record_type,
                "subject_ref": e.subject_ref,
                "details": dict(e.details),
            }
            for e in events
        ],
        sort_keys=True,
    )


def _load(text: str) -> list[AuditEvent]:
    return [AuditEvent(**item) for item in json.loads(text)]


class AuditDatabase:
    """The audit database of an integration, and the outbox that feeds it."""

    def __init__(self, target: str | Engine, outbox: Table, log: Any) -> None:
        self.database = (
            Database(target) if isinstance(target, str) else Database.from_engine(target)
        )
        self.outbox = outbox
        #: Makes the AuditLog over the audit database (given the Database).
        self._log = log
        self._ready = False

    @property
    def engine(self) -> Engine:
        """The audit database's engine."""
        return self.database.engine

    def log(self) -> AuditLog:
        """The audit log, its tables created if missing."""
        if not self._ready:
            with self.database.write() as connection:
                for table in (AUDIT, AUDIT_HEAD, _MOVED):
                    table.create(connection, checkfirst=True)
                log: AuditLog = self._log(self.database)
                log.ensure_head(connection)
            self._ready = True
        found: AuditLog = self._log(self.database)
        return found

    def close(self) -> None:
        """Close the connections this object opened (not an engine the caller gave)."""
        self.database.dispose()

    def stage(self, connection: Connection, events: Sequence[AuditEvent], now: dt.datetime) -> str:
        """Write ``events`` to the outbox in ``connection``'s (the caller's) transaction;
        the outbox row's unique id."""
        uid = str(uuid.uuid4())
        connection.execute(
            insert(self.outbox).values(uid=uid, at=_naive(now), events=_dump(events))
        )
        return uid

    def drain(self, app: Engine | Connection, *, exclude: Collection[str] = ()) -> int:
        """Move what the outbox of ``app`` holds to the audit log; how many rows moved.

        With an engine, each row is removed from the outbox in a transaction of its own
        once its entries are in the audit database. With a connection (the caller's
        transaction, which has seen the rows committed), the rows are removed in that
        transaction, and ``exclude`` names the rows it staged itself: those wait for its
        commit. Safe to run from several processes at once, and again after a crash at
        any point: a row's entries are appended once.
        """
        outbox = self.outbox
        query = select(outbox.c.id, outbox.c.uid, outbox.c.at, outbox.c.events).order_by(
            outbox.c.id
        )
        if isinstance(app, Connection):
            rows = [r for r in app.execute(query).all() if r[1] not in exclude]
        else:
            with app.connect() as connection:
                rows = list(connection.execute(query).all())
        if not rows:
            return 0
        log = self.log()
        for row_id, uid, at, text in rows:
            try:
                with self.database.write() as audit:
                    # The uid first: a concurrent mover of the same row fails here, and a
                    # row moved before a crash is not appended twice.
                    audit.execute(insert(_MOVED).values(uid=uid, at=at))
                    log.append(audit, _load(text), now=at.replace(tzinfo=dt.UTC))
            except IntegrityError:
                pass  # already in the audit log
            removal = delete(outbox).where(outbox.c.id == row_id)
            if isinstance(app, Connection):
                app.execute(removal)
            else:
                with app.begin() as connection:
                    connection.execute(removal)
        return len(rows)
