"""The store's own tables: metadata, wrapped data keys and the audit log.

Declared with SQLModel on a private registry, so that they join the store's metadata and
never the application's global ``SQLModel.metadata``. Bulk work goes through SQLAlchemy
Core on the same tables (see :data:`META`, :data:`KEYS`...).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Index, LargeBinary, String, Table, Text, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from learnprivacy.store._schema import METADATA

__all__ = [
    "AUDIT",
    "AUDIT_HEAD",
    "KEYS",
    "META",
    "TOMBSTONES",
    "AuditHeadRow",
    "AuditRow",
    "KeyRow",
    "KeyTombstoneRow",
    "MetaRow",
]


class _StoreModel(SQLModel, registry=registry(metadata=METADATA)):
    """Base of the store's SQLModel tables, on the store's own metadata."""


class MetaRow(_StoreModel, table=True):
    """One setting of the store: schema version, store id, creation time."""

    __tablename__ = "lp_meta"

    key: str = Field(primary_key=True, sa_type=String(64))
    value: str = Field(sa_type=Text)


class KeyRow(_StoreModel, table=True):
    """A wrapped data key (never a key in clear): the SQL form of ``crypto.KeyEntry``."""

    __tablename__ = "lp_keys"
    __table_args__ = (
        Index("ix_lp_keys_subject_scope", "subject", "scope"),
        # At most one active key per (subject, scope): concurrent writers converge on it.
        Index(
            "uq_lp_keys_active",
            "subject",
            "scope",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
    )

    subject: str = Field(primary_key=True, sa_type=String(255))
    key_id: str = Field(primary_key=True, sa_type=String(16))
    scope: str = Field(sa_type=String(64))
    state: str = Field(sa_type=String(16))
    master_key_id: str = Field(sa_type=String(16))
    wrapped: bytes = Field(sa_type=LargeBinary)


class KeyTombstoneRow(_StoreModel, table=True):
    """A shredded (subject, scope); ``scope`` ``*`` covers every scope of the subject."""

    __tablename__ = "lp_key_tombstones"

    subject: str = Field(primary_key=True, sa_type=String(255))
    scope: str = Field(primary_key=True, sa_type=String(64))


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
KEYS: Table = METADATA.tables["lp_keys"]
TOMBSTONES: Table = METADATA.tables["lp_key_tombstones"]
AUDIT: Table = METADATA.tables["lp_audit"]
AUDIT_HEAD: Table = METADATA.tables["lp_audit_head"]
