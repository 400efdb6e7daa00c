"""Django models with four personal fields: save and load against plain fields.

Run ``python benchmarks/bench_django.py`` (``--quick`` for a short run). The same
profile model (a learner id and four text fields) is saved one instance at a time
(``Model.save()`` in one transaction per round) and loaded back with every field read,
four ways, on SQLite files and on a real PostgreSQL server (each database in a process
of its own, as Django is configured once per process):

* plain Django ``CharField`` (the floor);
* ``learnprivacy.django`` ``personal()`` fields: per-learner keys in a key store of its
  own database, each value bound to (table, primary key, field). Three runs: learners
  whose keys already exist (they were made when the learner first gave personal data:
  the steady state of a running LMS); new learners whose keys ``prepare_keys`` makes in
  one batch, timed with the saves; new learners whose key is made on their first save;
* django-cryptography ``encrypt()`` fields (its last release imports
  ``django.utils.baseconv``, removed in Django 5: a stand-in module is installed here,
  in the benchmark only);
* django-fernet-encrypted-fields ``EncryptedCharField``.

Targets: learnprivacy save+load within 1.5x of plain fields once the learners' keys
exist; with new learners, whose keys are made and stored in the key store's database
too, no slower than either package (which use one application key for everything).
Times are CPU seconds (process time), medians of interleaved rounds; each timed part
(the saves, the load) starts after ``gc.collect()``, the same for every run (the
collector stays on).

``--writes`` (also part of the full run) times writes to stored rows, plain fields
against learnprivacy with the keys made (5,000 rows; 1,000 with ``--quick``): ``save()``
of each loaded row, ``bulk_create(update_conflicts=True)`` over them and a ``delete()``
of them all. These are the paths that check restrictions (GDPR Art. 18) in the write's
transaction, holding the rows first on PostgreSQL (``FOR UPDATE``) and the write lock on
SQLite; no target, the cost is measured. Client CPU only: the server's work for the extra
statements is not counted.

``--compaction`` (also part of the full run) times ``learnprivacy_keys compact`` on a
Django key store of N learners' keys (SQLite; 20,000 learners, 5,000 with ``--quick``):
every live key re-wrapped under a new epoch key, against the same hand-written re-wrap
loop ``bench_keys`` uses as its floor (read every live key, unwrap, wrap under a new key,
one ``executemany``), each round on a fresh copy of the same key store, interleaved.
Target: at least half the floor's rate (as the store's compaction).
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROWS = 20_000
QUICK_ROWS = 2_000
KEYS_MADE = "learnprivacy, learners' keys already made"
NEW_BATCH = "learnprivacy, new learners, keys made by prepare_keys (timed)"
NEW_INLINE = "learnprivacy, new learners, each key made on first save"


def _install_baseconv() -> None:
    """A stand-in for ``django.utils.baseconv`` (removed in Django 5.0), for the
    benchmark's django-cryptography only: base-62 integers, as its signer uses them."""
    if "django.utils.baseconv" in sys.modules:
        return
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

    class Base62:
        def encode(self, number: int) -> str:
            sign, number = ("-", -number) if number < 0 else ("", number)
            out = ""
            while True:
                number, remainder = divmod(number, 62)
                out = digits[remainder] + out
                if number == 0:
                    return sign + out

        def decode(self, text: str) -> int:
            sign = -1 if text.startswith("-") else 1
            value = 0
            for char in text.lstrip("-"):
                value = value * 62 + digits.index(char)
            return sign * value

    module = types.ModuleType("django.utils.baseconv")
    module.base62 = Base62()  # type: ignore[attr-defined]
    sys.modules["django.utils.baseconv"] = module
    import django.utils

    django.utils.baseconv = module  # type: ignore[attr-defined]


def _databases(folder: Path, postgres: str | None) -> dict[str, Any]:
    if postgres is not None:
        host, port, user = postgres.split(":")
        server = {"ENGINE": "django.db.backends.postgresql", "HOST": host, "PORT": port}
        return {
            "default": {**server, "USER": user, "NAME": "bench_data"},
            "learnprivacy_keys": {**server, "USER": user, "NAME": "bench_keys"},
        }
    sqlite = {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"}
    return {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": folder / "data.sqlite3",
            "OPTIONS": sqlite,
        },
        "learnprivacy_keys": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": folder / "keys.sqlite3",
            "OPTIONS": {"init_command": sqlite["init_command"] + "; PRAGMA secure_delete=ON"},
        },
    }


