"""Two sweep workers on PostgreSQL, one SIGKILLed half-way: the log reports nothing that
did not happen.

Each worker sweeps its part (``Store.sweep_parts``) in a process of its own, records and
keys both in PostgreSQL, appending to audit lanes. One worker kills itself at a chosen
step of its second page (tests/sweep_kill_worker.py); the other sweeps its whole part at
the same time. The databases are then read as they are, without opening a store:

* every learner a committed ``erase`` entry names is gone from the records, and every
  learner gone is named by one (nothing erased unreported, nothing reported unerased);
* every learner a committed ``shred`` entry names has no live key left, or is still owed
  in the outbox;
* the log, in lanes, verifies.

The first opening settles what is owed; a second sweep of the killed worker's part
finishes it; every expired learner is then gone, with no live key, once.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.store import Store
from tests import account
from tests.store_fixtures import MASTER_KEY, NOW, OWED_SQL, owed_refs, psql
from tests.sweep_kill_worker import SCHEDULE

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

ROOT = Path(__file__).resolve().parent.parent
EXPIRED, KEPT, BATCH = 60, 20, 10  # three pages of expired learners per worker


@pytest.fixture
def databases(postgres_server: TemporaryPostgres) -> Iterator[tuple[str, str]]:
    """(records, keys) database names of a closed store holding 60 expired learners
    (``GONE0000``...) among 80, its parts computed."""
    names = (f"pk_{uuid.uuid4().hex[:12]}", f"pk_{uuid.uuid4().hex[:12]}")
    urls = [postgres_server.create_database(name) for name in names]
    old = NOW - dt.timedelta(days=900)
    people = [account(f"GONE{n:04d}", last_activity_at=old) for n in range(EXPIRED)]
    people += [account(f"STAY{n:04d}", last_activity_at=NOW) for n in range(KEPT)]
    with _store(*urls) as store:
        store.add_all(people)
    yield names
    for name in names:
        postgres_server.drop_database(name)


def _store(records: str, keys: str) -> Store:
    return Store(records, keys=keys, keyring=Keyring.from_master_key(MASTER_KEY), clock=lambda: NOW)


def _worker(records: str, keys: str, part: Any, step: str, page: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.sweep_kill_worker",
            records,
            step,
            str(page),
            str(BATCH),
            keys,
            json.dumps(part.to_json()),
        ],
        cwd=ROOT,
        text=True,
    )


def _named(server: TemporaryPostgres, records: str, action: str) -> list[str]:
    """The subject references every committed ``action`` entry names, in log order."""
    found: list[str] = []
    for (details,) in psql(
        server,
        records,
        f"SELECT details FROM lp_audit WHERE action = '{action}' ORDER BY sequence",
    ):
        found += json.loads(details)["subject_refs"]
    return found


@pytest.mark.parametrize("step", ["committed", "outbox-deleted"])
def test_a_worker_killed_half_way_leaves_nothing_reported_that_did_not_happen(
    postgres_server: TemporaryPostgres, databases: tuple[str, str], step: str
) -> None:
    records, keys = databases
    urls = (postgres_server.url_for(records), postgres_server.url_for(keys))
    with _store(*urls) as store:
        parts = store.sweep_parts(2)
        ref = {f"GONE{n:04d}": store.audit.subject_ref(f"GONE{n:04d}") for n in range(EXPIRED)}
        key_ref = {learner_id: store.keyring.key_ref(learner_id) for learner_id in ref}
    killed = _worker(*urls, parts[0], step, 2)
    finished = _worker(*urls, parts[1], step, 0)  # never killed; settles nothing at opening
    assert killed.wait(120) == -9  # SIGKILL, half-way through its part
    assert finished.wait(120) == 3  # swept its whole part

    # As the databases are: no store opened, nothing settled.
    live = {row[0] for row in psql(postgres_server, records, "SELECT id FROM lp_learner")}
    erased_refs = _named(postgres_server, records, "erase")
    assert len(erased_refs) == len(set(erased_refs))  # each learner reported once
    by_ref = {r: learner_id for learner_id, r in ref.items()}
    erased = {by_ref[r] for r in erased_refs}
    gone = set(ref) - live
    assert erased == gone  # nothing reported that did not happen, nothing unreported
    assert 0 < len(gone) < EXPIRED  # the kill stopped one worker half-way
    assert {f"STAY{n:04d}" for n in range(KEPT)} <= live
    owed = owed_refs(psql(postgres_server, records, OWED_SQL))
    unshredded = {
        row[0]
        for row in psql(
            postgres_server, keys, "SELECT subject_ref FROM lpk_keys WHERE state != 'shredded'"
        )
    }
    for learner_id in {by_ref[r] for r in _named(postgres_server, records, "shred")}:
        assert key_ref[learner_id] not in unshredded or key_ref[learner_id] in owed, learner_id
    if step == "committed":
        assert owed  # the killed page's keys were still to destroy

    with _store(*urls) as store:
        assert store.audit.verify()
        assert not psql(postgres_server, records, "SELECT 1 FROM lp_key_outbox")
        report = store.sweep(SCHEDULE, now=NOW, batch_size=BATCH, compact=False, part=parts[0])
        assert report.erased == EXPIRED - len(gone)
        assert store.audit.verify()
    live = {row[0] for row in psql(postgres_server, records, "SELECT id FROM lp_learner")}
    assert live == {f"STAY{n:04d}" for n in range(KEPT)}
    erased_refs = _named(postgres_server, records, "erase")
    assert sorted(erased_refs) == sorted(ref.values())  # every expired learner, once
    unshredded = {
        row[0]
        for row in psql(
            postgres_server, keys, "SELECT subject_ref FROM lpk_keys WHERE state != 'shredded'"
        )
    }
    assert not unshredded & set(key_ref.values())
