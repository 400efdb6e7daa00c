"""How SQLite runs a sweep's statements: pages read on from the last id, rows named in a
list looked up by that list, never every live row walked through the ``lp_anonymised_at``
index for each page (which made a sweep's cost grow with the square of the table: each
of its pages read, and sorted, every live row again)."""

from __future__ import annotations

from pathlib import Path

from learnprivacy.crypto import Keyring
from learnprivacy.store import Store
from tests.store_fixtures import (
    NOW,
    population,
    retention_schedule,
    sqlite_plans,
    sqlite_statements,
)


def test_a_sweep_reads_its_pages_and_lists_without_walking_every_live_row(
    tmp_path: Path,
) -> None:
    """Every statement of a sweep that pages by id, or names its rows in a list, is
    planned through the primary key, the list's column or the rule's own dates: none
    through the ``lp_anonymised_at`` index."""
    store = Store(f"sqlite:///{tmp_path / 'lms.db'}", keyring=Keyring.generate())
    store.add_all(population(40))
    with sqlite_statements(store, "SELECT", "UPDATE", "DELETE") as statements:
        report = store.sweep(retention_schedule(), now=NOW, batch_size=7, compact=False)
    assert report.erased
    assert report.anonymised
    assert report.restricted
    paged = [s for s in statements if "json_each" in s or ".id >" in s]
    assert any("json_each" in s for s in paged)
    assert any(".id >" in s for s in paged)
    for statement, plan in sqlite_plans(store, paged).items():
        assert "lp_anonymised_at" not in plan, (statement, plan)
    store.close()
