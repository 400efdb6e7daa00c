"""Persistence: SQLite by default, PostgreSQL for scale; encryption at rest, retention
sweeps, erasure with crypto-shredding and a tamper-evident audit log.

>>> from learnprivacy.crypto import Keyring
>>> from learnprivacy.store import Store
>>> store = Store("sqlite://", keyring=Keyring.generate())
>>> store.audit.verify()
True

Importing this package imports SQLAlchemy; ``import learnprivacy`` alone does not.
See ``docs/concepts-store.md``.
"""

from learnprivacy.store._audit import AuditEntry, AuditLog
from learnprivacy.store._copy import CopyReport, copy_store
from learnprivacy.store._keydb import KeyDatabase
from learnprivacy.store._keystore import SqlKeyStore
from learnprivacy.store._migrate import head_revision
from learnprivacy.store._reports import (
    ErasureOutcome,
    ErasureReport,
    ReplayReport,
    ReviewItem,
    SweepReport,
)
from learnprivacy.store._schema import table_name
from learnprivacy.store._store import Store

__all__ = [
    "AuditEntry",
    "AuditLog",
    "CopyReport",
    "ErasureOutcome",
    "ErasureReport",
    "KeyDatabase",
    "ReplayReport",
    "ReviewItem",
    "SqlKeyStore",
    "Store",
    "SweepReport",
    "copy_store",
    "head_revision",
    "table_name",
]
