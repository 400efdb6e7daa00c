"""The subset of Moodle's schema learnprivacy reads, as SQLAlchemy Core tables."""

from __future__ import annotations

import functools
import re

import sqlalchemy as sa

from learnprivacy.errors import ConfigurationError, NotFoundError
from learnprivacy.moodle._schema_activities import activity_tables
from learnprivacy.moodle._schema_core import core_tables
from learnprivacy.moodle._schema_glossary import glossary_tables
from learnprivacy.moodle._schema_people import people_tables
from learnprivacy.moodle._schema_plugins import plugin_tables
from learnprivacy.moodle._schema_questions import question_tables
from learnprivacy.moodle._schema_social import social_tables
from learnprivacy.moodle._table import MoodleTables

__all__ = [
    "PLUGIN_TABLES",
    "TABLE_NAMES",
    "MissingTableError",
    "MoodleSchema",
    "check_prefix",
    "reset_sequences",
]

# Moodle's installer accepts a short alphanumeric prefix ending, by convention, in "_".
_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,9}")

#: Tables of optional plugins: a site may not have them, the adapter then reads nothing.
PLUGIN_TABLES = frozenset({"customcert", "customcert_issues"})


class MissingTableError(NotFoundError):
    """A Moodle core table the adapter needs is missing (or not readable).

    A :class:`~learnprivacy.errors.NotFoundError`: catch that. ``table`` is Moodle's name
    (``"course_modules"``), ``qualified`` the name in the database
    (``"mdl_course_modules"``): usually a wrong table prefix or database, or an account
    without ``SELECT`` on it.
    """

    def __init__(self, table: str, qualified: str | None = None) -> None:
        qualified = qualified or table
        super().__init__(
            f"table {qualified} is missing (or not readable): check the database, the table "
            f"prefix and the account's SELECT rights"
        )
        self.table = table
        self.qualified = qualified


class MoodleSchema:
    """Moodle tables (unprefixed names) bound to one table prefix.

    >>> schema = MoodleSchema("mdl_")
    >>> schema["user"].name
    'mdl_user'
    """

    def __init__(self, prefix: str = "mdl_") -> None:
        self.prefix = check_prefix(prefix)
        self.metadata: sa.MetaData = _metadata(self.prefix)

    def __getitem__(self, name: str) -> sa.Table:
        """The table Moodle calls ``name`` (``"user"``), with the prefix applied."""
        try:
            return self.metadata.tables[self.prefix + name]
        except KeyError:
            raise ConfigurationError(
                "unknown Moodle table; expected one of " + ", ".join(TABLE_NAMES)
            ) from None

    def __repr__(self) -> str:
        return f"<MoodleSchema prefix={self.prefix!r} tables={len(self.metadata.tables)}>"

    def tables(self) -> list[sa.Table]:
        """Every table, in dependency-free creation order."""
        return list(self.metadata.sorted_tables)


@functools.cache
def _metadata(prefix: str) -> sa.MetaData:
    """The tables for one prefix, built once per process.

    Sharing them makes every adapter on a prefix reuse SQLAlchemy's compiled statements
    (its cache is keyed on the Table objects), and spares rebuilding some sixty tables.
    The tables are never altered after this.
    """
    tables = MoodleTables(sa.MetaData(), prefix)
    for add in (
        core_tables,
        people_tables,
        activity_tables,
        plugin_tables,
        social_tables,
        question_tables,
        glossary_tables,
    ):
        add(tables)
    return tables.metadata


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a plain Moodle table prefix, else raise ``ConfigurationError``."""
    if not isinstance(prefix, str) or not (prefix == "" or _PREFIX.fullmatch(prefix)):
        raise ConfigurationError(
            "Moodle table prefix must be lower-case letters, digits and '_' (at most 10)"
        )
    return prefix


def reset_sequences(connection: sa.Connection, tables: list[sa.Table]) -> None:
    """Move PostgreSQL id sequences past the largest id (explicit ids do not move them)."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables:
        largest = connection.execute(sa.select(sa.func.max(table.c.id))).scalar()
        sequence = sa.func.pg_get_serial_sequence(table.name, "id")
        connection.execute(sa.select(sa.func.setval(sequence, largest or 1, largest is not None)))


#: Unprefixed names of every table in :class:`MoodleSchema`.
TABLE_NAMES: tuple[str, ...] = tuple(
    sorted(t.name for t in MoodleSchema("").metadata.sorted_tables)
)
