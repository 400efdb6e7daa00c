"""add_all and reads pause the cyclic garbage collector per batch and give it back."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from learnprivacy.errors import IntegrityError
from learnprivacy.records import Learner
from learnprivacy.store import Store, _codec
from tests.store_fixtures import learner


@pytest.fixture(params=[True, False], ids=["collector-on", "collector-off"])
def enabled(request: pytest.FixtureRequest) -> Iterator[bool]:
    was = gc.isenabled()
    gc.enable() if request.param else gc.disable()
    try:
        yield request.param
    finally:
        gc.enable() if was else gc.disable()


def test_add_all_and_reads_restore_the_collector_also_after_a_failure(
    store: Store, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    during: list[bool] = []
    built: list[bool] = []
    values_builder, raw_reader = _codec.Codec.values_builder, _codec.Codec.raw_reader
    from_row = _codec.Codec.from_row

    def watching_values_builder(self: Any, names: Any, converters: Any) -> Any:
        build = values_builder(self, names, converters)

        def watching_build(record: Any) -> Any:
            built.append(gc.isenabled())
            return build(record)

        return watching_build

    def watching_raw_reader(self: Any, dialect: Any, description: Any) -> Any:
        read = raw_reader(self, dialect, description)
        if read is None:
            return None

        def watching_read(row: Any, openers: Any = None) -> Any:
            during.append(gc.isenabled())
            return read(row, openers)

        return watching_read

    def watching_from_row(self: Any, row: Any, openers: Any = None) -> Any:
        during.append(gc.isenabled())
        return from_row(self, row, openers)

    # Rows to insert are built by the functions values_builder makes (once per codec
    # and dialect, at the first insert): watch each call of them.
    monkeypatch.setattr(_codec.Codec, "values_builder", watching_values_builder)
    # Rows read are built by the reader raw_reader makes, or by from_row where the
    # driver's rows cannot be read that way.
    monkeypatch.setattr(_codec.Codec, "raw_reader", watching_raw_reader)
    monkeypatch.setattr(_codec.Codec, "from_row", watching_from_row)
    store.add_all([learner("L1"), learner("L2")])
    assert gc.isenabled() is enabled
    with pytest.raises(IntegrityError):
        store.add_all([learner("L3"), learner("L1")])  # L1 is already stored
    assert gc.isenabled() is enabled
    assert store.query(Learner) == [learner("L1"), learner("L2")]
    assert gc.isenabled() is enabled
    assert built
    assert during
    assert not any(built + during)


def test_add_all_frees_each_batch_rows_before_the_collector_resumes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Resuming the collector runs a collection of every object made during the pause
    # that is still alive: a batch's rows, once inserted, must be gone by then, or that
    # collection looks at every one of them (measured: about half of its cost).
    from learnprivacy.store import _writes

    width = len(store._table(Learner).table.columns)
    ids = {f"L{i}" for i in range(40)}
    alive: list[int] = []
    paused = _writes.collector_paused

    def rows_alive() -> int:
        return sum(
            1
            for o in gc.get_objects()
            if type(o) is tuple and len(o) == width and isinstance(o[0], str) and o[0] in ids
        )

    @contextmanager
    def watching() -> Iterator[None]:
        with paused():
            yield
            alive.append(rows_alive())

    monkeypatch.setattr(_writes, "collector_paused", watching)
    store.add_all([learner(i) for i in sorted(ids)])
    assert alive == [0]
    assert store.count(Learner) == len(ids)
