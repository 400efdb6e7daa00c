"""Sweeps survive SIGKILL mid-run, and concurrent workers never process the same rows."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from learnprivacy.crypto import Keyring
from learnprivacy.store import Store
from tests.store_fixtures import (
    MASTER_KEY,
    NOW,
    anonymised_facts,
    keys_for,
    population,
    retention_schedule,
)

ROOT = Path(__file__).resolve().parent.parent
_DESTRUCTIVE = ("erase", "anonymise", "restrict")


def _worker(url: str, batch_size: int, actor: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.store_worker",
            url,
            keys_for(url),
            MASTER_KEY.hex(),
            NOW.isoformat(),
            str(batch_size),
            actor,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _state(store: Store) -> dict[str, Any]:
    """What a sweep changes, without the random ids anonymisation draws."""
    visible = set()
    restricted = set()
    for rt in store._record_tables():
        for record in store.query(rt.cls, include_restricted=True):
            visible.add((rt.name, record.id))
            if not store.query(rt.cls, id=record.id):
                restricted.add((rt.name, record.id))
    anonymised = {rt.name: anonymised_facts(store, rt.cls) for rt in store._record_tables()}
    # The key database names subjects by key reference: map them back to learner ids.
    names = {store.keyring.key_ref(f"L{i:05d}"): f"L{i:05d}" for i in range(1_000)}
    keys = collections.Counter(
        (names.get(e.subject, e.subject), e.scope, e.state.value)
        for e in store._keys.list_entries()
        if not e.subject.startswith("learnprivacy:")
    )
    return {"visible": visible, "restricted": restricted, "anonymised": anonymised, "keys": keys}


def _populated(url: str, size: int) -> Store:
    store = Store(url, keys=keys_for(url), keyring=Keyring.from_master_key(MASTER_KEY))
    store.add_all(population(size))
    return store


def _destructive_entries(url: str) -> int:
    engine = sa.create_engine(url, connect_args={"timeout": 60} if url.startswith("sqlite") else {})
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text("SELECT count(*) FROM lp_audit WHERE action IN ('erase', 'anonymise')")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _second_database(store_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database of the same kind as ``store_url``, for the uninterrupted run."""
    if store_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'reference.db'}"
    server = request.getfixturevalue("postgres_server")
    name = f"r_{uuid.uuid4().hex[:16]}"
    request.addfinalizer(lambda: server.drop_database(name))
    return str(server.create_database(name))


def test_sweep_killed_mid_run_then_rerun_ends_like_an_uninterrupted_one(
    store_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """SIGKILL a sweep process half-way, run the sweep again: same end state as one clean
    run, nothing erased that should stay, and the audit chain intact."""
    size = 120
    reference = _populated(_second_database(store_url, tmp_path, request), size)
    clean = reference.sweep(retention_schedule(), now=NOW, batch_size=4)
    expected = _state(reference)
    total = len(list(reference.audit.entries(actions=["erase", "anonymise"])))
    reference.close()

    store = _populated(store_url, size)
    store.close()
    process = _worker(store_url, 4, "crashing-worker")
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline:
        done = _destructive_entries(store_url)
        if done >= 3 or process.poll() is not None:
            break
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    done = _destructive_entries(store_url)
    assert 0 < done < total, "the kill must land in the middle of the sweep"

    store = Store(store_url, keys=keys_for(store_url), keyring=Keyring.from_master_key(MASTER_KEY))
    rerun = store.sweep(retention_schedule(), now=NOW, batch_size=4)
    assert 0 < rerun.erased + rerun.anonymised < clean.erased + clean.anonymised
    assert _state(store) == expected
    assert store.audit.verify()
    again = store.sweep(retention_schedule(), now=NOW, batch_size=4)
    assert again.changed == 0
    store.close()


def test_two_workers_never_process_the_same_rows(
    postgres_server: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two sweep processes on one PostgreSQL database split the rows (SKIP LOCKED): each row
    is erased or anonymised by exactly one of them, and the end state is a clean run's."""
    size = 150
    reference = _populated(_second_database("postgresql", tmp_path, request), size)
    reference.sweep(retention_schedule(), now=NOW, batch_size=3)
    expected = _state(reference)
    reference.close()

    name = f"c_{uuid.uuid4().hex[:16]}"
    url = postgres_server.create_database(name)
    request.addfinalizer(lambda: postgres_server.drop_database(name))
    _populated(url, size).close()
    workers = [_worker(url, 3, f"worker-{i}") for i in (1, 2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err

    store = Store(url, keys=keys_for(url), keyring=Keyring.from_master_key(MASTER_KEY))
    seen: collections.Counter[tuple[str, str]] = collections.Counter()
    actors: collections.Counter[str] = collections.Counter()
    for entry in store.audit.entries(actions=_DESTRUCTIVE):
        actors[entry.actor] += 1
        for item in entry.details.get("record_refs", ()):
            seen[entry.record_type, item] += 1
        for ref in entry.details.get("subject_refs", ()):
            seen[entry.record_type, ref] += 1
    assert seen
    assert max(seen.values()) == 1, "a row was processed twice"
    assert set(actors) == {"worker-1", "worker-2"}, "both workers must have done some work"
    assert _state(store) == expected
    assert store.audit.verify()
    store.close()