def _setup(folder: Path, postgres: str | None = None) -> None:
    import django
    from django.conf import settings

    os.environ.setdefault("LEARNPRIVACY_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    settings.configure(
        SECRET_KEY="benchmark-only",  # noqa: S106 (a throwaway benchmark project)
        SALT_KEY="benchmark-salt",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "learnprivacy.django",
            "benchmarks.django_bench",
        ],
        DATABASES=_databases(folder, postgres),
        DATABASE_ROUTERS=["learnprivacy.django.KeysRouter"],
        LEARNPRIVACY={"KEYS": "learnprivacy_keys"},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    _install_baseconv()
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    call_command("migrate", database="learnprivacy_keys", verbosity=0)


def _runs(count: int) -> dict[str, Callable[[int], tuple[float, float]]]:
    from django.db import transaction

    from benchmarks.django_bench.models import (
        CryptographyProfile,
        FernetProfile,
        LpProfile,
        PlainProfile,
    )
    from learnprivacy.django._privacy import prepare_keys

    def values(i: int) -> dict[str, Any]:
        return {
            "email": f"learner{i}@example.org",
            "name": f"Learner Number {i}",
            "phone": f"+33 6 {i:08d}",
            "city": "Clermont-Ferrand",
        }

    def make(model: Any, prepare: str) -> Callable[[int], tuple[float, float]]:
        def run(offset: int) -> tuple[float, float]:
            learners = range(offset, offset + count)
            if prepare == "before":
                prepare_keys(learners)
            # Every run starts each timed part (save, load) with the collector's
            # generations empty, so that none pays for collections its earlier work
            # (or the run before it) made due; the collector stays on, for every run
            # alike.
            gc.collect()
            started = time.process_time()
            if prepare == "timed":
                prepare_keys(learners)
            with transaction.atomic():
                for i in learners:
                    model(learner=i, **values(i)).save()
            saved = time.process_time()
            gc.collect()
            loading = time.process_time()
            total = 0
            for row in model.objects.filter(learner__gte=offset, learner__lt=offset + count):
                total += len(row.email) + len(row.name) + len(row.phone) + len(row.city)
            loaded = time.process_time()
            if total == 0:
                raise RuntimeError("nothing was loaded")
            return saved - started, loaded - loading

        return run

    return {
        "plain": make(PlainProfile, ""),
        KEYS_MADE: make(LpProfile, "before"),
        NEW_BATCH: make(LpProfile, "timed"),
        NEW_INLINE: make(LpProfile, ""),
        "django-cryptography": make(CryptographyProfile, ""),
        "fernet-fields": make(FernetProfile, ""),
    }


def measure(count: int, rounds: int, postgres: str | None) -> dict[str, list[list[float]]]:
    """(save, load) CPU seconds of every run, every round, in this process."""
    with tempfile.TemporaryDirectory() as folder:
        _setup(Path(folder), postgres)
        runs = _runs(count)
        if postgres is not None:
            # One commit per new learner, over TCP: minutes of wall time for a figure the
            # SQLite run already gives; left out on PostgreSQL.
            del runs[NEW_INLINE]
        parts: dict[str, list[list[float]]] = {name: [] for name in runs}
        for round_ in range(rounds):
            for position, (name, body) in enumerate(runs.items()):
                # Fresh learners every round and run: every learnprivacy run makes keys.
                offset = (round_ * len(runs) + position + 1) * 1_000_000
                save, load = body(offset)
                parts[name].append([save, load])
    return parts


#: The writes of stored rows timed by ``--writes``, each a guarded path of learnprivacy.
WRITES = ("save", "upsert", "delete")


