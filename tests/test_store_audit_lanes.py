"""Audit lanes on PostgreSQL: concurrent writers do not queue on one head row, and every
way of editing a lane, or the list of lanes, is still caught.

The log is built by two stores (two workers) writing at the same time: the first
collision opens lane 2 (declared by an ``audit_lane`` entry in lane 1), after which a
writer finds a free lane instead of waiting. Each attack then edits the records database
as an intruder with write access would, and ``verify()`` must raise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, delete, insert, select, text, update

from learnprivacy.crypto import Keyring
from learnprivacy.errors import AuditTampered
from learnprivacy.store import Store
from learnprivacy.store._audit import LANE_ACTION, AuditEntry, AuditEvent
from learnprivacy.store._tables import AUDIT, AUDIT_HEAD
from tests.store_fixtures import MASTER_KEY, NOW, keys_for

_postgres = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


def _open(url: str) -> Store:
    return Store(url, keys=keys_for(url), keyring=Keyring.from_master_key(MASTER_KEY))


def _event(action: str) -> AuditEvent:
    return AuditEvent(action=action, outcome="done", details={"count": 1})


@contextmanager
def _held(store: Store, action: str, *, wait: bool = True) -> Iterator[threading.Event]:
    """While the block runs, a transaction of ``store`` holds the lane it appended
    ``action`` to (uncommitted); it commits when the block ends. ``wait=False`` enters the
    block at once, the append perhaps still waiting for a lane: the event yielded is set
    once it is done."""
    appended, release = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def hold() -> None:
        try:
            with store._writing() as connection:
                store.audit.append(connection, [_event(action)], now=NOW)
                appended.set()
                release.wait(30)
        except BaseException as error:  # reported by the test's thread
            failed.append(error)
            appended.set()

    worker = threading.Thread(target=hold)
    worker.start()
    if wait:
        appended.wait(30)
    try:
        yield appended
    finally:
        release.set()
        worker.join(30)
    if failed:
        raise failed[0]


def _append_without_waiting(store: Store, action: str) -> None:
    """Append ``action`` in a transaction that gives up after 3 s waiting on a lock."""
    with store._writing() as connection:
        connection.execute(text("SET LOCAL lock_timeout = '3s'"))
        store.audit.append(connection, [_event(action)], now=NOW)


def _lanes(store: Store) -> dict[int, list[AuditEntry]]:
    """The entries of each lane, followed from each entry's previous hash."""
    from learnprivacy.store._audit import lane_genesis

    lane_of: dict[str, int] = {"0" * 64: 1}
    lanes: dict[int, list[AuditEntry]] = {1: []}
    for entry in store.audit:
        lane = lane_of.pop(entry.prev_hash)
        lanes[lane].append(entry)
        lane_of[entry.hash] = lane
        if entry.action == LANE_ACTION:
            opened = int(entry.details["lane"])
            lanes[opened] = []
            lane_of[lane_genesis(entry.hash, opened)] = opened
    return lanes


