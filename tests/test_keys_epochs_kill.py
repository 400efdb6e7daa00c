"""SIGKILL a compaction of 50,000 keys at random points, rerun it: every key still opens.

The 50,000 data keys are built in bulk, straight into the key database (wrapped under
the current epoch key as a store would wrap them), beside a few real learners whose
records are read back. Each kill point gets its own copy of the prepared databases and
vault. The random points are drawn afresh on each run; a failure names its seed.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.crypto._keystore import KeyState
from learnprivacy.records import Learner
from learnprivacy.store import Store
from learnprivacy.store._bulk import bulk_insert
from learnprivacy.store._epochs import FileVault
from learnprivacy.store._keydb import _KEYS
from tests.store_fixtures import MASTER_KEY, NOW, learner, records_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BULK = 50_000
LEARNERS = 20
ERASED = "learner-erased-K50"
SEED = int.from_bytes(os.urandom(4), "big")
_FILES = ("lms.db", "lms.keys.db", "lms.keys.vault")


def _keyring() -> Keyring:
    return Keyring.from_master_key(MASTER_KEY)


def _raw(i: int) -> bytes:
    return hashlib.sha256(b"bulk-key-%d" % i).digest()


def _ref(i: int) -> str:
    return f"k1_bulk{i:06d}"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store on epochs with real learners (one erased) and 50,000 bulk data keys."""
    folder = tmp_path_factory.mktemp("kill50k")
    with Store(f"sqlite:///{folder / 'lms.db'}", keyring=_keyring(), clock=lambda: NOW) as store:
        store.add_all([learner(ERASED), *records_for(ERASED)])
        store.add_all([learner(f"real-{i}") for i in range(LEARNERS)])
        store.compact_keys(now=NOW)
        wrap = store.keyring._wrap_key
        rows = []
        for i in range(BULK):
            key_id = f"{i:016x}"
            rows.append(
                {
                    "subject_ref": _ref(i),
                    "key_id": key_id,
                    "scope": "contract",
                    "state": KeyState.ACTIVE.value,
                    "master_key_id": wrap.key_id,
                    "wrapped": wrap.wrap(_raw(i), subject=_ref(i), scope="contract", key_id=key_id),
                }
            )
        with store._key_db.database.write() as connection:
            bulk_insert(connection, _KEYS, rows)
        store.erase_subject(ERASED, now=NOW)
    return folder


def _points() -> list[str]:
    draw = random.Random(SEED)
    total = BULK + LEARNERS + 10
    bulk = sorted(draw.randrange(1, total) for _ in range(4))
    return [*(f"progress:{n}" for n in bulk), "vault:1:0", "vault:2:1", "meta"]


@pytest.mark.parametrize("index", range(7))
def test_a_50000_key_compaction_killed_at_a_random_point_loses_nothing(
    prepared: Path, tmp_path: Path, index: int
) -> None:
    point = _points()[index]
    where = f"kill point {point} (seed {SEED})"
    for name in _FILES:
        shutil.copyfile(prepared / name, tmp_path / name)
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "tests.epoch_worker", url, point, "5000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -9, f"{where}: {done.stderr[-2000:]}"
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        report = store.compact_keys(now=NOW)
        # Killed after the vault's trim reached one slot, the compaction was done: the
        # rerun then compacts once more.
        assert report["epoch"] in (2, 3), where
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        for i in range(LEARNERS):
            assert store.get(Learner, f"real-{i}") == learner(f"real-{i}"), where
        assert store.get(Learner, ERASED) is None, where
        state = FileVault(tmp_path / "lms.keys.vault").read()
        assert state is not None
        assert set(state["epochs"]) == {state["current"]}, where
        bulk = {}
        for entry in store._keys.iter_entries():
            if entry.subject.startswith("k1_bulk"):
                assert entry.master_key_id == state["current"], where
                bulk[entry.subject] = store.keyring._unwrap(entry)
        assert len(bulk) == BULK, where
        assert all(bulk[_ref(i)] == _raw(i) for i in range(BULK)), where
