"""How a content source is declared: one table of the fields it exports.

Each field of a :class:`ContentSource` is written once, as ``(key, how it is read,
description)``; the source's SELECT (the columns of every field, each once, in the order
first named), its row mapper (each key from its columns' values) and the descriptions its
metadata declares are all derived from that one table. The rows themselves (FROM, WHERE,
ORDER BY) come from the source's *frame*, which also names the tables the fields' columns
are written against (``"cm.id"``: column ``id`` of the table the frame calls ``cm``).

The join helpers shared by the readers of activity modules live here too.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.moodle._schema import MoodleSchema
from learnprivacy.moodle._time import from_unix_lenient

__all__ = [
    "ACTIVITY",
    "ContentSource",
    "Field",
    "Read",
    "activity_rows",
    "activity_source",
    "always",
    "decimal_text",
    "flag",
    "ident",
    "in_activity",
    "in_module_context",
    "iso",
    "module_users",
    "number",
    "or_none",
    "read",
    "same",
    "when",
    "whole",
    "yours",
]

#: The tables naming an activity's course module, read by every activity module's source.
ACTIVITY = ("course_modules", "modules")

#: The tables of a source's rows by the names its fields use, and its rows without columns.
Frame = Callable[[MoodleSchema, int], tuple[Mapping[str, sa.FromClause], sa.Select[Any]]]
UsersIn = Callable[[MoodleSchema, ContextLevel, int], sa.Select[Any] | None]


@attrs.frozen
class Read:
    """How one exported value is read: ``convert`` applied to the values of ``columns``
    (``"alias.column"``), followed by the user's id when ``with_user``."""

    columns: tuple[str, ...]
    convert: Callable[..., Any]
    with_user: bool = False


#: One exported field: its key, how it is read, its description.
Field = tuple[str, Read, str]


def read(convert: Callable[..., Any], *columns: str) -> Read:
    """A value computed from several columns (or none: a constant)."""
    return Read(columns, convert)


def _same(value: Any) -> Any:
    return value


def same(column: str) -> Read:
    """The column's value as Moodle stores it."""
    return Read((column,), _same)


def ident(column: str) -> Read:
    """An id, as text."""
    return Read((column,), str)


def flag(column: str) -> Read:
    """A 0/1 column as a boolean."""
    return Read((column,), bool)


def whole(column: str) -> Read:
    """An integer column (never NULL) as an ``int``."""
    return Read((column,), int)


def _or_none(value: Any) -> Any:
    return value or None


def or_none(column: str) -> Read:
    """The value, with Moodle's empty text (or 0) as None."""
    return Read((column,), _or_none)


def iso(value: Any) -> str | None:
    """A Unix time as ISO 8601 text (None for Moodle's 0 or NULL)."""
    at = from_unix_lenient(value)
    return None if at is None else at.isoformat()


def when(column: str) -> Read:
    """A Unix time column as ISO 8601 text."""
    return Read((column,), iso)


def decimal_text(value: Any) -> str | None:
    """An exact decimal as text (JSON has no decimal type), trailing zeros trimmed."""
    if value is None:
        return None
    return format(Decimal(value).normalize(), "f")


def number(column: str) -> Read:
    """A decimal column as exact text."""
    return Read((column,), decimal_text)


def yours(column: str) -> Read:
    """Whether the column holds the user's own id (other people appear only as flags)."""
    return Read((column,), operator.eq, with_user=True)


def always(value: Any) -> Read:
    """A value every row of the source has (what the rows' selection already says)."""
    return Read((), lambda: value)


