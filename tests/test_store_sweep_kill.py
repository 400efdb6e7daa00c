"""A sweep killed between the steps of a page never leaves a shred reported in the audit
log while the key's bytes are on disk with nothing owing their destruction.

A page commits its deletions, audit entries and outbox rows together; then the keys it
sent to the outbox are overwritten, the key database checkpointed (no image of them left
in its file or log), the outbox rows deleted; the records database is checkpointed once,
when the sweep ends. The worker (tests/sweep_kill_worker.py) SIGKILLs itself at each of
those steps; the files are then read as they are on disk, without opening the store:
every learner a committed ``shred`` entry names either has no byte of their wrapped key
left in the key database's file or log, or is still owed in the outbox. The first open
destroys what is owed; a second sweep finishes, and no wrapped key of an erased learner,
nor any erased learner's id, is left in any file.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.records import Learner
from learnprivacy.store import Store
from tests import account
from tests.store_fixtures import MASTER_KEY, NOW, OWED_SQL, owed_refs
from tests.sweep_kill_worker import SCHEDULE

ROOT = Path(__file__).resolve().parent.parent
EXPIRED, KEPT, BATCH = 45, 10, 15  # three pages of expired learners


def _store(url: str) -> Store:
    return Store(url, keyring=Keyring.from_master_key(MASTER_KEY), clock=lambda: NOW)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[str, str]]]:
    """A closed store: 45 expired learners (ids ``GONE0000``...) among 55; per expired
    learner, their audit reference and key reference."""
    where = tmp_path_factory.mktemp("sweep-kill")
    old = NOW - dt.timedelta(days=900)
    people = [account(f"GONE{n:04d}", last_activity_at=old) for n in range(EXPIRED)]
    people += [account(f"STAY{n:04d}", last_activity_at=NOW) for n in range(KEPT)]
    with _store(f"sqlite:///{where / 'lms.db'}") as store:
        store.add_all(people)
        refs = {
            p.id: (store.audit.subject_ref(p.id), store.keyring.key_ref(p.id))
            for p in people[:EXPIRED]
        }
    return where, refs


def _wrapped(path: Path) -> dict[str, bytes]:
    """Live wrapped keys by key reference, read with sqlite3."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT subject_ref, wrapped FROM lpk_keys WHERE state != 'shredded'"
        ).fetchall()
    connection.close()
    return {str(ref): bytes(blob) for ref, blob in rows}


def _on_disk(path: Path) -> bytes:
    """Every byte of a SQLite database as it is on disk: its file and its log."""
    log = Path(f"{path}-wal")
    return path.read_bytes() + (log.read_bytes() if log.exists() else b"")


def _committed(path: Path, scratch: Path) -> tuple[set[str], set[str]]:
    """(audit references named by committed shred entries, key references in the outbox),
    read from a copy of the records database's files (the log recovered in the copy)."""
    scratch.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            shutil.copyfile(f"{path}{suffix}", scratch / f"copy.db{suffix}")
    with sqlite3.connect(scratch / "copy.db") as connection:
        details = connection.execute(
            "SELECT details FROM lp_audit WHERE action = 'shred'"
        ).fetchall()
        owed = owed_refs(connection.execute(OWED_SQL).fetchall())
    connection.close()
    shredded = {ref for (text,) in details for ref in json.loads(text)["subject_refs"]}
    return shredded, owed


STEPS = [
    ("committed", 1),
    ("committed", 2),
    ("keys-updated", 1),
    ("keys-updated", 3),
    ("keys-checkpointed", 2),
    ("outbox-deleted", 1),
    ("outbox-deleted", 2),
    ("final", 1),
]


