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
    String,
    Table,
    Text,
)

from learnprivacy.store._schema import METADATA

__all__ = ["AUDIT", "AUDIT_HEAD", "KEY_OUTBOX", "META"]

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
KEY_OUTBOX: Table = Table(
    "lp_key_outbox",
    METADATA,
    # An INTEGER PRIMARY KEY on SQLite, where only that type autoincrements.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("subject_ref", String(64), nullable=False, index=True),
    Column("scope", String(64), nullable=False),
    Column("tombstone", Boolean, nullable=False),
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

#: The last entry of the audit log, sealed with the store's key. Locked by every writer
#: (``SELECT ... FOR UPDATE``) so entries get gap-free sequence numbers; lets
#: :meth:`AuditLog.verify` notice entries cut off the end of the chain.
AUDIT_HEAD: Table = Table(
    "lp_audit_head",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("sequence", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("seal", String(64), nullable=False),
)
