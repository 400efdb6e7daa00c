"""Keys apart from data: what it costs to open a store and erase one learner, and rotation.

Rows:

* **open + erase one learner among N** (N = 100,000; 5,000 with ``--quick``): CPU time of
  ``Store(...)`` then ``erase_subject`` then ``close`` in a fresh process, the learner
  holding a record of every type. The floor is the same call on the version before keys
  moved to a key database of their own (commit ``BASELINE``, taken with ``git archive``,
  or the ``src`` directory named by ``LEARNPRIVACY_BASELINE_SRC``), on a store that
  version built itself: target <= 1.5x. The row is left out where neither is available.
  Both sides load the modules the erasure needs before the clock starts (the baseline
  loaded all of them at ``import learnprivacy.store``; this version loads some on first
  use). A second row, for the whole cost of a one-off erasure, starts the clock before
  ``import learnprivacy.store`` on both sides (same target).
  The same steps by hand with ``sqlite3`` are shown as a second row, for scale
  (opening a store checks its schema, its master key and its key database).
* **rotation of N keys** (N = 100,000 learners, one data key each): keys per CPU second of
  ``Keyring.rotate``, against a hand-written re-wrap loop over the same key database
  (unwrap with the old key-encryption key, wrap with the new one, ``executemany``).
* **compaction of N keys** (N = 100,000 and 1,000,000; 20,000 with ``--quick``), on a
  SQLite key database and on a PostgreSQL one (a throwaway server started by
  ``learnprivacy.testing.postgres``; left out where PostgreSQL is not installed): keys per
  CPU second of a key compaction (``learnprivacy.store._epochs.compact``: every live key
  re-wrapped under a new epoch key, the vault written and synced), against a hand-written
  re-wrap loop over the same keys (read every live key, unwrap, wrap under a new key,
  ``executemany`` the updates in one transaction), interleaved in the same run (target:
  the library takes at most 2x the loop's CPU time, i.e. a rate ratio >= 0.5). The keys
  are built in bulk, straight into the key database; each round works on a fresh copy.
  ``python -m benchmarks.bench_keys --compaction [--quick]`` runs these rows alone.

Each child process reports the CPU time of the measured section only (``process_time``),
so interpreter start-up is not counted; rounds are interleaved, medians of at least five.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._measure import MIN_ROUNDS, Sample, ratio_row

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.UTC
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
MASTER = bytes(range(32))
ERASED = "L0000042"
#: The last commit whose store kept the wrapped keys in the records database.
BASELINE = "8343f4f"
ERASE_TARGET = 1.5
#: For scale only: a bare sqlite3 erasure skips everything opening a store does.
FLOOR_TARGET = 25.0
ROTATE_TARGET = 2.0


def _learner(i: int) -> Any:
    from learnprivacy.records import Learner

    start = dt.datetime(2023, 6, 1, tzinfo=UTC)
    return Learner(
        id=f"L{i:07d}",
        username=f"user{i}",
        email=f"user{i}@example.org",
        given_name=f"Given{i % 997}",
        family_name=f"Family{i % 991}",
        created_at=start,
        last_activity_at=start + dt.timedelta(days=i % 1_100),
    )


def _records_of(learner_id: str) -> list[Any]:
    from decimal import Decimal

    from learnprivacy.records import Certificate, Consent, Invoice, Progress, ProgressStatus

    at = dt.datetime(2024, 1, 5, tzinfo=UTC)
    return [
        Progress(
            id=f"{learner_id}-P1",
            learner_id=learner_id,
            course_id="C1",
            status=ProgressStatus.PASSED,
            recorded_at=at,
        ),
        Certificate(
            id=f"{learner_id}-C1",
            learner_id=learner_id,
            course_id="C1",
            issued_at=at,
            verification_code="VERIF-1234",
        ),
        Consent(id=f"{learner_id}-K1", learner_id=learner_id, purpose="newsletter", given_at=at),
        Invoice(
            id=f"{learner_id}-I1",
            learner_id=learner_id,
            billing_name="Name",
            billing_address="1 rue de la Paix",
            amount=Decimal("10.00"),
            issued_at=at,
        ),
    ]


# -- steps run in child processes ----------------------------------------------------------


def build(path: Path, count: int) -> None:
    """A store of ``count`` learners at ``path`` (its keys wherever its version keeps them)."""
    from learnprivacy.crypto import Keyring
    from learnprivacy.store import Store

    store = Store(f"sqlite:///{path}", keyring=Keyring(MASTER), clock=lambda: NOW)
    step = 20_000
    for start in range(0, count, step):
        store.add_all([_learner(i) for i in range(start, min(count, start + step))])
    store.add_all(_records_of(ERASED))
    store.close()


#: Modules an erasure needs that this version loads on first use. The baseline loaded
#: them all at ``import learnprivacy.store``, before its clock started: both sides load
#: them before the clock (those a version lacks are skipped), so the row compares the
#: erasure, not where an import happens. The cold row counts every import.
_ERASE_MODULES = (
    "sqlalchemy.dialects.sqlite",
    "learnprivacy.retention",
    "learnprivacy.store._erasure",
)


def erase(path: Path) -> float:
    """CPU seconds to open the store at ``path``, erase one learner and close it, in a
    process that has loaded the modules it needs (:data:`_ERASE_MODULES`)."""
    import contextlib
    import importlib

    from learnprivacy.crypto import Keyring
    from learnprivacy.store import Store

    for name in _ERASE_MODULES:
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(name)
    return _open_and_erase(path, Keyring, Store, time.process_time())


def erase_cold(path: Path) -> float:
    """The same in a fresh process, counting ``import learnprivacy.store`` and every
    module loaded on the way."""
    began = time.process_time()
    from learnprivacy.crypto import Keyring
    from learnprivacy.store import Store

    return _open_and_erase(path, Keyring, Store, began)


def _open_and_erase(path: Path, keyring: Any, store_class: Any, began: float) -> float:
    """Open the store at ``path``, erase one learner, close; CPU seconds since ``began``."""
    store = store_class(f"sqlite:///{path}", keyring=keyring(MASTER), clock=lambda: NOW)
    report = store.erase_subject(ERASED, now=NOW)
    store.close()
    elapsed = time.process_time() - began
    if report.erased < 4:
        raise AssertionError(f"erased {report.erased} records, expected at least 4")
    return elapsed


def erase_floor(path: Path) -> float:
    """The same erasure by hand: rows, audit row, key rows, log truncation."""
    keys = path.with_name(path.name.removesuffix(".db") + ".keys.db")
    began = time.process_time()
    records = sqlite3.connect(path, isolation_level=None)
    records.execute("PRAGMA secure_delete = ON")
    records.execute("PRAGMA synchronous = FULL")
    records.execute("BEGIN IMMEDIATE")
    for table in ("lp_progress", "lp_certificate", "lp_consent", "lp_access_event"):
        records.execute(f"DELETE FROM {table} WHERE learner_id = ?", (ERASED,))
    records.execute(
        "UPDATE lp_invoice SET lp_restricted_at = ? WHERE learner_id = ?", ("x", ERASED)
    )
    records.execute("DELETE FROM lp_learner WHERE id = ?", (ERASED,))
    records.execute(
        "INSERT INTO lp_audit (sequence, at, action, actor, outcome, details, prev_hash, hash) "
        "SELECT coalesce(max(sequence), 0) + 1, '2026-06-15', 'erase', 'x', 'done', '{}', "
        "'0', '0' FROM lp_audit"
    )
    records.execute("COMMIT")
    records.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    records.close()
    key_db = sqlite3.connect(keys, isolation_level=None)
    key_db.execute("PRAGMA secure_delete = ON")
    key_db.execute("PRAGMA synchronous = FULL")
    key_db.execute("BEGIN IMMEDIATE")
    key_db.execute(
        "UPDATE lpk_keys SET state = 'shredded', wrapped = x'' WHERE subject_ref = ? "
        "AND scope <> 'legal'",
        ("k1_floor",),
    )
    key_db.execute("INSERT OR IGNORE INTO lpk_tombstones VALUES ('k1_floor', 'contract')")
    key_db.execute("COMMIT")
    key_db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    key_db.close()
    return time.process_time() - began


def _child(args: list[str], src: str | None = None) -> str:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, str(ROOT)])
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_keys", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return result.stdout.strip()


def _baseline_src(tmp: Path) -> str | None:
    """The ``src`` directory of the baseline version, or ``None`` when unavailable."""
    named = os.environ.get("LEARNPRIVACY_BASELINE_SRC")
    if named:
        return named
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BASELINE, "src"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        return None
    target = tmp / "baseline"
    target.mkdir()
    unpacked = subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=False)
    return str(target / "src") if unpacked.returncode == 0 else None


def _copy_store(source: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        for name in (source.name, source.name.removesuffix(".db") + ".keys.db"):
            src = source.with_name(name + suffix)
            dst = target.with_name(name.replace(source.stem, target.stem, 1) + suffix)
            dst.unlink(missing_ok=True)
            if src.exists():
                shutil.copyfile(src, dst)


# -- rotation (in process) -----------------------------------------------------------------


def _rotation_store(path: Path, count: int) -> None:
    from learnprivacy.crypto import FieldCipher, Keyring
    from learnprivacy.keys import KeyDatabase

    keys = KeyDatabase(f"sqlite:///{path}")
    keyring = keys.keyring(Keyring(MASTER))
    cipher = FieldCipher(keyring)
    step = 5_000
    for start in range(0, count, step):
        subjects = [f"L{i:07d}" for i in range(start, min(count, start + step))]
        with keys.batch(keyring.key_ref(s) for s in subjects):
            for subject in subjects:
                cipher.encrypt("x", subject=subject, context="bench")
            keys.flush()
    keys.close()


def rotate(path: Path, new: bytes) -> float:
    """CPU seconds of ``Keyring.rotate`` over the key database at ``path``."""
    from learnprivacy.crypto import Keyring
    from learnprivacy.keys import KeyDatabase

    keys = KeyDatabase(f"sqlite:///{path}")
    keyring = keys.keyring(Keyring(MASTER))
    began = time.process_time()
    keyring.rotate(new)
    elapsed = time.process_time() - began
    keys.close()
    return elapsed


#: The live keys the hand-written re-wrap loops read.
_LIVE_KEYS = "SELECT subject_ref, scope, key_id, wrapped FROM lpk_keys WHERE state <> 'shredded'"


def _rewrapper(new: bytes) -> Callable[[list[Any]], list[tuple[Any, ...]]]:
    """The hand-written re-wrap from the master key to ``new`` (both keys opened before the
    clock starts): key rows (subject, scope, key id, wrapped) in, the UPDATE parameters
    (master key id, wrapped, subject, key id) out."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from learnprivacy.crypto._master import MasterKey, wrap_associated_data

    old_key, new_key = MasterKey(MASTER), MasterKey(new)

    def rewrapped(rows: list[Any]) -> list[tuple[Any, ...]]:
        old_kek: AESGCM = old_key._kek
        updates = []
        for subject, scope, key_id, wrapped in rows:
            aad = wrap_associated_data(subject, scope, key_id)
            raw = old_kek.decrypt(wrapped[:12], wrapped[12:], aad)
            updates.append(
                (
                    new_key.key_id,
                    new_key.wrap(raw, subject=subject, scope=scope, key_id=key_id),
                    subject,
                    key_id,
                )
            )
        return updates

    return rewrapped