@pytest.fixture
def workers(store_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores on one database whose log has two lanes, each with entries."""
    first, second = _open(store_url), _open(store_url)
    first.audit.record("start", "done", now=NOW)
    # All lanes taken: the second writer waits for lane 1 and opens lane 2 there.
    blocked = threading.Thread(
        target=second.audit.record, args=("second-a", "done"), kwargs={"now": NOW}
    )
    with _held(first, "first-a"):
        blocked.start()
        blocked.join(0.5)
        assert blocked.is_alive()  # waits: every lane was taken
    blocked.join(30)
    # Now lane 2 is free while lane 1 is held: no wait at all.
    for n in range(3):
        with _held(first, f"first-{n}"):
            _append_without_waiting(second, f"second-{n}")
    yield first, second
    first.close()
    second.close()


@_postgres
def test_two_writers_append_at_once_and_the_log_verifies(workers: tuple[Store, Store]) -> None:
    """Two lanes, each with entries; the log verifies; the public API reads it whole."""
    first, second = workers
    lanes = _lanes(first)
    assert sorted(lanes) == [1, 2]
    assert [e.action for e in lanes[1]].count(LANE_ACTION) == 1
    assert len(lanes[2]) == 3  # each "second-n", written while lane 1 was held
    assert first.audit.verify()
    assert second.audit.verify()
    entries = list(first.audit)
    sequences = [e.sequence for e in entries]
    assert sequences == sorted(set(sequences))
    assert len(first.audit) == len(entries)
    middle = sequences[len(sequences) // 2]
    assert [e.sequence for e in first.audit.entries(after=middle)] == [
        s for s in sequences if s > middle
    ]


@_postgres
def test_a_writer_does_not_wait_for_another_writers_lane(workers: tuple[Store, Store]) -> None:
    """While one transaction holds lane 1 until it commits, another appends and commits
    at once (with one head row, it would wait for the first commit: lock timeout)."""
    first, second = workers
    with _held(first, "held"):
        _append_without_waiting(second, "not waiting")
        actions = [e.action for e in second.audit]
        assert "not waiting" in actions
        assert "held" not in actions
    assert first.audit.verify()


def _tamper(store: Store, change: Callable[[Connection], object]) -> int:
    with store._db.write() as connection:
        change(connection)
    with pytest.raises(AuditTampered) as caught:
        store.audit.verify()
    assert caught.value.sequence is not None
    return caught.value.sequence


@_postgres
def test_lane_end_cut_off_is_caught(workers: tuple[Store, Store]) -> None:
    first, _ = workers
    last = _lanes(first)[2][-1]
    assert (
        _tamper(first, lambda c: c.execute(delete(AUDIT).where(AUDIT.c.sequence == last.sequence)))
        == last.sequence
    )


@_postgres
def test_a_whole_lane_dropped_is_caught(workers: tuple[Store, Store]) -> None:
    """Every entry of lane 2 and its head row deleted: lane 1 still declares the lane."""
    first, _ = workers
    lane = [e.sequence for e in _lanes(first)[2]]

    def drop(connection: Connection) -> None:
        connection.execute(delete(AUDIT).where(AUDIT.c.sequence.in_(lane)))
        connection.execute(delete(AUDIT_HEAD).where(AUDIT_HEAD.c.id == 2))

    _tamper(first, drop)


@_postgres
def test_a_lane_dropped_with_its_declaration_is_caught(workers: tuple[Store, Store]) -> None:
    """Lane 2, its head and the lane-1 entry that opened it deleted: lane 1 is broken."""
    first, _ = workers
    lanes = _lanes(first)
    opening = next(e for e in lanes[1] if e.action == LANE_ACTION)
    lane = [e.sequence for e in lanes[2]] + [opening.sequence]

    def drop(connection: Connection) -> None:
        connection.execute(delete(AUDIT).where(AUDIT.c.sequence.in_(lane)))
        connection.execute(delete(AUDIT_HEAD).where(AUDIT_HEAD.c.id == 2))

    assert _tamper(first, drop) == opening.sequence  # the first entry missing


@_postgres
@pytest.mark.parametrize("what", ["numbers", "rows"])
def test_entries_swapped_between_lanes_are_caught(workers: tuple[Store, Store], what: str) -> None:
    """An entry of lane 1 and one of lane 2 exchange their numbers, or their whole rows."""
    first, _ = workers
    lanes = _lanes(first)
    one, two = lanes[1][-1], lanes[2][-1]

    def swap(connection: Connection) -> None:
        if what == "numbers":
            for old, new in ((one.sequence, -1), (two.sequence, one.sequence), (-1, two.sequence)):
                connection.execute(
                    update(AUDIT).where(AUDIT.c.sequence == old).values(sequence=new)
                )
            return
        rows = {
            r["sequence"]: dict(r)
            for r in connection.execute(
                select(AUDIT).where(AUDIT.c.sequence.in_([one.sequence, two.sequence]))
            ).mappings()
        }
        for mine, theirs in ((one.sequence, two.sequence), (two.sequence, one.sequence)):
            values = {k: v for k, v in rows[theirs].items() if k != "sequence"}
            connection.execute(update(AUDIT).where(AUDIT.c.sequence == mine).values(values))

    _tamper(first, swap)


@_postgres
def test_an_old_lane_seal_written_back_is_caught(workers: tuple[Store, Store]) -> None:
    """Lane 2's head as it stood earlier (a valid seal) written back, and the entries
    after it deleted: the chain and seals agree, the lane's anchor does not."""
    first, second = workers
    with first._db.read() as connection:
        older = dict(
            connection.execute(select(AUDIT_HEAD).where(AUDIT_HEAD.c.id == 2)).mappings().one()
        )
    with _held(first, "later-1"):
        _append_without_waiting(second, "later-2")
    assert first.audit.verify()

    def replay(connection: Connection) -> None:
        connection.execute(
            delete(AUDIT)
            .where(AUDIT.c.sequence > older["sequence"])
            .where(AUDIT.c.action == "later-2")
        )
        connection.execute(update(AUDIT_HEAD).where(AUDIT_HEAD.c.id == 2).values(older))

    with first._db.write() as connection:
        replay(connection)
    first.audit._verify_chain()  # chain and seals alone cannot tell
    with pytest.raises(AuditTampered, match="anchor"):
        first.audit.verify()


@_postgres
def test_an_entry_edited_mid_lane_is_named(workers: tuple[Store, Store]) -> None:
    first, _ = workers
    middle = _lanes(first)[2][1]
    found = _tamper(
        first,
        lambda c: c.execute(
            update(AUDIT).where(AUDIT.c.sequence == middle.sequence).values(outcome="forged")
        ),
    )
    assert found == middle.sequence


@_postgres
@pytest.mark.parametrize("how", ["copied head", "head of lane 2 as lane 1's"])
def test_a_forged_lane_head_is_caught(workers: tuple[Store, Store], how: str) -> None:
    """A lane nobody opened (a copy of lane 2's sealed head as lane 3), or lane 2's
    sealed head moved onto lane 1: each seal names its lane."""
    first, _ = workers

    def forge(connection: Connection) -> None:
        heads = {r["id"]: dict(r) for r in connection.execute(select(AUDIT_HEAD)).mappings()}
        if how == "copied head":
            connection.execute(insert(AUDIT_HEAD), [{**heads[2], "id": 3}])
        else:
            values = {k: v for k, v in heads[2].items() if k != "id"}
            connection.execute(update(AUDIT_HEAD).where(AUDIT_HEAD.c.id == 1).values(values))

    _tamper(first, forge)


_HOLDER = """
import sys, time
from learnprivacy.crypto import Keyring
from learnprivacy.store import Store
from learnprivacy.store._audit import AuditEvent
from tests.store_fixtures import MASTER_KEY, NOW

store = Store(sys.argv[1], keys=sys.argv[2], keyring=Keyring.from_master_key(MASTER_KEY))
with store._writing() as connection:
    connection.exec_driver_sql("INSERT INTO lp_meta (key, value) VALUES ('half', 'written')")
    store.audit.append(
        connection, [AuditEvent(action="half-written", outcome="done")], now=NOW
    )
    print("appended", flush=True)
    time.sleep(120)
"""


@_postgres
def test_a_worker_killed_mid_batch_leaves_nothing_half_written(
    workers: tuple[Store, Store], store_url: str
) -> None:
    """A process killed (SIGKILL) while its transaction holds a lane: nothing of it stays,
    the log verifies, and the lane is free again for the others."""
    first, second = workers
    before = [e.sequence for e in first.audit]
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, store_url, keys_for(store_url)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "appended"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()
    # The server rolls the dead client's transaction back once it sees the socket close.
    for n in range(2):
        _append_without_waiting(first, f"after-crash-{n}")
    with _held(first, "after-crash-held"):
        _append_without_waiting(second, "after-crash-free-lane")
    entries = list(first.audit)
    assert "half-written" not in {e.action for e in entries}
    assert [e.sequence for e in entries][: len(before)] == before
    assert first.audit.verify()
    with first._db.read() as connection:
        assert (
            connection.execute(text("SELECT count(*) FROM lp_meta WHERE key = 'half'")).scalar()
            == 0
        )


@_postgres
def test_many_concurrent_appends_verify(store_url: str) -> None:
    """Four threads on two stores append 20 times each, freely interleaved."""
    stores = [_open(store_url), _open(store_url)]
    errors: list[BaseException] = []

    def write(store: Store, name: str) -> None:
        try:
            for n in range(20):
                with store._writing() as connection:
                    store.audit.append(connection, [_event(f"{name}-{n}"), _event(name)], now=NOW)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(stores[i % 2], f"w{i}")) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    entries = list(stores[0].audit)
    written = [e for e in entries if e.action != LANE_ACTION]
    assert len(written) == 4 * 20 * 2
    assert len(stores[0].audit) == len(entries)
    assert stores[0].audit.verify()
    assert stores[1].audit.verify()
    for store in stores:
        store.close()