def measure_writes(count: int, rounds: int, postgres: str | None) -> dict[str, Any]:
    """CPU seconds of writes to ``count`` stored rows, plain fields against learnprivacy
    (keys made), interleaved, every round: ``save()`` of each loaded row (a restriction
    check; on PostgreSQL the row locked first), ``bulk_create(update_conflicts=True)``
    over them (the colliding rows found and, on PostgreSQL, locked, then checked), and a
    ``delete()`` of them all (Django then sends ``pre_delete`` for every row: a check
    each, and a row lock each on PostgreSQL; plain rows go in one fast DELETE)."""
    times: dict[str, dict[str, list[float]]] = {
        name: {write: [] for write in WRITES} for name in ("plain", KEYS_MADE)
    }
    with tempfile.TemporaryDirectory() as folder:
        _setup(Path(folder), postgres)
        from django.db import transaction

        from benchmarks.django_bench.models import LpProfile, PlainProfile
        from learnprivacy.django._privacy import prepare_keys

        for round_ in range(rounds):
            for position, (name, model) in enumerate(
                (("plain", PlainProfile), (KEYS_MADE, LpProfile))
            ):
                offset = (round_ * 2 + position + 1) * 1_000_000
                learners = range(offset, offset + count)
                prepare_keys(learners)
                with transaction.atomic():
                    for i in learners:
                        model(
                            learner=i,
                            email=f"l{i}@example.org",
                            name=f"L {i}",
                            phone=f"+33 6 {i:08d}",
                            city="Paris",
                        ).save()
                rows = list(model.objects.filter(learner__gte=offset, learner__lt=offset + count))
                gc.collect()
                began = time.process_time()
                with transaction.atomic():
                    for row in rows:
                        row.city = "Lyon"
                        row.save()
                times[name]["save"].append(time.process_time() - began)
                kept = ("id", "learner", "email", "name", "phone")
                again = [model(city="Nice", **{f: getattr(r, f) for f in kept}) for r in rows]
                gc.collect()
                began = time.process_time()
                model.objects.bulk_create(
                    again, update_conflicts=True, unique_fields=["id"], update_fields=["city"]
                )
                times[name]["upsert"].append(time.process_time() - began)
                gc.collect()
                began = time.process_time()
                model.objects.filter(learner__gte=offset, learner__lt=offset + count).delete()
                times[name]["delete"].append(time.process_time() - began)
    return times


