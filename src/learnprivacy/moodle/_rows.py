"""Rows straight from the driver, converted as SQLAlchemy would convert them.

``MoodleDatabase.batches`` reads the driver's cursor directly: building a SQLAlchemy row
object for each of a million rows costs more than the row itself. A few column types
still turn the driver's value into another (SQLite gives a ``NUMERIC`` column as a float,
SQLAlchemy makes it a ``Decimal``); :func:`row_converter` applies exactly those
conversions, the same functions SQLAlchemy would call, in one function generated once per
statement. Decimal conversions are remembered: a site has few distinct grades, and a
``Decimal`` is immutable, so the same value can be handed out twice.

On PostgreSQL with psycopg, the fast path asks the driver for ``NUMERIC`` values as their
text (:func:`numeric_as_text`, for its own statements only) and makes each distinct text
a ``Decimal`` once, as psycopg's own loader would (``Decimal(text)``): building a
``Decimal`` for every cell was half the cost of fetching the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

__all__ = ["NUMERIC_AS_TEXT", "numeric_as_text", "row_converter"]

#: Execution option of the statements whose NUMERIC columns psycopg gives as text.
NUMERIC_AS_TEXT = "learnprivacy_numeric_as_text"
_PG_NUMERIC = 1700  # PostgreSQL's type oid of NUMERIC

Processor = Callable[[Any], Any]
#: Distinct values remembered per numeric column before the memory starts afresh.
_MEMO_SIZE = 4_096


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _memoised(processor: Processor) -> Processor:
    memo: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        try:
            return memo[value]
        except KeyError:
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            converted = memo[value] = processor(value)
            return converted
        except TypeError:  # an unhashable driver value: convert it every time
            return processor(value)

    return convert


def _text_numeric(conn: sa.Connection, cursor: Any, *event: Any) -> None:
    # before_cursor_execute; event is (statement, parameters, context, executemany).
    context = event[2]
    if context is not None and context.execution_options.get(NUMERIC_AS_TEXT):
        from psycopg.types.string import TextLoader

        cursor.adapters.register_loader("numeric", TextLoader)


def numeric_as_text(engine: sa.Engine) -> bool:
    """Let statements run with :data:`NUMERIC_AS_TEXT` get NUMERIC values as text.

    Only for psycopg (returns whether it applies); other statements are left as they are.
    """
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return False
    event.listen(engine, "before_cursor_execute", _text_numeric)
    return True


def _then(first: Processor, second: Processor | None) -> Processor:
    return first if second is None else lambda value: second(first(value))


def row_converter(
    statement: sa.Select[Any] | sa.CompoundSelect[Any],
    dialect: sa.Dialect,
    description: Sequence[Sequence[Any]] | None,
    *,
    numeric_text: bool = False,
    keep_numeric_text: bool = False,
) -> Callable[[tuple[Any, ...]], tuple[Any, ...]] | None:
    """A function converting one driver row as SQLAlchemy would, or None if none need it.

    ``description`` is the cursor's (its second item is the driver's type code, which
    some dialects' conversions depend on). ``numeric_text``: the statement ran with
    :data:`NUMERIC_AS_TEXT`, its NUMERIC cells are text to make Decimals of first, or to
    leave as text with ``keep_numeric_text`` (for a row mapper that makes the Decimals of
    the texts it needs itself, as ``Decimal(text)``).
    """
    columns = list(statement.selected_columns)
    codes = [None if description is None else item[1] for item in description or ()]
    processors: list[Processor | None] = []
    for index, column in enumerate(columns):
        code = codes[index] if index < len(codes) else None
        found = column.type.dialect_impl(dialect).result_processor(dialect, code)
        processor: Processor | None = found
        if numeric_text and code == _PG_NUMERIC:
            # What psycopg's loader does with the text, once per distinct value (or left
            # to the mapper).
            processor = None if keep_numeric_text else _memoised(_then(_decimal, found))
        elif found is not None and isinstance(column.type, sa.Numeric):
            processor = _memoised(found)
        processors.append(processor)
    if all(p is None for p in processors):
        return None
    namespace: dict[str, Any] = {}
    cells = []
    for index, processor in enumerate(processors):
        if processor is None:
            cells.append(f"row[{index}]")
        else:
            namespace[f"_p{index}"] = processor
            cells.append(f"_p{index}(row[{index}])")
    source = "def convert(row):\n    return (" + ", ".join(cells) + ",)\n"
    exec(compile(source, "<moodle row>", "exec"), namespace)  # noqa: S102
    converter: Callable[[tuple[Any, ...]], tuple[Any, ...]] = namespace["convert"]
    return converter
