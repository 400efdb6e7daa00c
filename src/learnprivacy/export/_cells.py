"""Values in export files: JSON-ready conversion, flattening and safe CSV cells."""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from learnprivacy._validators import require_aware
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ValidationError
from learnprivacy.records import Score
from learnprivacy.records._serialise import format_duration

__all__ = [
    "RowEncoder",
    "csv_cell",
    "dumps_row",
    "flatten",
    "json_default",
    "neutralise_formula",
    "plain",
]

# Characters that make Excel, LibreOffice or Google Sheets read a cell as a formula (or
# that some of them strip before doing so): OWASP's CSV injection list.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_CHARS = frozenset(_FORMULA_START)
_SCALARS = frozenset({str, int, float, bool})
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def json_default(value: object) -> object:
    """``json.dumps`` hook: the export's JSON form of values that are not JSON types.

    Aware datetimes become ISO 8601 with their offset, ``Decimal`` a string (no rounding),
    durations ISO 8601, enums their value. Naive datetimes are refused: a time without a
    zone cannot be exported unambiguously.
    """
    if isinstance(value, dt.datetime):
        return require_aware(value, "export.row").isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, LawfulBasis):
        return value.name.lower()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Score):
        # The same form as to_json_dict gives a record's score.
        return {
            "raw": json_default(value.raw) if isinstance(value.raw, Decimal) else value.raw,
            "min": json_default(value.min) if isinstance(value.min, Decimal) else value.min,
            "max": json_default(value.max) if isinstance(value.max, Decimal) else value.max,
            "scaled": round(value.scaled, 6),
        }
    raise ValidationError(
        f"export rows hold JSON values only, not {type(value).__name__}", field="export.row"
    )


def plain(value: Any) -> Any:
    """``value`` with every nested non-JSON value converted as :func:`json_default` does."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return plain(json_default(value))


# One encoder for every row: json.dumps with options builds a new one per call.
_ROW_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, default=json_default, separators=(",", ":")
).encode


def _refused(exc: ValueError) -> ValidationError:
    if isinstance(exc, ValidationError):
        return exc
    return ValidationError("export rows must not hold NaN or infinite numbers", field="export.row")


def dumps_row(row: Mapping[str, Any]) -> str:
    """One row as compact JSON on a single line (UTF-8 text, no NaN)."""
    try:
        return _ROW_ENCODER(row)
    except ValueError as exc:
        raise _refused(exc) from None


class RowEncoder:
    """:func:`dumps_row` for one writer, its C encoder made once instead of once a row.

    Not to be shared between threads: the encoder's record of the containers it is inside
    (what catches a row that contains itself) belongs to one encoding at a time, and the
    package writer encodes under its lock. After a failed row that record may still name
    the row's containers, so the encoder is made anew.
    """

    def __init__(self) -> None:
        self._encode: Callable[[Any, int], Any] | None = None
        self._make()

    def _make(self) -> None:
        make = getattr(json.encoder, "c_make_encoder", None)
        if make is not None:
            self._encode = make(
                {},
                json_default,
                json.encoder.encode_basestring,
                None,
                ":",
                ",",
                False,
                False,
                False,
            )

    def __call__(self, row: Mapping[str, Any]) -> str:
        """The row as :func:`dumps_row` writes it."""
        encode = self._encode
        if encode is None:
            return dumps_row(row)
        try:
            return "".join(encode(row, 0))
        except ValueError as exc:
            self._make()
            raise _refused(exc) from None
        except BaseException:
            self._make()
            raise


def flatten(row: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(column, value)`` pairs: nested objects become dotted columns (``score.raw``)."""
    for key, value in row.items():
        name = f"{prefix}{key}" if prefix else key
        # Scalars first: this runs for every cell of an export.
        if value is None or type(value) in _SCALARS:
            yield name, value
        elif isinstance(value, Mapping) and value:
            yield from flatten(value, f"{name}.")
        else:
            yield name, value


def cells_reader(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], list[Any]]:
    """The CSV cells of a row for ``columns``: what ``csv_cell(dict(flatten(row)).get(c))``
    gives for each column, reading the nested values directly (no flat copy per row).
    Integers and floats are left as numbers, which ``csv.writer`` writes as the same text.

    For columns of at most two segments (``score.raw``), which is every column of a record
    class; deeper ones take the flat copy.
    """
    paths = [tuple(column.split(".")) for column in columns]
    if any(len(path) > 2 for path in paths):

        def flat_cells(row: Mapping[str, Any]) -> list[str]:
            get = dict(flatten(row)).get
            return [csv_cell(get(column)) for column in columns]

        return flat_cells

    # Consecutive columns under one key ("score.raw", "score.min", ...) are read from one
    # lookup of that key; a top-level column has no second segment (None).
    plan: list[tuple[str, tuple[str, ...] | None]] = []
    for path in paths:
        if len(path) == 1:
            plan.append((path[0], None))
        elif plan and plan[-1][0] == path[0] and plan[-1][1] is not None:
            plan[-1] = (path[0], (*plan[-1][1], path[1]))
        else:
            plan.append((path[0], (path[1],)))
    absent = {len(under): (None,) * len(under) for _, under in plan if under is not None}

    def cells(row: Mapping[str, Any]) -> list[Any]:
        values: list[Any] = []
        get = row.get
        for key, under in plan:
            value = get(key)
            if under is None:
                values.append(value)
            elif type(value) is dict:
                values.extend(map(value.get, under))
            elif isinstance(value, Mapping):
                values.extend(value.get(name) for name in under)
            else:
                # A scalar or null where the columns expect an object: no value.
                values.extend(absent[len(under)])
        # Numbers and text that no spreadsheet reads as a formula are written as they
        # are (csv writes an int or a float as str() does, which is csv_cell's text).
        return [
            value
            if (kind := type(value)) is int
            or kind is float
            or (kind is str and not (value and value[0] in _FORMULA_CHARS))
            else _leaf_cell(value)
            for value in values
        ]

    return cells


def _leaf_cell(value: Any) -> str:
    # flatten() names a non-empty mapping by its keys, never by its own column.
    return "" if isinstance(value, Mapping) and value else csv_cell(value)


def neutralise_formula(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula; plain numbers pass.

    ``=1+1``, ``+33 6...``, ``-cmd``, ``@SUM(...)``, and text starting with a tab or a
    carriage return are neutralised; ``-12.5`` and ``+3`` stay numbers.
    """
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def csv_cell(value: Any) -> str:
    """The text of one CSV cell: empty for null, ``true``/``false``, JSON for lists."""
    kind = type(value)
    if kind is str:
        text: str = value
        if text and text[0] in _FORMULA_CHARS and not _PLAIN_NUMBER.match(text):
            return "'" + text
        return text
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    # Integers and finite floats are plain numbers: a leading minus sign is safe.
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)
    if isinstance(value, str):
        return neutralise_formula(value)
    if isinstance(value, list | tuple | Mapping):
        return neutralise_formula(
            json.dumps(value, ensure_ascii=False, allow_nan=False, default=json_default)
        )
    if isinstance(value, int | float):
        return neutralise_formula(str(value))
    return csv_cell(json_default(value))
