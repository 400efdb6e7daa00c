"""Small helpers shared by the store's read, write, sweep and erasure modules."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table

from learnprivacy.store._schema import ANONYMISED, RESTRICTED, RecordTable

__all__ = ["chunked", "collector_paused", "ids_detail", "visible"]

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of at most ``size`` items, lazily."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one page of work, then restore it.

    A page (of a sweep, an ``add_all`` or a read) builds and drops thousands of
    short-lived objects (rows, records, keys, references) that reference counting frees;
    the allocations alone set off full collections of the whole heap, a quarter of a
    sweep's CPU time at 20,000 learners and a seventh of an ingest's or a read's. The
    collector is turned back on when the page ends (commit and key shreds included, or
    an error) only if it was on when the page began. It is process-wide: other threads
    of the process run without collection for that page.
    """
    was_on = gc.isenabled()
    if was_on:
        gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


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
