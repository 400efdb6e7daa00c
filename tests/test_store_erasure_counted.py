"""An erasure, anonymisation or sweep reports only rows its statements really changed.

Attack: something in the database silently skips a row (here a SQLite trigger that
ignores the statement for that row; on PostgreSQL a rule or a row-level security policy
does the same). The rows are read and locked in the same transaction, so every row
planned must be changed: a statement that changed fewer raises ``IntegrityError`` and
the transaction rolls back, audit entries and shreds included. Before, the erasure
reported the row erased (and shredded the learner's keys) while it stayed in the table
with the learner's id in clear.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.errors import IntegrityError
from learnprivacy.records import Progress
from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger
from learnprivacy.store import Store
from tests.store_fixtures import MASTER_KEY, NOW, learner, records_for


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Learner L1 with one record of each type; every statement on lp_progress's rows is
    ignored by a trigger (its rows can be neither deleted nor changed)."""
    path = tmp_path / "lms.db"
    with Store(
        f"sqlite:///{path}", keyring=Keyring.from_master_key(MASTER_KEY), clock=lambda: NOW
    ) as opened:
        opened.add_all([learner("L1"), *records_for("L1")])
        with sqlite3.connect(path) as connection:
            for event in ("DELETE", "UPDATE"):
                connection.execute(
                    f"CREATE TRIGGER keep_{event.lower()} BEFORE {event} ON lp_progress "
                    "BEGIN SELECT RAISE(IGNORE); END"
                )
        yield opened


def _unchanged(store: Store, entries: int) -> None:
    """Nothing was reported: no new audit entry, the learner still readable."""
    assert len(store.audit) == entries
    assert store.audit.verify()
    assert store.get(Progress, "L1-P1") is not None
    assert store.get(type(learner("L1")), "L1") is not None


def test_an_erasure_whose_delete_skipped_a_row_is_not_reported(store: Store) -> None:
    entries = len(store.audit)
    with pytest.raises(IntegrityError, match="Progress"):
        store.erase_subject("L1", now=NOW)
    _unchanged(store, entries)


@pytest.mark.parametrize("how", ["erase_records", "anonymise_records"])
def test_ending_records_a_statement_skipped_is_not_reported(store: Store, how: str) -> None:
    entries = len(store.audit)
    progress = store.get(Progress, "L1-P1")
    with pytest.raises(IntegrityError, match="Progress"):
        getattr(store, how)([progress], now=NOW, reason="test")
    _unchanged(store, entries)


def test_a_sweep_whose_delete_skipped_a_row_is_not_reported(store: Store) -> None:
    entries = len(store.audit)
    schedule = Schedule({Progress: RetentionRule(Period.parse("P1D"), Trigger.CREATED)})
    with pytest.raises(IntegrityError, match="Progress"):
        store.sweep(schedule, now=NOW)
    _unchanged(store, entries)
