"""Small helpers shared by the store's read, write, sweep and erasure modules."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table

from learnprivacy.store._schema import ANONYMISED, RESTRICTED, RecordTable

__all__ = ["chunked", "ids_detail", "visible"]

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of at most ``size`` items, lazily."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def visible(table: Table, *, include_restricted: bool) -> list[ColumnElement[bool]]:
    """Conditions of rows normal reads see: not anonymised, not restricted unless asked."""
    conditions: list[ColumnElement[bool]] = [table.c[ANONYMISED].is_(None)]
    if not include_restricted:
        conditions.append(table.c[RESTRICTED].is_(None))
    return conditions


def ids_detail(
    ref: Callable[[str], str] | Any, rt: RecordTable, ids: Sequence[str], subjects: Sequence[str]
) -> dict[str, Any]:
    """How the audit log names rows: by id, or by subject reference where the id is
    personal (a learner's account). Enough to find the rows again in a restored backup.

    ``ref`` maps a learner id to its reference (an ``AuditLog`` is accepted too).
    """
    if hasattr(ref, "subject_ref"):
        ref = ref.subject_ref
    if rt.id_personal:
        return {"subject_refs": sorted({ref(s) for s in set(subjects)})}
    return {"ids": list(ids)}
