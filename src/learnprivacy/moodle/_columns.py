"""XMLDB field types as SQLAlchemy columns, the way Moodle's own DDL generators map them.

Moodle describes its tables in ``db/install.xml`` files (XMLDB) and turns them into DDL per
engine. These helpers follow the PostgreSQL generator, which is the most precise:

- ``int(n)``: ``BIGINT`` when n > 9, ``INTEGER`` when n > 4, else ``SMALLINT``;
- ``number(n, d)``: ``NUMERIC(n, d)``; ``char(n)``: ``VARCHAR(n)``; ``text``: ``TEXT``;
- a ``SEQUENCE="true"`` id is ``BIGSERIAL`` (``INTEGER PRIMARY KEY`` on SQLite, the only
  form SQLite auto-increments);
- a ``NOT NULL`` char column without default gets ``DEFAULT ''`` (Moodle's
  ``default_for_char``), so rows inserted without it behave as in Moodle.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

__all__ = ["char", "index", "integer", "number", "sequence_id", "text"]

# PostgreSQL truncates identifiers at 63 bytes; longer index names would collide.
_MAX_IDENTIFIER = 63


def _int_type(length: int) -> sa.types.TypeEngine[int]:
    if length > 9:
        return sa.BigInteger()
    if length > 4:
        return sa.Integer()
    return sa.SmallInteger()


def sequence_id() -> sa.Column[int]:
    """The ``id`` primary key every Moodle table has (``int(10)``, ``SEQUENCE="true"``)."""
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def integer(
    name: str, length: int, *, notnull: bool = True, default: int | None = None
) -> sa.Column[int]:
    """An XMLDB ``int`` field of ``length`` digits."""
    return sa.Column(
        name,
        _int_type(length),
        nullable=not notnull,
        server_default=None if default is None else sa.text(str(default)),
    )


def number(
    name: str, length: int, decimals: int, *, notnull: bool = True, default: str | None = None
) -> sa.Column[object]:
    """An XMLDB ``number`` field: exact decimal, read back as ``Decimal``."""
    return sa.Column(
        name,
        sa.Numeric(length, decimals),
        nullable=not notnull,
        server_default=None if default is None else sa.text(default),
    )


def char(
    name: str, length: int, *, notnull: bool = True, default: str | None = None
) -> sa.Column[str]:
    """An XMLDB ``char`` field; NOT NULL without default gets ``''`` like Moodle's DDL."""
    if default is None and notnull:
        default = ""
    return sa.Column(
        name,
        sa.String(length),
        nullable=not notnull,
        server_default=None if default is None else default,
    )


def text(name: str, *, notnull: bool = False) -> sa.Column[str]:
    """An XMLDB ``text`` field (Moodle gives text columns no default)."""
    return sa.Column(name, sa.Text(), nullable=not notnull)


def index(prefix: str, table: str, fields: str, *, unique: bool = False) -> sa.Index:
    """An index named the way Moodle names them: ``<prefix><table>_<fields>_ix`` / ``_uix``."""
    columns = [f.strip() for f in fields.split(",")]
    suffix = "uix" if unique else "ix"
    name = f"{prefix}{table}_{'_'.join(columns)}_{suffix}"
    if len(name) > _MAX_IDENTIFIER:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[: _MAX_IDENTIFIER - len(suffix) - 10]}_{digest}_{suffix}"
    return sa.Index(name, *columns, unique=unique)
