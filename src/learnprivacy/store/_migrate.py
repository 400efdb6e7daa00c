"""Versioned schema migrations (Alembic), run programmatically when a store opens.

The scripts ship inside the package (``learnprivacy/store/migrations/versions``); there is
no ``alembic.ini``. :func:`upgrade` runs on the store's own connection, inside its
transaction, so a failed migration leaves the database as it was (SQLite and PostgreSQL
both have transactional DDL).

The store's revision is kept in its own table, :data:`VERSION_TABLE`, not in Alembic's
default ``alembic_version``: an LMS that runs its own Alembic migrations in the same
database keeps that table to itself. Stores created before used ``alembic_version``;
:func:`adopt_legacy_version` moves their row out of it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import Connection, column, delete, func, inspect, select, table

from learnprivacy.errors import ConfigurationError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD_REVISION",
    "LEGACY_VERSION_TABLE",
    "VERSION_TABLE",
    "adopt_legacy_version",
    "current_revision",
    "downgrade",
    "head_revision",
    "script_head",
    "upgrade",
]

_LOCATION = "learnprivacy.store:migrations"

#: The table holding the store's schema revision.
VERSION_TABLE = "learnprivacy_alembic_version"
#: Alembic's default version table, which stores created before used (and LMSs use).
LEGACY_VERSION_TABLE = "alembic_version"

#: The newest revision shipped, known without loading Alembic: opening a store that is up
#: to date reads one row and imports no Alembic at all. A test holds it equal to
#: :func:`script_head`, the newest script Alembic finds.
HEAD_REVISION = "0007"

# Alembic (about 0.2 s of imports) is loaded only when a migration actually runs.


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_config())
    return frozenset(script.revision for script in scripts.walk_revisions())


def head_revision() -> str:
    """The newest revision shipped with this version of learnprivacy."""
    return HEAD_REVISION


@cache
def script_head() -> str:
    """The newest migration script, as Alembic finds it (loads Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None  # the package ships at least one revision
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    version = table(VERSION_TABLE, column("version_num"))
    rows = connection.execute(select(version.c.version_num)).scalars().all()
    if len(rows) > 1:
        raise ConfigurationError("the store's version table holds more than one revision")
    return str(rows[0]) if rows else None


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (default: the newest)."""
    from alembic import command

    command.upgrade(_config(connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    """Migrate the database down to ``revision`` (for tests and rollbacks of a release)."""
    from alembic import command

    command.downgrade(_config(connection), revision)


def adopt_legacy_version(connection: Connection) -> str | None:
    """Record in :data:`VERSION_TABLE` the revision of a store created with the legacy
    version table; return it, or ``None`` when there is nothing to adopt.

    Only a database holding the store's own tables but no :data:`VERSION_TABLE` is
    concerned. Its revision is the schema version in ``lp_meta``, which every migration
    updates in the same transaction as its changes (revision ``000N`` writes ``N``).
    The version there is trusted rather than ``alembic_version``'s rows, which may be
    an LMS's. The row of that revision is removed
    from ``alembic_version``, and the table dropped if that row was its only one (the
    store's Alembic created it). Any other row is an LMS's own and is left untouched.
    """
    names = set(inspect(connection).get_table_names())
    if VERSION_TABLE in names or "lp_meta" not in names:
        return None
    meta = table("lp_meta", column("key"), column("value"))
    version = connection.execute(
        select(meta.c.value).where(meta.c.key == "schema_version")
    ).scalar()
    revision = f"{int(version):04d}" if version is not None and str(version).isdigit() else None
    if revision not in _revisions():
        raise ConfigurationError(
            "the store's tables are here but their schema version is unknown to this "
            "version of learnprivacy"
        )
    assert revision is not None  # checked just above
    from alembic import command

    command.stamp(_config(connection), revision)
    if LEGACY_VERSION_TABLE in names:
        legacy = table(LEGACY_VERSION_TABLE, column("version_num"))
        connection.execute(delete(legacy).where(legacy.c.version_num == revision))
        left = connection.execute(select(func.count()).select_from(legacy)).scalar_one()
        if not left:
            connection.exec_driver_sql(f"DROP TABLE {LEGACY_VERSION_TABLE}")
    return revision
