"""Store.iter_records_of: a learner's records streamed page by page, with nothing held open."""

from __future__ import annotations

import datetime as dt
import gc
import sqlite3
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from learnprivacy.errors import UnknownCodeError, ValidationError
from learnprivacy.records import Invoice, Learner, Progress, ProgressStatus
from learnprivacy.store import Store, _reads
from tests.store_fixtures import NOW, learner, records_for

#: More rows than the first page and two full pages: every page boundary is crossed.
_MANY = _reads.FIRST_PAGE + 2 * _reads.PAGE + 37


def _progress(learner_id: str, count: int) -> Iterator[Progress]:
    for i in range(count):
        yield Progress(
            id=f"{learner_id}-S{i:06d}",
            learner_id=learner_id,
            course_id=f"C{i % 7}",
            status=ProgressStatus.PASSED,
            recorded_at=NOW - dt.timedelta(minutes=i),
        )


def _key(record: Any) -> tuple[str, str]:
    return type(record).__name__, record.id


def test_streams_what_records_of_returns_in_the_same_order(store: Store) -> None:
    """Across page boundaries the stream equals records_of, in its order (learner first),
    and no record of another learner slips in."""
    store.add_all([learner("L1"), learner("L2"), *records_for("L1"), *records_for("L2")])
    store.add_all(_progress("L1", _MANY))
    store.add_all(_progress("L2", 5))
    streamed = list(store.iter_records_of("L1"))
    assert streamed == store.records_of("L1")
    assert len(streamed) == 1 + len(records_for("L1")) + _MANY
    assert isinstance(streamed[0], Learner)
    ids = [r.id for r in streamed if isinstance(r, Progress)]
    assert ids == sorted(ids)
    assert all(getattr(r, "learner_id", r.id) == "L1" for r in streamed)


def test_restricted_records_and_record_types(store: Store) -> None:
    """Restricted records only with include_restricted; record_types (classes or names)
    keeps only those types, still in the store's order."""
    store.add_all([learner("L1"), *records_for("L1")])
    store.restrict(Invoice, "L1-INV1", reason="case 12", now=NOW)
    assert _key(store.get(Invoice, "L1-INV1", include_restricted=True)) not in {
        _key(r) for r in store.iter_records_of("L1")
    }
    every = list(store.iter_records_of("L1", include_restricted=True))
    assert every == store.records_of("L1", include_restricted=True)
    chosen = list(store.iter_records_of("L1", record_types=["Invoice", Learner]))
    assert [type(r) for r in chosen] == [Learner]
    chosen = list(
        store.iter_records_of("L1", include_restricted=True, record_types=[Invoice, "Learner"])
    )
    assert [type(r) for r in chosen] == [Learner, Invoice]
    assert list(store.iter_records_of("L1", record_types=[])) == []
    assert list(store.iter_records_of("nobody")) == []


def test_bad_arguments_fail_at_the_call(store: Store) -> None:
    """Wrong arguments raise when iter_records_of is called, not at the first record."""
    with pytest.raises(UnknownCodeError):
        store.iter_records_of("L1", record_types=["NoSuchType"])
    with pytest.raises(ValidationError):
        store.iter_records_of("L1", record_types="Learner")
    with pytest.raises(ValidationError):
        store.iter_records_of("")


def _no_open_transaction(store: Store, url: str) -> None:
    """Fail if any transaction of ``store`` is open on its database."""
    if store._db.is_sqlite:
        # A reader holding a WAL snapshot makes a TRUNCATE checkpoint report busy.
        raw = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0)
        try:
            busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            raw.close()
        assert busy == 0
        return
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
            # Any open transaction that read the table holds a lock conflicting with this.
            connection.exec_driver_sql("LOCK TABLE lp_progress IN ACCESS EXCLUSIVE MODE")
    finally:
        engine.dispose()


def test_no_transaction_is_held_between_pages(store: Store, store_url: str) -> None:
    """While the caller holds a half-read stream, no transaction of the store is open: an
    erasure's checkpoint (SQLite) or an exclusive lock (PostgreSQL) goes through."""
    store.add_all([learner("L1"), *_progress("L1", _reads.FIRST_PAGE + 10)])
    stream = store.iter_records_of("L1")
    assert isinstance(next(stream), Learner)
    assert isinstance(next(stream), Progress)
    _no_open_transaction(store, store_url)
    assert sum(1 for _ in stream) == _reads.FIRST_PAGE + 9


def test_records_erased_meanwhile_are_not_streamed(store: Store) -> None:
    """An erasure committed between two pages: later pages leave the erased records out,
    and the stream ends cleanly instead of failing on shredded keys."""
    store.add_all([learner("L1"), learner("L2"), *records_for("L1")])
    store.add_all(_progress("L1", _reads.FIRST_PAGE + 10))
    stream = store.iter_records_of("L1")
    first = [next(stream) for _ in range(1 + _reads.FIRST_PAGE)]
    store.erase_subject("L1", now=NOW)
    rest = list(stream)
    assert isinstance(first[0], Learner)
    # Only the invoice and the funding file are kept (restricted, so not streamed).
    assert not any(isinstance(r, Progress) for r in rest)
    assert rest == []


def test_records_already_handed_out_are_released(store: Store) -> None:
    """Memory stays flat: once the stream is two pages further, the first records it
    handed out are garbage (nothing in the store keeps the learner's history)."""
    store.add_all([learner("L1"), *_progress("L1", _MANY)])
    stream = store.iter_records_of("L1", record_types=[Progress])
    first = weakref.ref(next(stream))
    for _ in range(_reads.FIRST_PAGE + _reads.PAGE):
        next(stream)
    gc.collect()
    assert first() is None
    assert sum(1 for _ in stream) == _MANY - _reads.FIRST_PAGE - _reads.PAGE - 1