def rotate_floor(path: Path, new: bytes) -> float:
    """A hand-written re-wrap of every live key of the same database."""
    rewrapped = _rewrapper(new)
    began = time.process_time()
    connection = sqlite3.connect(path, isolation_level=None)
    updates = rewrapped(connection.execute(_LIVE_KEYS).fetchall())
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        "UPDATE lpk_keys SET master_key_id = ?, wrapped = ? WHERE subject_ref = ? AND key_id = ?",
        updates,
    )
    connection.execute("COMMIT")
    connection.close()
    return time.process_time() - began


# -- compaction at scale (SQLite and PostgreSQL) --------------------------------------------


def bulk_keys(url: str, count: int) -> None:
    """``count`` data keys straight into the key database at ``url``, wrapped under the
    master key as a keyring would wrap them (plus the keyring's own keys)."""
    from learnprivacy.crypto import Keyring
    from learnprivacy.crypto._master import MasterKey
    from learnprivacy.keys import KeyDatabase
    from learnprivacy.store._bulk import bulk_insert
    from learnprivacy.store._keydb import _KEYS

    keys = KeyDatabase(url)
    keyring = keys.keyring(Keyring(MASTER))
    keyring.verify()
    keyring.key_ref("L0")  # the key-reference key
    master = MasterKey(MASTER)
    step = 50_000
    for start in range(0, count, step):
        rows = []
        for i in range(start, min(count, start + step)):
            ref, key_id = f"k1_bench{i:08d}", os.urandom(8).hex()
            rows.append(
                {
                    "subject_ref": ref,
                    "key_id": key_id,
                    "scope": "contract",
                    "state": "active",
                    "master_key_id": master.key_id,
                    "wrapped": master.wrap(
                        os.urandom(32), subject=ref, scope="contract", key_id=key_id
                    ),
                }
            )
        with keys.database.write() as connection:
            bulk_insert(connection, _KEYS, rows)
    keys.close()


