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

from learnprivacy.store._audit import AuditLog
from learnprivacy.store._copy import copy_store
from learnprivacy.store._epochs import Vault
from learnprivacy.store._parts import SweepPart
from learnprivacy.store._pkcs11 import Pkcs11Vault
from learnprivacy.store._reports import ErasureReport, ReplayReport, SweepReport
from learnprivacy.store._store import Store

__all__ = [
    "AuditLog",
    "ErasureReport",
    "Pkcs11Vault",
    "ReplayReport",
    "Store",
    "SweepPart",
    "SweepReport",
    "Vault",
    "copy_store",
]
