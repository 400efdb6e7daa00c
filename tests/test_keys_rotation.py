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
