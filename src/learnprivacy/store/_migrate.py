"""Versioned schema migrations (Alembic), run programmatically when a store opens.

The scripts ship inside the package (``learnprivacy/store/migrations/versions``); there is
no ``alembic.ini``. :func:`upgrade` runs on the store's own connection, inside its
transaction, so a failed migration leaves the database as it was (SQLite and PostgreSQL
both have transactional DDL).
"""

from __future__ import annotations

from functools import cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

__all__ = ["current_revision", "downgrade", "head_revision", "upgrade"]

_LOCATION = "learnprivacy.store:migrations"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", _LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The newest revision shipped with this version of learnprivacy."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None  # the package ships at least one revision
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (default: the newest)."""
    command.upgrade(_config(connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    """Migrate the database down to ``revision`` (for tests and rollbacks of a release)."""
    command.downgrade(_config(connection), revision)
