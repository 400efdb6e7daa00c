"""Master-key rotation loses nothing: killed anywhere, resumed, every record reads.

The failure this guards against: a rotation killed half-way and run again wrote a fresh
``.key.new`` over the only copy of the half-applied new key; the keys already rewrapped
under it were unreadable for good.
"""

from __future__ import annotations

import base64
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from learnprivacy.cli._config import write_key_file
from learnprivacy.crypto import Keyring
from learnprivacy.errors import WrongMasterKeyError
from learnprivacy.records import Consent, Learner
from learnprivacy.store import Store
from learnprivacy.store._keydb import default_keys_url
from tests.store_fixtures import NOW, learner, population, records_for

ROOT = Path(__file__).resolve().parents[1]


def _read_key(path: Path) -> bytes:
    return base64.b64decode(path.read_text(encoding="ascii").strip())


def _cli(folder: Path, *args: str) -> subprocess.Popen[str]:
    """``learnprivacy --db ... --key-file ... ARGS`` in a process of its own."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from learnprivacy.cli import main; main()",
            "--db",
            f"sqlite:///{folder / 'lms.db'}",
            "--key-file",
            str(folder / "master.key"),
            *args,
        ],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LEARNPRIVACY_MASTER_KEY": "", "LEARNPRIVACY_CONFIG": ""},
    )


def _under(folder: Path, master: bytes) -> tuple[int, int]:
    """(entries wrapped under ``master``, live entries) in the key database file."""
    key_id = Keyring(master).master_key_id
    connection = sqlite3.connect(folder / "lms.keys.db", timeout=30)
    try:
        rows = connection.execute(
            "SELECT master_key_id, count(*) FROM lpk_keys WHERE state <> 'shredded' "
            "GROUP BY master_key_id"
        ).fetchall()
    finally:
        connection.close()
    counts = dict(rows)
    return counts.get(key_id, 0), sum(counts.values())


def _snapshot(store: Store) -> dict[str, list[Any]]:
    return {rt.name: store.query(rt.cls, include_restricted=True) for rt in store._record_tables()}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A store of 600 learners (thousands of keys) and its master key file."""
    key = write_key_file(tmp_path / "master.key")
    with Store(
        f"sqlite:///{tmp_path / 'lms.db'}", keyring=Keyring(key), clock=lambda: NOW
    ) as store:
        store.add_all(population(600, seed=3))
        store.erase_subject("L00004", now=NOW)
    return tmp_path


def test_a_rerun_after_a_kill_never_overwrites_the_new_key(folder: Path) -> None:
    """A plain rerun after an interrupted rotation is refused and the .new file, which
    the rewrapped keys need, is left as it was."""
    new_path = folder / "master.key.new"
    new_key = write_key_file(new_path)
    process = _cli(folder, "keys", "rotate")
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 3, err
    assert "--resume" in err
    assert _read_key(new_path) == new_key


@pytest.mark.slow
def test_rotation_killed_at_ten_random_points_then_resumed_reads_everything(
    folder: Path,
) -> None:
    """SIGKILL the rotation at ten random points (each restart resumes), then finish:
    every record reads under the new key alone, and in between the store opens with
    the new key and the old one as previous key."""
    url = f"sqlite:///{folder / 'lms.db'}"
    old = _read_key(folder / "master.key")
    with Store(url, keyring=Keyring(old)) as store:
        expected = _snapshot(store)
    rng = random.Random(14)
    killed_mid_way = 0
    new: bytes | None = None
    for attempt in range(10):
        # Small batches: many commits, so the kills land between and inside them.
        args = ("keys", "rotate", "--batch-size", "150")
        args += ("--resume",) if attempt else ()
        process = _cli(folder, *args)
        # Kill once a random share of the keys is under the new key (or at once).
        wait_until = rng.random()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if new is None and (folder / "master.key.new").exists():
                try:
                    found = _read_key(folder / "master.key.new")
                except (ValueError, OSError):
                    found = b""
                # The file may be caught half-written: only a whole key counts.
                new = found if len(found) == 32 else None
            if new is not None:
                done, total = _under(folder, new)
                if total and done / total >= wait_until:
                    break
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait()
        if new is not None:
            done, total = _under(folder, new)
            killed_mid_way += 0 < done < total
        if not (folder / "master.key.new").exists():
            break  # the rotation finished before the kill landed
        if attempt == 4:
            # Half-way: the store opens with the new key and the old one as previous.
            assert new is not None
            with Store(url, keyring=Keyring(new, previous_master_keys=[old])) as store:
                assert _snapshot(store) == expected
    assert killed_mid_way >= 3, "the kills must land in the middle of the rotation"
    if (folder / "master.key.new").exists():
        process = _cli(folder, "keys", "rotate", "--resume", "--batch-size", "150")
        _out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    final = _read_key(folder / "master.key")
    assert final == new
    assert not (folder / "master.key.new").exists()
    with Store(url, keyring=Keyring(final)) as store:
        assert _snapshot(store) == expected
        assert store.audit.verify()
    done, total = _under(folder, final)
    assert done == total
    with pytest.raises(WrongMasterKeyError):
        Store(url, keyring=Keyring(old))


