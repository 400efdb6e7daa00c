"""The subset of Moodle's schema learnprivacy reads, as SQLAlchemy Core tables.

Moodle declares its tables as data (``db/install.xml``); ``tables.txt`` is that data,
transcribed, and every table here (and the fixture's) is built from it, once per prefix.
"""

from __future__ import annotations

import functools
import re
from importlib.resources import files
from typing import Any

import attrs
import sqlalchemy as sa

from learnprivacy.errors import ConfigurationError, NotFoundError
from learnprivacy.moodle._columns import char, integer, number, text
from learnprivacy.moodle._table import MoodleTables

__all__ = [
    "PLUGIN_TABLES",
    "TABLE_NAMES",
    "MissingTableError",
    "MoodleSchema",
    "TableSpec",
    "check_prefix",
    "reset_sequences",
    "table_group",
    "table_specs",
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
    for spec in table_specs():
        tables.add(
            spec.name,
            *(_column(*column) for column in spec.columns),
            indexes=spec.indexes,
            unique=spec.unique,
        )
    return tables.metadata


@attrs.frozen
class TableSpec:
    """One table of ``tables.txt``: its group, its unprefixed name, its columns after
    ``id`` (``(name, XMLDB type, its numbers, NOT NULL, default)``) and its indexes."""

    group: str
    name: str
    columns: tuple[tuple[str, str, tuple[int, ...], bool, str | None], ...]
    indexes: tuple[str, ...]
    unique: tuple[str, ...]


_COLUMN = re.compile(
    r"(?P<name>\w+) (?P<type>int|number|char|text)(?:\((?P<numbers>\d+(?:,\d+)?)\))?"
    r"(?: (?P<null>null|notnull))?(?: default (?P<default>.+))?"
)
# How many numbers each XMLDB type takes, the word marking a column that is not the
# type's usual nullability, and whether it may have a default.
_TYPES = {
    "int": (1, "null", True),
    "char": (1, "null", True),
    "number": (2, "null", True),
    "text": (0, "notnull", False),
}


@functools.cache
def table_specs() -> tuple[TableSpec, ...]:
    """Every Moodle table the adapter knows, from ``tables.txt``, in its order there."""
    return parse_tables((files("learnprivacy.moodle") / "tables.txt").read_text(encoding="utf-8"))


def parse_tables(source: str) -> tuple[TableSpec, ...]:
    """The tables of a text in the form of ``tables.txt``; a line that is not in that
    form raises :class:`~learnprivacy.errors.ConfigurationError` naming it."""
    specs: list[TableSpec] = []
    group = ""
    for at, line in enumerate(source.splitlines(), start=1):
        word, _, rest = line.strip().partition(" ")
        if not word or word.startswith("#"):
            continue
        if word == "group":
            group = rest
        elif word == "table":
            specs.append(TableSpec(group, rest, (), (), ()))
        elif specs and word == "index":
            specs[-1] = attrs.evolve(specs[-1], indexes=(*specs[-1].indexes, rest))
        elif specs and word == "unique":
            specs[-1] = attrs.evolve(specs[-1], unique=(*specs[-1].unique, rest))
        elif specs and (column := _spec(line.strip())):
            specs[-1] = attrs.evolve(specs[-1], columns=(*specs[-1].columns, column))
        else:
            raise ConfigurationError(f"tables.txt, line {at}: not a table, column or index")
    return tuple(specs)


def _spec(line: str) -> tuple[str, str, tuple[int, ...], bool, str | None] | None:
    """A column line's ``(name, type, numbers, NOT NULL, default)``; None if it is not one."""
    found = _COLUMN.fullmatch(line)
    if found is None:
        return None
    kind, null, default = found["type"], found["null"], found["default"]
    numbers = tuple(int(n) for n in found["numbers"].split(",")) if found["numbers"] else ()
    count, unusual, defaults = _TYPES[kind]
    if len(numbers) != count or null not in (None, unusual) or (default and not defaults):
        return None
    notnull = (null is None) != (kind == "text")
    return found["name"], kind, numbers, notnull, default


def _column(
    name: str, kind: str, numbers: tuple[int, ...], notnull: bool, default: str | None
) -> sa.Column[Any]:
    """One column of a :class:`TableSpec`, typed as Moodle's DDL generators type it."""
    if kind == "int":
        return integer(name, *numbers, notnull=notnull, default=_integer(default))
    if kind == "number":
        return number(name, *numbers, notnull=notnull, default=default)
    if kind == "char":
        return char(name, *numbers, notnull=notnull, default=default)
    return text(name, notnull=notnull)


def _integer(default: str | None) -> int | None:
    return None if default is None else int(default)


def table_group(group: str) -> tuple[str, ...]:
    """The unprefixed names of the tables of one group of ``tables.txt``, in order."""
    return tuple(spec.name for spec in table_specs() if spec.group == group)


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
