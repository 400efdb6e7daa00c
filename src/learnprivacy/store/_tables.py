"""The store's own tables: metadata, the key outbox and the audit log.

Wrapped data keys are not here: they live in a key database of their own
(``store/_keydb.py``).

Declared with SQLModel on a private registry, so that they join the store's metadata and
never the application's global ``SQLModel.metadata``. Bulk work goes through SQLAlchemy
Core on the same tables (see :data:`META`, :data:`AUDIT`...).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, Table, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from learnprivacy.store._schema import METADATA

__all__ = [
    "AUDIT",
    "AUDIT_HEAD",
    "KEY_OUTBOX",
    "META",
    "AuditHeadRow",
    "AuditRow",
    "KeyOutboxRow",
    "MetaRow",
]


class _StoreModel(SQLModel, registry=registry(metadata=METADATA)):
    """Base of the store's SQLModel tables, on the store's own metadata."""


class MetaRow(_StoreModel, table=True):
    """One setting of the store: schema version, store id, creation time."""

    __tablename__ = "lp_meta"

    key: str = Field(primary_key=True, sa_type=String(64))
    value: str = Field(sa_type=Text)


class KeyOutboxRow(_StoreModel, table=True):
    """A shred that committed with an erasure and awaits its turn in the key database.

    Written in the erasure's own transaction, deleted once the keys are destroyed (see
    ``store/_keystore.py``). ``subject_ref`` is the key reference, never a learner id;
    ``scope`` ``*`` means every scope; ``tombstone`` whether the subject stays shredded.
    """

    __tablename__ = "lp_key_outbox"

    # An INTEGER PRIMARY KEY on SQLite, where only that type autoincrements.
    id: int | None = Field(
        default=None, primary_key=True, sa_type=BigInteger().with_variant(Integer(), "sqlite")
    )
    subject_ref: str = Field(sa_type=String(64), index=True)
    scope: str = Field(sa_type=String(64))
    tombstone: bool = Field(sa_type=Boolean)


class AuditRow(_StoreModel, table=True):
    """One entry of the hash-chained audit log. Never holds a personal value."""

    __tablename__ = "lp_audit"

    sequence: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    at: dt.datetime = Field(sa_type=DateTime)
    action: str = Field(sa_type=String(32))
    record_type: str | None = Field(default=None, sa_type=String(64))
    subject_ref: str | None = Field(default=None, sa_type=String(64))
    actor: str = Field(sa_type=String(255))
    outcome: str = Field(sa_type=String(32))
    details: str = Field(sa_type=Text)
    prev_hash: str = Field(sa_type=String(64))
    hash: str = Field(sa_type=String(64))


class AuditHeadRow(_StoreModel, table=True):
    """The last entry of the audit log, sealed with the store's key.

    Locked by every writer (``SELECT ... FOR UPDATE``) so entries get gap-free sequence
    numbers; lets :meth:`AuditLog.verify` notice entries cut off the end of the chain.
    """

    __tablename__ = "lp_audit_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    sequence: int = Field(sa_type=BigInteger)
    hash: str = Field(sa_type=String(64))
    seal: str = Field(sa_type=String(64))


META: Table = METADATA.tables["lp_meta"]
KEY_OUTBOX: Table = METADATA.tables["lp_key_outbox"]
AUDIT: Table = METADATA.tables["lp_audit"]
AUDIT_HEAD: Table = METADATA.tables["lp_audit_head"]
