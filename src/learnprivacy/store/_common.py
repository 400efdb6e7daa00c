"""Small helpers shared by the store's read, write, sweep and erasure modules."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table

from learnprivacy._collector import collector_paused
from learnprivacy.store._schema import ANONYMISED, RESTRICTED, RecordTable

__all__ = ["chunked", "collector_paused", "ids_detail", "visible"]

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
    audit: Any,
    rt: RecordTable,
    ids: Sequence[str],
    subjects: Sequence[str],
    *,
    subject_ref: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """How the audit log names rows: never by id. By record reference (a keyed
    pseudonym of type and id, ``AuditLog.record_ref``), or by subject reference where
    the id is the learner's own (their account). Enough to find the rows again in a
    restored backup, which holds the ids to compute the references from.

    ``audit`` is the store's ``AuditLog``; ``subject_ref`` a cached form of its
    ``subject_ref`` (sweeps keep one).
    """
    ref = audit.subject_ref if subject_ref is None else subject_ref
    if rt.id_personal:
        return {"subject_refs": sorted({ref(s) for s in set(subjects)})}
    record_ref = audit.record_ref
    return {"record_refs": [record_ref(rt.name, i) for i in ids]}
