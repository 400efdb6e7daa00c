"""The key store of an integration: a database of its own, never the application's.

``keys=`` is the URL of that database (SQLite file or PostgreSQL), a
:class:`~learnprivacy.keys.KeyDatabase`, or any
:class:`~learnprivacy.crypto.KeyStore` object (``InMemoryKeyStore`` for tests). The
per-learner data keys live there, wrapped by the master key; the application's
database holds tokens, blind indexes and the audit log only, so a copy of it (backup,
dump, replica) plus the master key reads nothing of a learner whose keys were shredded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL

from learnprivacy.crypto import KeyStore
from learnprivacy.errors import ConfigurationError

__all__ = ["open_key_store", "same_database"]


def open_key_store(keys: object) -> tuple[KeyStore, URL | None]:
    """The key store ``keys`` names, and its URL when it is a database."""
    if isinstance(keys, str):
        from learnprivacy.keys import KeyDatabase

        database = KeyDatabase(keys)
        return database, database.engine.url
    if isinstance(keys, KeyStore):
        # A KeyDatabase given as an object still says where it lives, for the check that
        # it is not the application's own database.
        engine = getattr(keys, "engine", None)
        url = getattr(engine, "url", None)
        return keys, url if isinstance(url, URL) else None
    raise ConfigurationError("keys= must be the URL of the key database or a KeyStore")


def _where(url: URL) -> tuple[Any, ...]:
    if url.get_backend_name() == "sqlite":
        from pathlib import Path

        database = url.database or ""
        if database in ("", ":memory:"):
            return ("sqlite-memory", id(url))
        return ("sqlite", str(Path(database).resolve()))
    return (url.get_backend_name(), url.host, url.port, url.database)


def same_database(first: URL, second: URL) -> bool:
    """Whether two URLs reach the same database (same file, same server and name)."""
    return _where(first) == _where(second)
