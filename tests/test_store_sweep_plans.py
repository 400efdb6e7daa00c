"""How SQLite runs a sweep's statements: pages read on from the last id, rows named in a
list looked up by that list, never every live row walked through the ``lp_anonymised_at``
index for each page (which made a sweep's cost grow with the square of the table: each
of its pages read, and sorted, every live row again)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from learnprivacy.crypto import Keyring
from learnprivacy.store import Store
from tests.store_fixtures import NOW, population, retention_schedule


def _statements(store: Store) -> list[str]:
    """Every SELECT, UPDATE and DELETE that SQLite runs for a sweep of ``store``, with
    its parameters in place."""
    seen: list[str] = []

    def capture(statement: str) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            seen.append(statement)

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(capture)

    store.engine.dispose()
    sa.event.listen(store.engine, "connect", trace)
    try:
        report = store.sweep(retention_schedule(), now=NOW, batch_size=7, compact=False)
    finally:
        sa.event.remove(store.engine, "connect", trace)
        store.engine.dispose()
    assert report.erased and report.anonymised and report.restricted
    return seen


def test_a_sweep_reads_its_pages_and_lists_without_walking_every_live_row(
    tmp_path: Path,
) -> None:
    """Every statement of a sweep that pages by id, or names its rows in a list, is
    planned through the primary key, the list's column or the rule's own dates: none
    through the ``lp_anonymised_at`` index."""
    path = tmp_path / "lms.db"
    store = Store(f"sqlite:///{path}", keyring=Keyring.generate())
    store.add_all(population(40))
    statements = _statements(store)
    paged = [s for s in statements if "json_each" in s or ".id >" in s]
    assert any("json_each" in s for s in paged) and any(".id >" in s for s in paged)
    plans = sqlite_plans(path, paged)
    for statement, plan in plans.items():
        assert "lp_anonymised_at" not in plan, (statement, plan)
    store.close()


def sqlite_plans(path: Path, statements: list[str]) -> dict[str, str]:
    """SQLite's plan of each statement, as one line."""
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        return {
            statement: " | ".join(
                str(row[-1]) for row in connection.execute(f"EXPLAIN QUERY PLAN {statement}")
            )
            for statement in dict.fromkeys(statements)
        }
    finally:
        connection.close()