@_postgres
def test_reanchoring_a_log_with_a_lane_not_written_to_yet(
    workers: tuple[Store, Store], store_url: str
) -> None:
    """Lanes 1 and 2 held, a third writer opens lane 3 (and writes to lane 1): lane 3 has
    no entry yet. Reanchoring after a restore anchors every lane; the log verifies, and
    goes on verifying as lane 3 fills."""
    first, second = workers
    third = _open(store_url)
    opener = threading.Thread(
        target=third.audit.record, args=("third", "done"), kwargs={"now": NOW}
    )
    with _held(first, "holds-1"), _held(second, "holds-2"):
        opener.start()
        opener.join(0.5)
        assert opener.is_alive()  # every lane taken
    opener.join(30)
    lanes = _lanes(first)
    assert sorted(lanes) == [1, 2, 3]
    assert lanes[3] == []
    first.audit.reanchor(now=NOW, reason="restore checked")
    assert first.audit.verify()
    with _held(first, "again-1"), _held(second, "again-2"):
        _append_without_waiting(third, "fills-3")
    assert [e.action for e in _lanes(first)[3]] == ["fills-3"]
    assert first.audit.verify()
    third.close()


@_postgres
def test_a_log_in_lanes_copied_to_sqlite_verifies_and_goes_on(
    workers: tuple[Store, Store], store_url: str, tmp_path: Path
) -> None:
    """A PostgreSQL log written in two lanes, copied to SQLite (one writer, no lanes
    taken there): it verifies, takes new entries after the last number, and verifies."""
    from learnprivacy.store import copy_store

    first, _ = workers
    last = list(first.audit)[-1].sequence
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    report = copy_store(
        store_url, target, keyring=Keyring.from_master_key(MASTER_KEY), keys=keys_for(store_url)
    )
    assert report.audit_entries == len(first.audit)
    copy = Store(target, keys=keys_for(store_url), keyring=Keyring.from_master_key(MASTER_KEY))
    copy.audit.record("after-copy", "done", now=NOW)
    assert list(copy.audit)[-1].sequence == last + 1
    assert copy.audit.verify()
    copy.close()