def _write_rows(times: dict[str, Any], count: int, database: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for write in WRITES:
        floor = statistics.median(times["plain"][write])
        value = statistics.median(times[KEYS_MADE][write])
        rows.append(
            {
                "name": f"django {KEYS_MADE}: {count:,} stored profiles, {write} ({database})",
                "value": round(value, 3),
                "floor": round(floor, 3),
                "ratio": round(value / floor, 3),
                "target": "none (restriction checks and row locks, measured)",
                "ok": True,
                "unit": "s",
            }
        )
    return rows


def _measure_in_subprocess(
    count: int, rounds: int, postgres: str | None, *, mode: str = "--emit"
) -> dict[str, Any]:
    # Django is configured once per process: each database gets a process of its own.
    command = [sys.executable, str(Path(__file__).resolve()), mode, str(count), str(rounds)]
    if postgres is not None:
        command += ["--postgres", postgres]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the Django benchmark failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _rows(
    parts: dict[str, list[list[float]]], count: int, database: str
) -> list[dict[str, object]]:
    median = {name: statistics.median(s + load for s, load in v) for name, v in parts.items()}
    floor = median["plain"]
    rows: list[dict[str, object]] = []
    label = f"{count:,} profiles x 4 personal fields, save+load ({database})"
    for name, target in (
        (KEYS_MADE, "<= 1.5x"),
        (NEW_BATCH, "none (keys in their own database)"),
        (NEW_INLINE, "none (one key-store commit per learner)"),
        ("django-cryptography", "learnprivacy (new learners) no slower"),
        ("fernet-fields", "learnprivacy (new learners) no slower"),
    ):
        if name not in median:
            continue
        ratio = median[name] / floor
        if name == KEYS_MADE:
            ok = ratio <= 1.5
        elif name in ("django-cryptography", "fernet-fields"):
            ok = median[NEW_BATCH] <= median[name]
        else:
            ok = True
        rows.append(
            {
                "name": f"django {name}: {label}",
                "value": round(median[name], 3),
                "floor": round(floor, 3),
                "ratio": round(ratio, 3),
                "target": target,
                "ok": ok,
                "unit": "s",
            }
        )
    for name, values in parts.items():
        save = statistics.median(v[0] for v in values)
        load = statistics.median(v[1] for v in values)
        print(f"  {database} {name}: save {save:.3f} s, load {load:.3f} s", file=sys.stderr)
    return rows


#: Stored rows written by the writes rows (fewer than ROWS: a delete with pre_delete
#: receivers loads every row first, on both sides).
WRITE_ROWS = 5_000
QUICK_WRITE_ROWS = 1_000


def run(quick: bool = False) -> list[dict[str, object]]:
    """Rows for ``python -m benchmarks``: SQLite, its writes and compaction rows, then
    PostgreSQL and its writes when it can start."""
    count = QUICK_ROWS if quick else ROWS
    writes = QUICK_WRITE_ROWS if quick else WRITE_ROWS
    rounds = 3 if quick else 5
    rows = _rows(_measure_in_subprocess(count, rounds, None), count, "SQLite")
    rows += _write_rows(
        _measure_in_subprocess(writes, rounds, None, mode="--emit-writes"), writes, "SQLite"
    )
    rows += run_compaction(quick)
    with _postgres() as target:
        if target is not None:
            rows += _rows(_measure_in_subprocess(count, rounds, target), count, "PostgreSQL")
    # A server of its own: each child process makes its own master key, and the saves
    # above left their rows and keys in the first server's databases.
    with _postgres() as target:
        if target is not None:
            measured = _measure_in_subprocess(writes, rounds, target, mode="--emit-writes")
            rows += _write_rows(measured, writes, "PostgreSQL")
    return rows


def run_writes(quick: bool = False) -> list[dict[str, object]]:
    """The writes rows only, SQLite then PostgreSQL (``--writes``)."""
    writes = QUICK_WRITE_ROWS if quick else WRITE_ROWS
    rounds = 3 if quick else 5
    rows = _write_rows(
        _measure_in_subprocess(writes, rounds, None, mode="--emit-writes"), writes, "SQLite"
    )
    with _postgres() as target:
        if target is not None:
            measured = _measure_in_subprocess(writes, rounds, target, mode="--emit-writes")
            rows += _write_rows(measured, writes, "PostgreSQL")
    return rows


@contextmanager
def _postgres() -> Iterator[str | None]:
    """``host:port:user`` of a throwaway server holding the two benchmark databases, or
    ``None`` (said on stderr) when PostgreSQL cannot start."""
    from learnprivacy.testing.postgres import PostgresUnavailable, TemporaryPostgres

    try:
        server = TemporaryPostgres().start()
    except PostgresUnavailable as exc:
        print(f"  PostgreSQL skipped: {exc}", file=sys.stderr)
        yield None
        return
    try:
        server.create_database("bench_data")
        server.create_database("bench_keys")
        yield f"{server.host}:{server.port}:{server.user}"
    finally:
        server.stop()


# -- key compaction of a Django key store ----------------------------------------------

COMPACTION_LEARNERS = 20_000
QUICK_COMPACTION_LEARNERS = 5_000
COMPACTION_TARGET = 0.5


def build_key_store(folder: Path, learners: int) -> int:
    """A Django project's databases in ``folder`` whose key store holds the keys of
    ``learners`` learners (made by ``prepare_keys``, wrapped under the master key);
    returns how many live keys it holds."""
    _setup(folder)
    from learnprivacy.django._keys import key_store
    from learnprivacy.django._privacy import prepare_keys

    for start in range(0, learners, 5_000):
        prepare_keys(range(start, min(learners, start + 5_000)))
    counts = key_store().counts()
    return int(counts["active"] + counts["retired"])


def compact_folder(folder: Path) -> float:
    """CPU seconds of ``learnprivacy_keys compact`` on the project in ``folder``."""
    import datetime as dt

    _setup(folder)
    from learnprivacy.django._keys import compact_keys

    began = time.process_time()
    report = compact_keys(now=dt.datetime.now(dt.UTC))
    elapsed = time.process_time() - began
    if report["rewrapped"] < report["live"]:
        raise AssertionError("the compaction left keys behind")
    return elapsed


def rewrap_floor(folder: Path, new: bytes) -> float:
    """The hand-written re-wrap of every live key of the same key store (sqlite3)."""
    import sqlite3

    from benchmarks.bench_keys import _rewrapper

    rewrapped = _rewrapper(new)
    began = time.process_time()
    connection = sqlite3.connect(folder / "keys.sqlite3", isolation_level=None)
    rows = connection.execute(
        "SELECT subject_ref, scope, key_id, wrapped FROM lpdj_keys WHERE state <> 'shredded'"
    ).fetchall()
    updates = rewrapped(rows)
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        "UPDATE lpdj_keys SET master_key_id = ?, wrapped = ? WHERE subject_ref = ? AND key_id = ?",
        updates,
    )
    connection.execute("COMMIT")
    connection.close()
    return time.process_time() - began