@attrs.frozen(kw_only=True)
class ContentSource:
    """One kind of row read for one user, declared by the fields it exports.

    ``reads`` is every table the statements touch; ``optional`` sources belong to
    activity modules a site may lack (nothing then), where a missing core table is an
    error naming it. ``module`` names the activity type whose registry purpose applies.
    ``users_in`` gives the statement selecting the user ids with such rows in a context
    (None when the kind has no rows at that level). ``columns`` is the table of exported
    fields; ``fields`` (their descriptions), :meth:`statement` and :meth:`mapper` follow.
    ``table`` names the rows exported (by default the first table of ``reads``),
    ``summary`` says where they come from (by default: ``table``).
    """

    name: str
    reads: tuple[str, ...]
    frame: Frame
    columns: tuple[Field, ...]
    users_in: UsersIn
    description: str
    level: ContextLevel
    module: str | None = None
    optional: bool = False
    table: str = attrs.field()
    summary: str = attrs.field()
    fields: dict[str, str] = attrs.field(init=False, eq=False, repr=False)
    _selected: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)
    _readers: tuple[tuple[str, tuple[int, ...], Read], ...] = attrs.field(
        init=False, eq=False, repr=False
    )

    @table.default
    def _first_read(self) -> str:
        return self.reads[0]

    @summary.default
    def _one_table(self) -> str:
        return f"Moodle's {self.table} table, exported as {self.name} rows"

    @fields.default
    def _descriptions(self) -> dict[str, str]:
        return {key: description for key, _, description in self.columns}

    @_selected.default
    def _each_column_once(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for _, how, _ in self.columns for c in how.columns))

    @_readers.default
    def _positions(self) -> tuple[tuple[str, tuple[int, ...], Read], ...]:
        at = {column: i for i, column in enumerate(self._selected)}
        return tuple((key, tuple(at[c] for c in how.columns), how) for key, how, _ in self.columns)

    def statement(self, schema: MoodleSchema, user_id: int) -> sa.Select[Any]:
        """The user's rows, with the columns of every field."""
        tables, rows = self.frame(schema, user_id)
        columns = []
        for name in self._selected:
            table, column = name.split(".")
            columns.append(tables[table].c[column])
        return rows.add_columns(*columns)

    def mapper(self, row: Any, user_id: int) -> dict[str, Any]:
        """One row of :meth:`statement` as exported (JSON-ready values)."""
        values: dict[str, Any] = {}
        for key, positions, how in self._readers:
            args = [row[i] for i in positions]
            if how.with_user:
                args.append(user_id)
            values[key] = how.convert(*args)
        return values


def activity_source(name: str, module: str, **values: Any) -> ContentSource:
    """A source of rows in the context of a ``module`` activity (its purpose applies; a
    site without the module has none)."""
    return ContentSource(
        name=name, level=ContextLevel.MODULE, module=module, optional=True, **values
    )


def in_activity(
    schema: MoodleSchema, modname: str, rows: sa.FromClause, instance: sa.ColumnElement[Any]
) -> tuple[sa.FromClause, sa.Table]:
    """``rows`` (naming their ``modname`` activity's id in ``instance``) joined to its course
    module and module: ``(joined, cm)``. Each join names only tables joined before it
    (PostgreSQL refuses a condition naming a table not joined yet)."""
    cm, m = schema["course_modules"], schema["modules"]
    joined = rows.join(cm, cm.c.instance == instance).join(
        m, sa.and_(m.c.id == cm.c.module, m.c.name == modname)
    )
    return joined, cm


def in_module_context(
    schema: MoodleSchema, items: sa.FromClause, modname: str, instance: Any
) -> tuple[sa.FromClause, sa.Table, sa.Table]:
    """``items`` as in :func:`in_activity`, also joined to the module's context:
    ``(joined, cm, ctx)``."""
    joined, cm = in_activity(schema, modname, items, instance)
    ctx = schema["context"]
    on = sa.and_(ctx.c.instanceid == cm.c.id, ctx.c.contextlevel == int(ContextLevel.MODULE))
    return joined.join(ctx, on), cm, ctx


def activity_rows(
    schema: MoodleSchema, module: str, table: str, link: str
) -> tuple[sa.FromClause, sa.Table, sa.Table, sa.Table]:
    """Rows of ``table`` naming their activity in ``link`` (an instance of the ``module``
    activity: a row of the module's own table, named like it), joined to that instance
    and to its course module: ``(joined, rows, instance, cm)``."""
    rows, instance = schema[table], schema[module]
    joined, cm = in_activity(
        schema, module, rows.join(instance, instance.c.id == rows.c[link]), instance.c.id
    )
    return joined, rows, instance, cm


def module_users(module: str, table: str, link: str, *, authored_only: bool = False) -> UsersIn:
    """``users_in`` for the rows of :func:`activity_rows`: the users of one course module.
    ``authored_only`` leaves out rows no user wrote (``userid`` 0: group submissions)."""

    def users_in(schema: MoodleSchema, level: ContextLevel, instance: int) -> Any:
        if level is not ContextLevel.MODULE:
            return None
        joined, rows, _, cm = activity_rows(schema, module, table, link)
        statement = sa.select(rows.c.userid).select_from(joined).where(cm.c.id == instance)
        return statement.where(rows.c.userid > 0) if authored_only else statement

    return users_in
