"""Data keys apart from data: the key database.

>>> from learnprivacy.crypto import Keyring
>>> from learnprivacy.keys import KeyDatabase
>>> keys = KeyDatabase("sqlite://")            # sqlite:///lms.keys.db, postgresql+psycopg://...
>>> keyring = keys.keyring(Keyring.generate())
>>> keyring.is_shredded("L1")
False

:class:`KeyDatabase` keeps the per-learner data keys (wrapped under the master key), the
shredding tombstones and the audit anchors in a database of their own, named by keyed
pseudonyms, never learner ids. The :class:`~learnprivacy.store.Store`, the SQLAlchemy and
the Django integrations all keep their keys in one. Importing this package imports
SQLAlchemy. See ``docs/security.md``.
"""

from learnprivacy.store._keydb import KeyDatabase

__all__ = ["KeyDatabase"]
