"""add_all and reads pause the cyclic garbage collector per batch and give it back."""

from __future__ import annotations

import gc
from collections.abc import Iterator
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
    to_row, from_row = _codec.Codec.to_row, _codec.Codec.from_row

    def watching_to_row(self: Any, record: Any) -> Any:
        during.append(gc.isenabled())
        return to_row(self, record)

    def watching_from_row(self: Any, row: Any, openers: Any = None) -> Any:
        during.append(gc.isenabled())
        return from_row(self, row, openers)

    monkeypatch.setattr(_codec.Codec, "to_row", watching_to_row)
    monkeypatch.setattr(_codec.Codec, "from_row", watching_from_row)
    store.add_all([learner("L1"), learner("L2")])
    assert gc.isenabled() is enabled
    with pytest.raises(IntegrityError):
        store.add_all([learner("L3"), learner("L1")])  # L1 is already stored
    assert gc.isenabled() is enabled
    assert store.query(Learner) == [learner("L1"), learner("L2")]
    assert gc.isenabled() is enabled
    assert during
    assert not any(during)
