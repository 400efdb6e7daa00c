"""The KeyStore protocol contract, checked on the in-memory store.

Each test takes a ``make_store`` factory, so another implementation (the SQL store) can
be checked by the same functions.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from learnprivacy.crypto import InMemoryKeyStore, KeyStore
from learnprivacy.crypto._keystore import KeyEntry, KeyState
from learnprivacy.errors import KeyShreddedError

MakeStore = Callable[[], KeyStore]


@pytest.fixture(params=[InMemoryKeyStore], ids=["memory"])
def make_store(request: pytest.FixtureRequest) -> MakeStore:
    factory: MakeStore = request.param
    return factory


def _entry(subject: str = "L1", scope: str = "default", key_id: str = "00" * 8) -> KeyEntry:
    return KeyEntry(
        subject=subject,
        scope=scope,
        key_id=key_id,
        state=KeyState.ACTIVE,
        master_key_id="ab" * 8,
        wrapped=b"w" * 60,
    )


def test_in_memory_store_satisfies_the_protocol(make_store: MakeStore) -> None:
    """The store is recognised as a KeyStore at run time."""
    assert isinstance(make_store(), KeyStore)


def test_add_get_and_list(make_store: MakeStore) -> None:
    """Added entries come back by (subject, key_id) and in listings filtered by scope."""
    store = make_store()
    first = _entry(key_id="01" * 8)
    other = _entry(scope="legal", key_id="02" * 8)
    assert store.add(first) == first
    assert store.add(other) == other
    assert store.get("L1", "01" * 8) == first
    assert store.get("L1", "03" * 8) is None
    assert store.get("L2", "01" * 8) is None
    assert {e.key_id for e in store.list_entries("L1")} == {"01" * 8, "02" * 8}
    assert [e.key_id for e in store.list_entries("L1", "legal")] == ["02" * 8]
    assert list(store.list_entries("L2")) == []
    assert len(list(store.list_entries())) == 2


def test_add_converges_on_the_existing_active_key(make_store: MakeStore) -> None:
    """A second active key for the same (subject, scope) is not stored; the first wins."""
    store = make_store()
    first = store.add(_entry(key_id="01" * 8))
    assert store.add(_entry(key_id="02" * 8)) == first
    assert store.add(_entry(key_id="03" * 8), revive=True) == first
    assert [e.key_id for e in store.list_entries("L1")] == ["01" * 8]


def test_update_replaces_live_entries_only(make_store: MakeStore) -> None:
    """update() changes a live entry, ignores unknown ones and never revives a shredded one."""
    store = make_store()
    entry = store.add(_entry())
    retired = attrs.evolve(entry, state=KeyState.RETIRED)
    assert store.update(retired)
    assert store.get("L1", entry.key_id) == retired
    assert not store.update(_entry(key_id="09" * 8))
    store.mark_shredded("L1")
    assert not store.update(entry)
    shredded = store.get("L1", entry.key_id)
    assert shredded is not None
    assert shredded.state is KeyState.SHREDDED
    assert shredded.wrapped == b""


def test_mark_shredded_counts_and_tombstones(make_store: MakeStore) -> None:
    """Shredding destroys material, counts keys once, and blocks new keys for the scope."""
    store = make_store()
    store.add(_entry(key_id="01" * 8))
    store.add(_entry(scope="legal", key_id="02" * 8))
    assert store.mark_shredded("L1", "default") == 1
    assert store.mark_shredded("L1", "default") == 0
    assert store.is_shredded("L1", "default")
    assert not store.is_shredded("L1", "legal")
    with pytest.raises(KeyShreddedError):
        store.add(_entry(key_id="03" * 8))
    assert store.add(_entry(scope="other", key_id="04" * 8)).key_id == "04" * 8


def test_shredding_a_whole_subject_blocks_every_scope(make_store: MakeStore) -> None:
    """mark_shredded(subject) covers scopes that had no key yet."""
    store = make_store()
    store.add(_entry(key_id="01" * 8))
    assert store.mark_shredded("L1") == 1
    assert store.is_shredded("L1", "default")
    assert store.is_shredded("L1", "never-used")
    with pytest.raises(KeyShreddedError):
        store.add(_entry(scope="never-used", key_id="02" * 8))
    assert not store.is_shredded("L2", "default")


def test_revive_adds_a_key_to_a_shredded_scope(make_store: MakeStore) -> None:
    """revive=True lets a new key in; the scope is then no longer shredded."""
    store = make_store()
    store.add(_entry(key_id="01" * 8))
    store.mark_shredded("L1")
    revived = store.add(_entry(key_id="02" * 8), revive=True)
    assert revived.key_id == "02" * 8
    assert not store.is_shredded("L1", "default")
    old = store.get("L1", "01" * 8)
    assert old is not None
    assert old.state is KeyState.SHREDDED
    store.mark_shredded("L1", "default")
    assert store.is_shredded("L1", "default")


def test_shredding_one_key_leaves_no_tombstone(make_store: MakeStore) -> None:
    """mark_shredded(key_id=...) destroys that key only; a new key may follow."""
    store = make_store()
    store.add(_entry(key_id="01" * 8))
    store.add(_entry(scope="legal", key_id="02" * 8))
    assert store.mark_shredded("L1", key_id="01" * 8) == 1
    assert not store.is_shredded("L1", "default")
    legal = store.get("L1", "02" * 8)
    assert legal is not None
    assert legal.state is KeyState.ACTIVE
    assert store.add(_entry(key_id="03" * 8)).key_id == "03" * 8


def test_retired_keys_keep_a_revived_scope_open(make_store: MakeStore) -> None:
    """A tombstoned scope with a retired (live) key is not shredded."""
    store = make_store()
    store.mark_shredded("L1", "default")
    entry = store.add(_entry(key_id="01" * 8), revive=True)
    store.update(attrs.evolve(entry, state=KeyState.RETIRED))
    assert not store.is_shredded("L1", "default")
    assert store.add(_entry(key_id="02" * 8)).key_id == "02" * 8


def test_entry_repr_hides_the_wrapped_key() -> None:
    """KeyEntry's repr shows the wrapped key's length, not its bytes."""
    text = repr(_entry())
    assert "<60 bytes>" in text
    assert "www" not in text