def _child(*args: str) -> str:
    from benchmarks.bench_keys import MASTER

    env = {**os.environ, "LEARNPRIVACY_MASTER_KEY": base64.b64encode(MASTER).decode()}
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"the Django compaction benchmark failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def run_compaction(quick: bool = False) -> list[dict[str, object]]:
    """The compaction row: ``learnprivacy_keys compact`` against the hand-written loop."""
    import shutil

    from benchmarks._measure import MIN_ROUNDS, Sample, ratio_row

    learners = QUICK_COMPACTION_LEARNERS if quick else COMPACTION_LEARNERS
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / "built"
        built.mkdir()
        live = int(_child("--build-keys", str(built), str(learners)))
        work = Path(tmp) / "work"
        times: dict[str, list[float]] = {"compact": [], "floor": []}
        for round_ in range(MIN_ROUNDS):
            for name in ("compact", "floor"):
                shutil.rmtree(work, ignore_errors=True)
                shutil.copytree(built, work)
                if name == "compact":
                    times[name].append(float(_child("--compact", str(work))))
                else:
                    new = (bytes([round_ + 11]) * 32).hex()
                    times[name].append(float(_child("--rewrap-floor", str(work), new)))
    return [
        ratio_row(
            f"django learnprivacy_keys compact of {live:,} keys ({learners:,} learners, "
            "SQLite key store), keys/s, against a hand-written re-wrap loop",
            Sample(tuple(times["compact"])),
            Sample(tuple(times["floor"])),
            target=COMPACTION_TARGET,
            work=live,
            unit="keys/s",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    """Print the rows; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--emit", nargs=2, type=int, metavar=("ROWS", "ROUNDS"))
    parser.add_argument("--emit-writes", nargs=2, type=int, metavar=("ROWS", "ROUNDS"))
    parser.add_argument(
        "--writes",
        action="store_true",
        help="the writes of stored rows only (save, upsert, delete)",
    )
    parser.add_argument("--postgres", help="host:port:user of a running server")
    parser.add_argument("--compaction", action="store_true", help="the compaction row only")
    parser.add_argument("--build-keys", nargs=2, metavar=("FOLDER", "LEARNERS"))
    parser.add_argument("--compact", metavar="FOLDER")
    parser.add_argument("--rewrap-floor", nargs=2, metavar=("FOLDER", "NEW_KEY_HEX"))
    args = parser.parse_args(argv)
    if args.emit:
        print(json.dumps(measure(args.emit[0], args.emit[1], args.postgres)))
        return 0
    if args.emit_writes:
        print(json.dumps(measure_writes(args.emit_writes[0], args.emit_writes[1], args.postgres)))
        return 0
    if args.build_keys:
        print(build_key_store(Path(args.build_keys[0]), int(args.build_keys[1])))
        return 0
    if args.compact:
        print(compact_folder(Path(args.compact)))
        return 0
    if args.rewrap_floor:
        print(rewrap_floor(Path(args.rewrap_floor[0]), bytes.fromhex(args.rewrap_floor[1])))
        return 0
    if args.compaction:
        rows = run_compaction(quick=args.quick)
    elif args.writes:
        rows = run_writes(quick=args.quick)
    else:
        rows = run(quick=args.quick)
    for row in rows:
        if row["unit"] == "s":
            print(
                f"{row['name']}: {row['value']} s vs plain {row['floor']} s "
                f"= {row['ratio']}x (target {row['target']}) {'ok' if row['ok'] else 'MISSED'}"
            )
        else:
            print(
                f"{row['name']}: {row['value']:,.0f} vs {row['floor']:,.0f} {row['unit']} "
                f"= {row['ratio']} (target {row['target']}) {'ok' if row['ok'] else 'MISSED'}"
            )
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