def test_a_half_rotated_store_opens_with_previous_keys_and_finishes(tmp_path: Path) -> None:
    """Store(url, keyring=Keyring(new, previous_master_keys=[old])) opens a store whose
    keys are half under each, reads everything, and rewrap() finishes the rotation."""
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    old, new = os.urandom(32), os.urandom(32)
    with Store(url, keyring=Keyring(old), clock=lambda: NOW) as store:
        for i in range(6):
            store.add_all([learner(f"L{i}"), *records_for(f"L{i}")])
        expected = _snapshot(store)
        entries = [e for e in store._keys.list_entries() if e.wrapped]
    # Rewrap half the entries (the check value last of all, as rotation does).
    half = Keyring(new, previous_master_keys=[old]).bound_to(Store(url, keyring=Keyring(old))._keys)
    data_entries = [e for e in entries if not e.subject.startswith("learnprivacy:")]
    for entry in data_entries[: len(data_entries) // 2]:
        half.store.update(half._rewrapped(entry))
    with pytest.raises(WrongMasterKeyError):
        Store(url, keyring=Keyring(new)).records_of("L1")
    with Store(url, keyring=Keyring(new, previous_master_keys=[old])) as store:
        assert _snapshot(store) == expected
        assert store.keyring.rewrap() > 0
    with Store(url, keyring=Keyring(new)) as store:
        assert _snapshot(store) == expected
        assert store.get(Learner, "L1") == learner("L1")
        assert store.query(Consent)


def test_the_key_database_has_its_own_backup(tmp_path: Path) -> None:
    """keys backup copies the key database; the records backup holds no key."""
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    write_key_file(tmp_path / "master.key")
    with Store(url, keyring=Keyring(_read_key(tmp_path / "master.key"))) as store:
        store.add_all([learner("L1"), *records_for("L1")])
        wrapped = [e.wrapped for e in store._keys.list_entries() if e.wrapped]
    process = _cli(tmp_path, "--json", "keys", "backup", str(tmp_path / "keys.bak"))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert '"active"' in out
    copy = (tmp_path / "keys.bak").read_bytes()
    assert all(key in copy for key in wrapped)
    assert Path(default_keys_url(url).removeprefix("sqlite:///")).exists()


def _key_database_with(tmp_path: Path, learners: int) -> tuple[str, bytes]:
    """A key database with one data key per learner (and the keyring's own keys)."""
    from learnprivacy.crypto import FieldCipher
    from learnprivacy.keys import KeyDatabase

    url = f"sqlite:///{tmp_path / 'rot.keys.db'}"
    old = os.urandom(32)
    with KeyDatabase(url) as keys:
        keyring = keys.keyring(Keyring(old))
        keyring.verify()
        cipher = FieldCipher(keyring)
        for i in range(learners):
            cipher.encrypt("x", subject=f"L{i}", context="t")
    return url, old


class _Progress:
    def __init__(self) -> None:
        self.expected = -1
        self.advanced = 0

    def expect(self, total: int) -> None:
        self.expected = total

    def advance(self, n: int = 1) -> None:
        self.advanced += n


def test_a_bulk_rotation_stopped_by_a_bad_key_leaves_the_check_value_under_the_old_key(
    tmp_path: Path,
) -> None:
    """The key database re-wraps in bulk, in the table's own order, where the check value
    sits near the start: it must still be re-wrapped last. A key altered in the file
    stops the rotation after some batches; the store then still names the old master key
    (the new one alone is refused), old and new together read every key, and once the
    key is put back a resumed rewrap finishes."""
    from learnprivacy.crypto import FieldCipher
    from learnprivacy.keys import KeyDatabase

    url, old = _key_database_with(tmp_path, 40)
    new = os.urandom(32)
    path = tmp_path / "rot.keys.db"
    connection = sqlite3.connect(path)
    rowid, wrapped = connection.execute(
        "SELECT rowid, wrapped FROM lpk_keys ORDER BY rowid DESC LIMIT 1"
    ).fetchone()
    check_rowid = connection.execute("SELECT rowid FROM lpk_keys WHERE scope = 'check'").fetchone()[
        0
    ]
    assert check_rowid < rowid - 10, "the check value must come early in table order"
    altered = bytes(wrapped[:-1]) + bytes([wrapped[-1] ^ 1])
    connection.execute("UPDATE lpk_keys SET wrapped = ? WHERE rowid = ?", (altered, rowid))
    connection.commit()
    with KeyDatabase(url) as keys:
        # A rotation's rewrap, in small batches: several commit before the bad key.
        keyring = keys.keyring(Keyring(new, previous_master_keys=[old]))
        with pytest.raises(WrongMasterKeyError):
            keyring.rewrap(batch_size=4)
    done, total = 0, 0
    for (master_key_id,) in connection.execute(
        "SELECT master_key_id FROM lpk_keys WHERE state <> 'shredded'"
    ):
        total += 1
        done += master_key_id == Keyring(new).master_key_id
    assert 0 < done < total, "some batches were written before the bad key"
    with KeyDatabase(url) as keys, pytest.raises(WrongMasterKeyError):
        keys.keyring(Keyring(new)).verify()
    connection.execute("UPDATE lpk_keys SET wrapped = ? WHERE rowid = ?", (wrapped, rowid))
    connection.commit()
    connection.close()
    with KeyDatabase(url) as keys:
        both = keys.keyring(Keyring(new, previous_master_keys=[old]))
        both.verify()
        cipher = FieldCipher(both)
        for i in range(40):
            token = cipher.encrypt("y", subject=f"L{i}", context="t")
            assert cipher.decrypt(token, subject=f"L{i}", context="t") == "y"
        assert both.rewrap(batch_size=4) == total - done
    with KeyDatabase(url) as keys:
        keys.keyring(Keyring(new)).verify()


def test_a_bulk_rotation_reports_every_entry_to_its_progress(tmp_path: Path) -> None:
    """Progress is told the number of entries, then advanced by exactly that many."""
    from learnprivacy.keys import KeyDatabase

    url, old = _key_database_with(tmp_path, 25)
    with KeyDatabase(url) as keys:
        keyring = keys.keyring(Keyring(old))
        progress = _Progress()
        keyring.rotate(os.urandom(32), progress=progress)
        assert progress.expected == 27  # 25 data keys, the check value, the index key
        assert progress.advanced == progress.expected


def test_a_bulk_rewrap_stops_or_refuses_when_an_epoch_appears(tmp_path: Path) -> None:
    """A compaction naming an epoch between batches: the bulk pass writes nothing more,
    and says so (a count, or KeyEpochError without ``stop_at_epoch``)."""
    from learnprivacy.keys import KeyDatabase
    from learnprivacy.store._keydb import KeyEpochError

    url, old = _key_database_with(tmp_path, 10)
    new = Keyring(os.urandom(32))
    with KeyDatabase(url) as keys:
        keyring = keys.keyring(Keyring(old, previous_master_keys=[]))
        rewrap = keyring._rewrapper(keyring.master_key_id)
        with keys.epoch_transaction() as (connection, _current, _next):
            keys.set_epochs(connection, "e" * 16, "")
        before = keys.counts()
        target = new.master_key_id
        with pytest.raises(KeyEpochError):
            keys.rewrap_live(target, rewrap, batch_size=3)
        assert keys.rewrap_live(target, rewrap, batch_size=3, stop_at_epoch=True) == 0
        assert keys.count_not_under(target) == before["active"]
