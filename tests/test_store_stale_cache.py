"""Another process's erasure is final for this one too.

Two stores on the same files stand for two worker processes, each with its own keyring
(its own cache of unwrapped keys). One erases a learner; the records database is then
restored from a copy taken before the erasure. The other worker, whose cache still holds
the erased learner's keys from before, must read nothing of that learner: the key
database, not its memory, says which keys are alive.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.errors import KeyShreddedError
from learnprivacy.records import Certificate, Learner
from learnprivacy.store import Store
from tests.store_fixtures import MASTER_KEY, NOW, learner, records_for

ERASED = "learner-erased-5Rk"
KEPT = "learner-kept-8Tm"
#: The tables of the built-in record types (the audit log and the key outbox stay as they are).
RECORD_TABLES = {
    f"lp_{name}" for name in ("learner", "progress", "certificate", "invoice", "consent", "funding")
} | {"lp_access_event"}


#: Each way of reading the erased learner back.
READS: dict[str, Callable[[Store], object]] = {
    "learner": lambda store: store.get(Learner, ERASED),
    "certificate": lambda store: store.get(Certificate, f"{ERASED}-CERT1"),
    "records_of": lambda store: store.records_of(ERASED),
    "iter_records_of": lambda store: list(store.iter_records_of(ERASED)),
}


def _restore_rows(live: Path, copy: Path) -> None:
    """Put back every row of ``copy`` that ``live`` no longer holds (a restore of the
    records from a backup, made while the other worker keeps running)."""
    with sqlite3.connect(live) as connection:
        connection.execute("ATTACH DATABASE ? AS old", (str(copy),))
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM old.sqlite_master WHERE type = 'table'"
            )
            if name in RECORD_TABLES
        ]
        assert len(tables) == len(RECORD_TABLES)
        for name in tables:
            connection.execute(f'INSERT OR IGNORE INTO main."{name}" SELECT * FROM old."{name}"')
        connection.commit()
        connection.execute("DETACH DATABASE old")


@pytest.mark.parametrize("read", sorted(READS))
def test_a_worker_with_the_erased_learners_keys_cached_reads_nothing_of_a_restored_copy(
    tmp_path: Path, read: str
) -> None:
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    copy = tmp_path / "copy.db"
    with (
        Store(url, keyring=Keyring.from_master_key(MASTER_KEY), clock=lambda: NOW) as worker,
        Store(url, keyring=Keyring.from_master_key(MASTER_KEY), clock=lambda: NOW) as other,
    ):
        # The worker writes the learners: their keys are now in its cache.
        worker.add_all([learner(ERASED), *records_for(ERASED), learner(KEPT), *records_for(KEPT)])
        assert worker.get(Learner, ERASED) is not None
        kept = worker.records_of(KEPT)
        worker.backup(str(copy))
        report = other.erase_subject(ERASED, now=NOW)
        assert report.erased > 0
        _restore_rows(tmp_path / "lms.db", copy)
        with pytest.raises(KeyShreddedError):
            READS[read](worker)
        # Every other learner reads as before.
        assert worker.records_of(KEPT) == kept