def compact_url(url: str, vault: str) -> float:
    """CPU seconds of a key compaction of the key database at ``url``."""
    from learnprivacy.crypto import Keyring
    from learnprivacy.keys import KeyDatabase
    from learnprivacy.store._epochs import FileVault
    from learnprivacy.store._epochs import compact as compact_keys

    Path(vault).unlink(missing_ok=True)
    keys = KeyDatabase(url)
    keyring = keys.keyring(Keyring(MASTER))
    began = time.process_time()
    report = compact_keys(keyring, keys, FileVault(vault), now=dt.datetime.now(UTC))
    elapsed = time.process_time() - began
    keys.close()
    if report["rewrapped"] < report["live"]:
        raise AssertionError("the compaction left keys behind")
    return elapsed


def rewrap_floor_url(url: str, new: bytes) -> float:
    """The hand-written re-wrap loop, on SQLite (sqlite3) or PostgreSQL (psycopg)."""
    if url.startswith("sqlite"):
        return rotate_floor(Path(url.removeprefix("sqlite:///")), new)
    import psycopg

    rewrapped = _rewrapper(new)
    began = time.process_time()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        updates = rewrapped(connection.execute(_LIVE_KEYS).fetchall())
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE lpk_keys SET master_key_id = %s, wrapped = %s "
                "WHERE subject_ref = %s AND key_id = %s",
                updates,
            )
    return time.process_time() - began


