"""A record type registered after the store opened is written like any other.

Its table is made before the write transaction opens: made inside it, SQLite waited for
the write lock that very transaction held (the busy timeout, a minute) and then raised a
driver error, with nothing written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import pytest

from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.records import _base, not_personal, personal, register_record_type
from learnprivacy.store import Store
from tests import NOW
from tests.store_fixtures import learner


def _late_type() -> type[Any]:
    @attrs.frozen(kw_only=True)
    class Sticker:
        processing_purpose: ClassVar[str] = "gamification"
        key_scope: ClassVar[str] = "contract"
        date_field: ClassVar[str] = "given_at"

        id: str = not_personal(description="Sticker id")
        learner_id: str = personal(
            category=DataCategory.ACCOUNT, description="Learner", encrypted=False, identifier=True
        )
        label: str = personal(category=DataCategory.LEARNING, description="Label")
        # not_personal() returns an attrs field spec, not a shared default value.
        given_at: dt.datetime = not_personal(description="When")  # noqa: RUF009
        basis: LawfulBasis = not_personal(description="Basis", default=LawfulBasis.CONSENT)  # noqa: RUF009

    return Sticker


@pytest.fixture
def late(store: Store) -> Iterator[type[Any]]:
    """A record type registered once ``store`` is open and has written."""
    store.add(learner("L1"))
    cls = register_record_type(_late_type())
    yield cls
    _base._REGISTRY.pop(cls.__name__, None)


def test_a_type_registered_after_opening_is_written_in_one_transaction(
    store: Store, late: type[Any]
) -> None:
    stickers = [
        late(id=f"s{i}", learner_id="L1", label=f"gold {i}", given_at=NOW) for i in range(3)
    ]
    store.add_all(stickers)
    assert sorted(store.query(late), key=lambda s: s.id) == stickers
    assert store.get(late, "s1") == stickers[1]


def test_a_late_type_is_erased_with_its_learner(store: Store, late: type[Any]) -> None:
    store.add(late(id="s1", learner_id="L1", label="gold", given_at=NOW))
    store.erase_subject("L1")
    assert store.query(late) == []
    assert store.get(late, "s1") is None
