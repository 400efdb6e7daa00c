"""A restriction, a lifted restriction or a rectification is reported only when its
``UPDATE`` really changed the rows.

Attack: something in the database silently skips the statement (here a SQLite trigger
that ignores every ``UPDATE`` of a table; on PostgreSQL a rule or a row-level security
policy does the same). Before, ``restrict`` returned the row count and wrote a
``restrict`` audit entry, an erasure reported the invoice "restricted (Art. 17(3)(b))",
a sweep counted a restricted record, and ``update`` wrote a ``rectify`` entry, while the
rows stayed as they were: the invoice was still read and processed as usual, the
inaccurate value still stored. Now the statement is checked after the fact and
``IntegrityError`` rolls the whole transaction back, audit entries and shreds included.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.errors import IntegrityError
from learnprivacy.records import Invoice, Learner, Progress
from learnprivacy.retention import Action, Hold, Period, RetentionRule, Schedule, Trigger
from learnprivacy.store import Store
from tests.store_fixtures import MASTER_KEY, NOW, learner, records_for

INVOICE = "L1-INV1"


def _ignore_updates(path: Path, table: str) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(
            f"CREATE TRIGGER keep_{table} BEFORE UPDATE ON {table} BEGIN SELECT RAISE(IGNORE); END"
        )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "lms.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    """Learner L1 with one record of each type."""
    with Store(
        f"sqlite:///{path}", keyring=Keyring.from_master_key(MASTER_KEY), clock=lambda: NOW
    ) as opened:
        opened.add_all([learner("L1"), *records_for("L1")])
        yield opened


def _refused(store: Store, act: Callable[[], object]) -> None:
    """``act`` raises ``IntegrityError`` and leaves no audit entry and no key shredded."""
    entries = len(store.audit)
    with pytest.raises(IntegrityError, match=r"Invoice|Progress"):
        act()
    assert len(store.audit) == entries
    assert store.audit.verify()
    assert store.get(Learner, "L1") is not None  # readable: nothing shredded


def test_a_restriction_the_database_skipped_is_not_reported(store: Store, path: Path) -> None:
    _ignore_updates(path, "lp_invoice")
    _refused(store, lambda: store.restrict(Invoice, INVOICE, reason="case-1", now=NOW))
    _refused(store, lambda: store.restrict(learner_id="L1", reason="case-1", now=NOW))
    # Not restricted: a plain read still hands it out for processing.
    assert store.get(Invoice, INVOICE) is not None


def test_a_lifted_restriction_the_database_skipped_is_not_reported(
    store: Store, path: Path
) -> None:
    assert store.restrict(Invoice, INVOICE, reason="case-1", now=NOW) == 1
    _ignore_updates(path, "lp_invoice")
    _refused(store, lambda: store.lift_restriction(Invoice, INVOICE, now=NOW))


def test_an_erasure_whose_restriction_was_skipped_is_not_reported(store: Store, path: Path) -> None:
    # The invoice is kept by law: the erasure restricts it (Art. 17(3)(b)).
    _ignore_updates(path, "lp_invoice")
    _refused(store, lambda: store.erase_subject("L1", now=NOW))
    assert store.get(Invoice, INVOICE) is not None


def test_ending_records_whose_restriction_was_skipped_is_not_reported(
    store: Store, path: Path
) -> None:
    _ignore_updates(path, "lp_progress")
    progress = store.get(Progress, "L1-P1")
    hold = Hold(reason="audit case 7", record_type=Progress)
    for how in (store.erase_records, store.anonymise_records):
        _refused(store, lambda how=how: how([progress], now=NOW, holds=[hold]))


def test_a_sweep_whose_restriction_was_skipped_is_not_reported(store: Store, path: Path) -> None:
    _ignore_updates(path, "lp_invoice")
    rule = RetentionRule(Period.parse("P1D"), Trigger.ISSUED, action=Action.RESTRICT)
    _refused(store, lambda: store.sweep(Schedule({Invoice: rule}), now=NOW))


def test_a_rectification_the_database_skipped_is_not_reported(store: Store, path: Path) -> None:
    progress = store.get(Progress, "L1-P1")
    assert progress is not None
    _ignore_updates(path, "lp_progress")
    _refused(store, lambda: store.update(attrs.evolve(progress, course_id="C-NEW"), now=NOW))
    assert store.get(Progress, "L1-P1") == progress


def test_restrictions_and_rectifications_that_ran_are_reported(store: Store) -> None:
    """The checks pass what the database did (and an already restricted row again)."""
    assert store.restrict(Invoice, INVOICE, reason="case-1", now=NOW) == 1
    assert store.restrict(learner_id="L1", reason="case-1", now=NOW) >= 1
    report = store.erase_subject("L1", now=NOW)
    assert report.restricted >= 1
    assert store.get(Invoice, INVOICE, include_restricted=True) is not None
    assert store.lift_restriction(Invoice, INVOICE, now=NOW) == 1