def _compaction_rows(tmp: Path, sizes: list[int], rounds: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    server = None
    try:
        from learnprivacy.testing.postgres import PostgresUnavailable, TemporaryPostgres

        server = TemporaryPostgres()
        try:
            server.start()
        except PostgresUnavailable:
            server = None
        for count in sizes:
            places: list[tuple[str, Any, Any]] = []
            built = tmp / f"c{count}.keys.db"
            _child(["--bulk-keys", f"sqlite:///{built}", str(count)])
            vault = str(tmp / "c.vault")

            def sqlite_copy(built: Path = built) -> str:
                work = tmp / "cwork.keys.db"
                for suffix in ("-wal", "-shm"):
                    work.with_name(work.name + suffix).unlink(missing_ok=True)
                shutil.copyfile(built, work)
                return f"sqlite:///{work}"

            places.append(("SQLite", sqlite_copy, None))
            if server is not None:
                name = f"bench_c{count}"
                server.create_database(name)
                _child(["--bulk-keys", server.url_for(name), str(count)])

                def pg_copy(name: str = name) -> str:
                    import psycopg

                    with psycopg.connect(server.dsn_for("postgres"), autocommit=True) as c:
                        c.execute("DROP DATABASE IF EXISTS bench_work")
                        c.execute(f'CREATE DATABASE bench_work TEMPLATE "{name}"')
                    return server.url_for("bench_work")

                places.append(("PostgreSQL", pg_copy, name))
            total = count + 2  # the keyring's own two keys
            for label, copy, _name in places:
                times: dict[str, list[float]] = {"store": [], "floor": []}
                for round_ in range(rounds):
                    url = copy()
                    times["store"].append(float(_child(["--compact-url", url, vault])))
                    url = copy()
                    new = (bytes([round_ + 11]) * 32).hex()
                    times["floor"].append(float(_child(["--rewrap-floor-url", url, new])))
                rows.append(
                    ratio_row(
                        f"key compaction of {total:,} keys ({label} key database), keys/s, "
                        "against a hand-written re-wrap loop",
                        _sample(times["store"]),
                        _sample(times["floor"]),
                        target=1 / ROTATE_TARGET,
                        work=total,
                        unit="keys/s",
                    )
                )
            if server is not None:
                import psycopg

                with psycopg.connect(server.dsn_for("postgres"), autocommit=True) as c:
                    c.execute("DROP DATABASE IF EXISTS bench_work")
                server.drop_database(f"bench_c{count}")
    finally:
        if server is not None:
            server.stop()
    return rows


def run_compaction(quick: bool = False) -> list[dict[str, Any]]:
    """The compaction rows alone."""
    sizes = [20_000] if quick else [100_000, 1_000_000]
    with tempfile.TemporaryDirectory() as tmp_name:
        return _compaction_rows(Path(tmp_name), sizes, MIN_ROUNDS)


# -- the runner ----------------------------------------------------------------------------


def _sample(values: list[float]) -> Sample:
    return Sample(tuple(values))


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Open + erase one learner among N, and rotation of N keys."""
    count = 5_000 if quick else 100_000
    rounds = MIN_ROUNDS
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        baseline = _baseline_src(tmp)
        built = tmp / "built.db"
        _child(["--build", str(built), str(count)])
        old_built = tmp / "oldbuilt.db"
        if baseline:
            _child(["--build", str(old_built), str(count)], src=baseline)
        times: dict[str, list[float]] = {
            "store": [],
            "floor": [],
            "baseline": [],
            "cold": [],
            "cold baseline": [],
        }
        for _ in range(rounds):
            work = tmp / "work.db"
            old_work = tmp / "oldwork.db"
            for flag, mine, theirs in (
                ("--erase", "store", "baseline"),
                ("--erase-cold", "cold", "cold baseline"),
            ):
                _copy_store(built, work)
                times[mine].append(float(_child([flag, str(work)])))
                if baseline:
                    _copy_store(old_built, old_work)
                    times[theirs].append(float(_child([flag, str(old_work)], src=baseline)))
            _copy_store(built, work)
            times["floor"].append(float(_child(["--erase-floor", str(work)])))
        name = f"open + erase one learner among {count:,} (SQLite)"
        rows.append(
            ratio_row(
                f"{name}, against hand-written SQL",
                _sample(times["store"]),
                _sample(times["floor"]),
                target=FLOOR_TARGET,
            )
        )
        for how, mine, theirs in (
            (",", "store", "baseline"),
            (" in a fresh process, imports counted,", "cold", "cold baseline"),
        ):
            if baseline:
                rows.append(
                    ratio_row(
                        f"{name}{how} against the version that kept keys with the records",
                        _sample(times[mine]),
                        _sample(times[theirs]),
                        target=ERASE_TARGET,
                    )
                )
        keys = tmp / "rotate.keys.db"
        _child(["--rotation-store", str(keys), str(count)])
        rotations: dict[str, list[float]] = {"store": [], "floor": []}
        for round_ in range(rounds):
            for label, flag in (("store", "--rotate"), ("floor", "--rotate-floor")):
                work = tmp / "rotate-work.keys.db"
                shutil.copyfile(keys, work)
                new = bytes([round_ + 1]) * 32
                rotations[label].append(float(_child([flag, str(work), new.hex()])))
        keys_count = count + 2  # one data key per learner, plus the keyring's own two
        rows.append(
            ratio_row(
                f"master-key rotation of {keys_count:,} keys (SQLite), keys/s",
                _sample(rotations["store"]),
                _sample(rotations["floor"]),
                target=1 / ROTATE_TARGET,
                work=keys_count,
                unit="keys/s",
            )
        )
    rows.extend(run_compaction(quick))
    return rows


#: The child-process steps: ``--step ARG ...`` runs ``STEPS[step](ARGS)`` and prints what it
#: returns (a CPU time, a ratio's side), if anything.
STEPS: dict[str, Callable[[list[str]], object]] = {
    "--build": lambda a: build(Path(a[0]), int(a[1])),
    "--erase": lambda a: erase(Path(a[0])),
    "--erase-cold": lambda a: erase_cold(Path(a[0])),
    "--erase-floor": lambda a: erase_floor(Path(a[0])),
    "--rotation-store": lambda a: _rotation_store(Path(a[0]), int(a[1])),
    "--rotate": lambda a: rotate(Path(a[0]), bytes.fromhex(a[1])),
    "--rotate-floor": lambda a: rotate_floor(Path(a[0]), bytes.fromhex(a[1])),
    "--bulk-keys": lambda a: bulk_keys(a[0], int(a[1])),
    "--compact-url": lambda a: compact_url(a[0], a[1]),
    "--rewrap-floor-url": lambda a: rewrap_floor_url(a[0], bytes.fromhex(a[1])),
}


def main(argv: list[str]) -> int:
    """Run the benchmark, or one of its child-process steps."""
    step = STEPS.get(argv[0]) if argv else None
    if step is not None:
        result = step(argv[1:])
        if result is not None:
            print(result)
        return 0
    rows = run_compaction if argv[:1] == ["--compaction"] else run
    for row in rows(quick="--quick" in argv):
        print(json.dumps(row, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
