"""A record type registered after the store opened is written like any other.

Its table is made before the write transaction opens: made inside it, SQLite waited for
the write lock that very transaction held (the busy timeout, a minute) and then raised a
driver error, with nothing written.
"""

from __future__ import annotations

from typing import Any

import pytest

from learnprivacy.store import Store
from tests import NOW
from tests.store_fixtures import learner


@pytest.fixture
def late(store: Store, request: pytest.FixtureRequest) -> Any:
    """The application's ``Badge`` type, registered once ``store`` is open and has written."""
    store.add(learner("L1"))
    return request.getfixturevalue("badge_type")


def test_a_type_registered_after_opening_is_written_in_one_transaction(
    store: Store, late: Any
) -> None:
    badges = [late(id=f"b{i}", learner_id="L1", title=f"gold {i}", earned_at=NOW) for i in range(3)]
    store.add_all(badges)
    assert sorted(store.query(late), key=lambda b: b.id) == badges
    assert store.get(late, "b1") == badges[1]


def test_a_late_type_is_erased_with_its_learner(store: Store, late: Any) -> None:
    store.add(late(id="b1", learner_id="L1", title="gold", earned_at=NOW))
    store.erase_subject("L1")
    assert store.query(late) == []
    assert store.get(late, "b1") is None
