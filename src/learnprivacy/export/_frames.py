"""Flat rows and pandas data frames, for compliance analysis in a notebook."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from learnprivacy.errors import ConfigurationError
from learnprivacy.export._cells import flatten
from learnprivacy.records import to_json_dict

__all__ = ["to_dataframe", "to_records"]


def to_records(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Flat dicts, one per item: learnprivacy records, rows (mappings) or report rows.

    A record becomes its JSON form with a ``record_type`` column first; nested values are
    spread over dotted columns (``score.raw``, ``score.scaled``), so every value is a
    scalar a data frame or a CSV can hold.
    """
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, Mapping):
            out.append(dict(flatten(item)))
        elif attrs.has(type(item)):
            row: dict[str, Any] = {"record_type": type(item).__name__}
            row.update(flatten(to_json_dict(item)))
            out.append(row)
        else:
            raise ConfigurationError("to_records takes records or mappings")
    return out


def to_dataframe(items: Iterable[Any]) -> Any:
    """A ``pandas.DataFrame`` of :func:`to_records` (pandas is optional).

    Raises ConfigurationError naming the ``pandas`` extra when pandas is not installed.
    """
    try:
        pandas = importlib.import_module("pandas")
    except ImportError:
        raise ConfigurationError(
            "to_dataframe needs pandas: pip install 'learnprivacy[pandas]'"
        ) from None
    return pandas.DataFrame.from_records(to_records(items))