@pytest.mark.parametrize(("step", "page"), STEPS)
def test_a_sweep_killed_at_any_step_reports_no_shred_whose_key_is_on_disk_unowed(
    prepared: tuple[Path, dict[str, tuple[str, str]]], tmp_path: Path, step: str, page: int
) -> None:
    source, refs = prepared
    for name in ("lms.db", "lms.keys.db", "lms.keys.vault"):
        if (source / name).exists():
            shutil.copyfile(source / name, tmp_path / name)
    records, keys = tmp_path / "lms.db", tmp_path / "lms.keys.db"
    wrapped = _wrapped(keys)
    assert all(key_ref in wrapped for _audit_ref, key_ref in refs.values())
    url = f"sqlite:///{records}"
    done = subprocess.run(
        [sys.executable, "-m", "tests.sweep_kill_worker", url, step, str(page), str(BATCH)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    where = f"killed at {step} of page {page}"
    assert done.returncode == -9, f"{where}: {done.stderr[-2000:]}"

    shredded, owed = _committed(records, tmp_path / "scratch")
    assert shredded, f"{where}: no page had committed"
    disk = _on_disk(keys)
    for learner, (audit_ref, key_ref) in refs.items():
        if audit_ref in shredded and wrapped[key_ref] in disk:
            assert key_ref in owed, f"{where}: {learner} reported shredded, key on disk, not owed"

    # The first open destroys what is owed: nothing is owed any more, and no key of a
    # learner reported shredded is left on disk.
    with _store(url) as store:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM lp_key_outbox").scalar() == 0
        disk = _on_disk(keys)
        named = [x for x, (audit_ref, _k) in refs.items() if audit_ref in shredded]
        assert not [x for x in named if wrapped[refs[x][1]] in disk], where
        # Nor is the id of a learner reported erased left in the records database's file
        # or log: the sweep died before the checkpoint that ends it, the open folds the log.
        everything = _on_disk(records)
        assert not [x for x in named if x.encode() in everything], where
        left = {x.id for x in store.query(Learner, include_restricted=True)}
        # A second sweep finishes the job.
        report = store.sweep(SCHEDULE, now=NOW, batch_size=BATCH, compact=False)
        assert report.erased == len(left & set(refs)), where
        assert {x.id for x in store.query(Learner, include_restricted=True)} == left - set(refs)
        assert len(left - set(refs)) == KEPT
    disk = _on_disk(keys)
    assert not [x for x, (_a, key_ref) in refs.items() if wrapped[key_ref] in disk], where
    everything = _on_disk(records)
    assert not [x for x in refs if x.encode() in everything], where


def _copy_prepared(source: Path, tmp_path: Path) -> str:
    for name in ("lms.db", "lms.keys.db", "lms.keys.vault"):
        if (source / name).exists():
            shutil.copyfile(source / name, tmp_path / name)
    return f"sqlite:///{tmp_path / 'lms.db'}"


def test_a_finished_sweep_leaves_no_erased_row_or_key_on_disk(
    prepared: tuple[Path, dict[str, tuple[str, str]]], tmp_path: Path
) -> None:
    """Pages no longer checkpoint the records database one by one: the sweep's end does.
    With the store still open, no erased learner's id is in the records database's file
    or log, and no byte of their wrapped keys in the key database's."""
    source, refs = prepared
    url = _copy_prepared(source, tmp_path)
    wrapped = _wrapped(tmp_path / "lms.keys.db")
    with _store(url) as store:
        report = store.sweep(SCHEDULE, now=NOW, batch_size=BATCH, compact=False)
        assert report.erased == EXPIRED
        assert report.shredded == EXPIRED
        records = _on_disk(tmp_path / "lms.db")
        assert not [x for x in refs if x.encode() in records]
        keys = _on_disk(tmp_path / "lms.keys.db")
        assert not [x for x, (_a, key_ref) in refs.items() if wrapped[key_ref] in keys]


def test_a_sweep_failing_on_a_later_page_still_folds_the_pages_done_into_the_file(
    prepared: tuple[Path, dict[str, tuple[str, str]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attack: the second page fails. The first page's erasures were committed and its
    keys destroyed; the sweep checkpoints on its way out, so none of those learners' ids
    stays in the records database's file, and the error still reaches the caller."""
    from learnprivacy.store import _sweep

    source, refs = prepared
    url = _copy_prepared(source, tmp_path)
    erase_rows = _sweep.erase_rows
    calls = {"n": 0}

    def failing(*args: object, **kwargs: object) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return erase_rows(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_sweep, "erase_rows", failing)
    with _store(url) as store:
        with pytest.raises(RuntimeError, match="disk full"):
            store.sweep(SCHEDULE, now=NOW, batch_size=BATCH, compact=False)
        left = {x.id for x in store.query(Learner, include_restricted=True)}
        gone = set(refs) - left
        assert len(gone) == BATCH
        records = _on_disk(tmp_path / "lms.db")
        assert not [x for x in gone if x.encode() in records]
        assert [x for x in left if x.encode() in records]


def test_an_open_does_not_wait_for_another_connections_reader(
    prepared: tuple[Path, dict[str, tuple[str, str]]], tmp_path: Path
) -> None:
    """The open folds the log without waiting: a reader elsewhere holding an older
    snapshot (its pages still in the log) does not hold the open up for the busy
    timeout (a minute), and the open's connection keeps that timeout afterwards."""
    import time

    source, _refs = prepared
    url = _copy_prepared(source, tmp_path)
    with _store(url) as writer:
        reader = sqlite3.connect(tmp_path / "lms.db")
        try:
            reader.execute("BEGIN")
            assert reader.execute("SELECT count(*) FROM lp_audit").fetchone()[0] > 0
            writer.add(account("LATE0001", last_activity_at=NOW))
            began = time.monotonic()
            with _store(url) as store:
                assert time.monotonic() - began < 30  # not the minute of the busy timeout
                with store.engine.connect() as connection:
                    raw = connection.connection.driver_connection
                    assert raw is not None
                    assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 60_000
        finally:
            reader.close()