@_postgres
def test_a_writer_that_waited_while_a_lane_was_being_opened_opens_no_other(
    store_url: str,
) -> None:
    """Lane 1 held; a second writer waits for it and opens lane 2 (uncommitted); a third,
    seeing lane 1 taken and lane 2 not yet, waits for lane 1 too. Once it gets lane 1
    there are two lanes for two writers at a time: it appends to lane 1 instead of
    opening lane 3 (which it did)."""
    first, second, third = _open(store_url), _open(store_url), _open(store_url)
    try:
        first.audit.record("start", "done", now=NOW)
        late = threading.Thread(
            target=third.audit.record, args=("late", "done"), kwargs={"now": NOW}
        )
        with ExitStack() as opener:
            with _held(first, "holder"):
                opened = opener.enter_context(_held(second, "opener", wait=False))
                assert not opened.wait(0.5)  # waits for lane 1
            assert opened.wait(30)
            late.start()
            late.join(0.5)
            assert late.is_alive()  # lane 1 held by the opener, lane 2 not committed yet
        late.join(30)
        lanes = _lanes(first)
        assert sorted(lanes) == [1, 2]
        assert "late" in [e.action for e in lanes[1]]
        assert [e.action for e in first.audit].count(LANE_ACTION) == 1
        assert first.audit.verify()
    finally:
        for store in (first, second, third):
            store.close()
