"""Reading records from CSV or JSON files for ``learnprivacy import``.

JSON files hold either ``{"Learner": [...], "Progress": [...]}`` (record type names as
keys, learners first) or a list of objects of the ``--type`` given. CSV files hold one
record type (``--type``), one record per row, with the field names as header; nested
values use dotted columns (``score.raw``), as the exports write them, and an empty cell is
a missing value. Every row is validated before anything is written, and the store adds
them all in one transaction: a bad file imports nothing.

A JSON file holding xAPI statements (a list of statements, a StatementResult, or JSON
Lines ``.jsonl``) is read with ``learnprivacy.export.xapi``: the statements this
library's profile understands become Progress records of the store's learners (actors
named as the store names them), the others are skipped and counted.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnprivacy.cli._progress import progress
from learnprivacy.errors import ValidationError
from learnprivacy.records import Learner, from_json_dict
from learnprivacy.records._base import record_type

if TYPE_CHECKING:
    from learnprivacy.cli._app import Env

__all__ = ["import_file", "read_records"]


def _nest(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column, cell in row.items():
        if column is None:
            raise ValidationError("a CSV row has more cells than the header", field="csv")
        value: Any = None if cell == "" else cell
        head, _, tail = column.partition(".")
        if tail:
            if value is not None:
                out.setdefault(head, {})[tail] = value
            else:
                out.setdefault(head, None)
        else:
            out[head] = value
    # Decimal strings are exact; scores and amounts read back as Decimal.
    return out


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            nested = _nest(row)
            nested.pop("scaled", None)
            if isinstance(nested.get("score"), dict):
                nested["score"].pop("scaled", None)
            yield nested


def read_records(
    path: Path,
    *,
    record_type_name: str | None = None,
    on_record: Callable[[int], None] | None = None,
) -> list[Any]:
    """Every record in the file, validated, learners first.

    ``on_record(1)`` is called after each record is built (for a progress bar).
    """
    records: list[Any] = []
    tick = on_record or (lambda _n: None)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        if record_type_name is None:
            raise ValidationError("a CSV import needs --type", field="type")
        cls = record_type(record_type_name)
        for number, row in enumerate(_csv_rows(path), start=2):
            records.append(_build(cls, row, f"line {number}"))
            tick(1)
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValidationError(f"{path.name} is not valid UTF-8 JSON", field="file") from None
        if isinstance(data, dict):
            groups = list(data.items())
        elif isinstance(data, list) and record_type_name is not None:
            groups = [(record_type_name, data)]
        else:
            raise ValidationError(
                "JSON must map record types to lists, or be a list with --type", field="file"
            )
        for name, items in groups:
            cls = record_type(name)
            if not isinstance(items, list):
                raise ValidationError(f"{name} must be a list of objects", field=name)
            for index, item in enumerate(items):
                records.append(_build(cls, item, f"{name}[{index}]"))
                tick(1)
    else:
        raise ValidationError("import reads .csv or .json files", field="file")
    records.sort(key=lambda r: not isinstance(r, Learner))
    return records


def _build(cls: type[Any], data: Any, where: str) -> Any:
    try:
        return from_json_dict(cls, data)
    except ValidationError as exc:
        # The message names the field and rule only; add where it is in the file.
        raise ValidationError(f"{where}: {exc}", field=exc.field) from None


def _holds_statements(path: Path) -> bool:
    """Whether ``path`` is a file of xAPI statements rather than of records."""
    if path.suffix.lower() == ".jsonl":
        return True
    if path.suffix.lower() != ".json":
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    if isinstance(data, dict) and isinstance(data.get("statements"), list):
        data = data["statements"]
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(item, dict) and "actor" in item and "verb" in item for item in data)
    )


def _read_statements(store: Any, path: Path, profile: Any) -> tuple[list[Any], int]:
    """Progress records from the statements of ``path``; and how many were skipped."""
    from learnprivacy.export.xapi import (
        learners_by_actor,
        progress_from_statements,
        read_statements,
    )
    from learnprivacy.records import Progress

    imported = progress_from_statements(
        read_statements(path), learner_of=learners_by_actor(store, profile), profile=profile
    )
    # Imported ids derive from statement ids: importing a file again adds nothing.
    fresh = [r for r in imported.records if store.get(Progress, r.id) is None]
    skipped = sum(imported.skipped.values()) + len(imported.records) - len(fresh)
    return fresh, skipped


def import_file(
    env: Env,
    store: Any,
    path: Path,
    *,
    record_type: str | None,
    xapi_home_page: str | None = None,
) -> dict[str, int]:
    """Validate every record of ``path`` then add them all in one transaction.

    Two progress bars: reading and checking, then encrypting and storing (the store
    pulls the records as it writes its batches, so the bar follows the real work). A
    file of xAPI statements gives Progress records (see the module's docstring).
    """
    if _holds_statements(path):
        with progress(env, f"Reading xAPI statements from {path.name}", unit="records"):
            profile = env.settings.xapi_profile(home_page=xapi_home_page)
            fresh, skipped = _read_statements(store, path, profile)
        with progress(env, "Encrypting and storing", total=len(fresh), unit="records") as bar:
            store.add_all(bar.track(fresh))
        return {"Progress": len(fresh), "skipped statements": skipped}
    with progress(env, f"Reading {path.name}", unit="records") as bar:
        records = read_records(path, record_type_name=record_type, on_record=bar.advance)
    with progress(env, "Encrypting and storing", total=len(records), unit="records") as bar:
        store.add_all(bar.track(records))
    counts: dict[str, int] = {}
    for record in records:
        counts[type(record).__name__] = counts.get(type(record).__name__, 0) + 1
    return counts
