"""A key made for a learner is never inserted after that learner's erasure.

A batch prefetches its learners' keys and tombstones, buffers the keys it makes, and
inserts them at its flush. An erasure committing in between wrote a tombstone the batch
never saw: the flush inserted a live key anyway, and the learner's scope counted as
revived (``is_shredded`` false), with new data written under it. The flush now re-checks
in its own write transaction, and on PostgreSQL a shred and an insert of keys follow one
another (the mark row, locked first by both), so whichever comes second sees the first.

Each ``KeyDatabase`` stands for another process, with its own connections.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import learnprivacy.store._keydb as keydb
from learnprivacy.crypto import Keyring
from learnprivacy.crypto._keystore import KeyState
from learnprivacy.errors import KeyShreddedError
from learnprivacy.store._keydb import KeyRace
from tests.store_fixtures import keyrings_on

MASTER = bytes(range(32))
ANA, BOB = "learner-ana", "learner-bob"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Keyring, Keyring]]:
    """A writer keyring and an eraser keyring on one key database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keys.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    with keyrings_on(url, MASTER) as pair:
        yield pair


def _live(keyring: Keyring, subject: str) -> list[Any]:
    store: Any = keyring.store
    return [
        e for e in store.list_entries(keyring.key_ref(subject)) if e.state is not KeyState.SHREDDED
    ]


def test_an_erasure_between_prefetch_and_flush_refuses_the_new_key(
    workers: tuple[Keyring, Keyring],
) -> None:
    writer, eraser = workers
    store: Any = writer.store
    with store.batch(writer._key_refs([ANA, BOB]).values()):
        writer._sealers([ANA, BOB], "default")  # both new: buffered, not inserted yet
        eraser.shred(ANA)  # the erasure commits: a tombstone, no key to destroy
        with pytest.raises(KeyRace):
            store.flush()
    assert _live(eraser, ANA) == []
    assert eraser.store.is_shredded(eraser.key_ref(ANA), "default")  # type: ignore[attr-defined]
    # The retry the callers make, with what the batch cached forgotten: Ana's scope
    # refuses a key, Bob gets his.
    writer._forget_many([ANA, BOB])
    with store.batch(writer._key_refs([BOB]).values()):
        writer._sealers([BOB], "default")
        store.flush()
    assert len(_live(eraser, BOB)) == 1
    with pytest.raises(KeyShreddedError), store.batch(writer._key_refs([ANA]).values()):
        writer._sealers([ANA], "default")


def test_a_revival_asked_for_survives_a_tombstone_written_meanwhile(
    workers: tuple[Keyring, Keyring],
) -> None:
    writer, eraser = workers
    eraser.shred(ANA)
    store: Any = writer.store
    ref = writer.key_ref(ANA)
    with store.batch([ref]):
        writer.revive(ANA)  # the learner comes back on purpose: buffered
        eraser.shred(ANA)
        store.flush()
    assert len(_live(eraser, ANA)) == 1


def test_nothing_shredded_since_the_prefetch_reads_no_tombstone(
    workers: tuple[Keyring, Keyring], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, eraser = workers
    eraser.shred(BOB)  # before the prefetch: the batch knows it
    calls: list[int] = []
    real = keydb._prefetch

    def counted(*args: Any) -> None:
        calls.append(len(args[1]))
        real(*args)

    monkeypatch.setattr(keydb, "_prefetch", counted)
    store: Any = writer.store
    with store.batch(writer._key_refs([ANA]).values()):
        writer._sealers([ANA], "default")
        store.flush()
    assert calls == [1]  # the prefetch only: the flush found the mark unchanged
    assert len(_live(eraser, ANA)) == 1


@pytest.mark.postgres
def test_postgres_a_shred_waits_for_a_flush_under_way_and_destroys_its_key(
    pg_workers: tuple[Keyring, Keyring], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flush has inserted, not committed, when the erasure starts: the erasure must
    wait and destroy that key, not shred what it sees and leave it live behind it."""
    writer, eraser = pg_workers
    inserted, go_on = threading.Event(), threading.Event()
    real = keydb._insert_keys

    def held(connection: Any, entries: Any) -> None:
        real(connection, entries)
        inserted.set()
        assert go_on.wait(30)

    monkeypatch.setattr(keydb, "_insert_keys", held)
    store: Any = writer.store
    failures: list[BaseException] = []

    def flush() -> None:
        try:
            with store.batch(writer._key_refs([ANA]).values()):
                writer._sealers([ANA], "default")
                store.flush()
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=flush)
    thread.start()
    assert inserted.wait(30)
    shredding = threading.Thread(target=eraser.shred, args=(ANA,))
    shredding.start()
    shredding.join(1.0)
    assert shredding.is_alive()  # waiting for the flush's transaction
    go_on.set()
    thread.join(30)
    shredding.join(30)
    assert failures == []
    assert _live(eraser, ANA) == []
    assert eraser.store.is_shredded(eraser.key_ref(ANA), "default")  # type: ignore[attr-defined]
