"""Rows straight from the driver, converted as SQLAlchemy would convert them.

``MoodleDatabase.batches`` reads the driver's cursor directly: building a SQLAlchemy row
object for each of a million rows costs more than the row itself. A few column types
still turn the driver's value into another (SQLite gives a ``NUMERIC`` column as a float,
SQLAlchemy makes it a ``Decimal``); :func:`row_converter` applies exactly those
conversions, the same functions SQLAlchemy would call, in one function generated once per
statement. Decimal conversions are remembered: a site has few distinct grades, and a
``Decimal`` is immutable, so the same value can be handed out twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["row_converter"]

Processor = Callable[[Any], Any]
#: Distinct values remembered per numeric column before the memory starts afresh.
_MEMO_SIZE = 4_096


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


def row_converter(
    statement: sa.Select[Any] | sa.CompoundSelect[Any],
    dialect: sa.Dialect,
    description: Sequence[Sequence[Any]] | None,
) -> Callable[[tuple[Any, ...]], tuple[Any, ...]] | None:
    """A function converting one driver row as SQLAlchemy would, or None if none need it.

    ``description`` is the cursor's (its second item is the driver's type code, which
    some dialects' conversions depend on).
    """
    columns = list(statement.selected_columns)
    codes = [None if description is None else item[1] for item in description or ()]
    processors: list[Processor | None] = []
    for index, column in enumerate(columns):
        code = codes[index] if index < len(codes) else None
        found = column.type.dialect_impl(dialect).result_processor(dialect, code)
        processor: Processor | None = found
        if found is not None and isinstance(column.type, sa.Numeric):
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
