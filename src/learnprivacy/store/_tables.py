"""The store's own tables: metadata, the key outbox and the audit log.

Wrapped data keys are not here: they live in a key database of their own
(``store/_keydb.py``).

Plain SQLAlchemy Core tables on the store's own metadata (never the application's):
every read and write goes through Core, so importing the store loads neither an ORM
nor a validation library.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    Sequence,
    String,
    Table,
    Text,
)

from learnprivacy.store._schema import METADATA

__all__ = ["AUDIT", "AUDIT_HEAD", "AUDIT_SEQUENCE", "KEY_OUTBOX", "META"]

#: One setting of the store: schema version, store id, creation time.
META: Table = Table(
    "lp_meta",
    METADATA,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: A shred that committed with an erasure and awaits its turn in the key database.
#: Written in the erasure's own transaction, deleted once the keys are destroyed (see
#: ``store/_keystore.py``). ``subject_ref`` is the key reference, never a learner id;
#: ``scope`` ``*`` means every scope; ``tombstone`` whether the subject stays shredded.
#: A row whose ``subject_ref`` is empty names many references of one scope in
#: ``subject_refs`` (a JSON array): one row for a sweep page, not one per learner.
KEY_OUTBOX: Table = Table(
    "lp_key_outbox",
    METADATA,
    # An INTEGER PRIMARY KEY on SQLite, where only that type autoincrements.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("subject_ref", String(64), nullable=False, index=True),
    Column("scope", String(64), nullable=False),
    Column("tombstone", Boolean, nullable=False),
    Column("subject_refs", Text, nullable=True),
)

#: One entry of the hash-chained audit log. Never holds a personal value.
AUDIT: Table = Table(
    "lp_audit",
    METADATA,
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("at", DateTime, nullable=False),
    Column("action", String(32), nullable=False),
    Column("record_type", String(64), nullable=True),
    Column("subject_ref", String(64), nullable=True),
    Column("actor", String(255), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

#: The last entry of each lane of the audit log (``id``: the lane), sealed with the
#: store's key. A writer locks one head row (``SELECT ... FOR UPDATE``, ``SKIP LOCKED``
#: on a PostgreSQL store) until its transaction ends; lets :meth:`AuditLog.verify` notice
#: entries cut off the end of a lane.
AUDIT_HEAD: Table = Table(
    "lp_audit_head",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("sequence", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("seal", String(64), nullable=False),
)

#: The sequence numbers of a PostgreSQL store's audit entries, taken without locking any
#: row (SQLite numbers them after lane 1's head, which every writer locks there).
AUDIT_SEQUENCE: Sequence = Sequence("lp_audit_sequence", metadata=METADATA)
