"""Paging a learner's records: the learner index of each record table also holds the id.

``Store.iter_records_of`` reads a learner's records a page at a time
(``learner_id = ? AND id > ? ORDER BY id LIMIT n``); with ``(learner_id, id)`` indexed,
each page is a range scan of the index instead of a sort of all the learner's rows.
The composite index also serves every lookup the single-column one served, so it
replaces it. Rebuilding the index reads each table once, during the upgrade.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from learnprivacy.store.migrations._ops import (
    LEARNER_TABLES,
    create_index,
    drop_index,
    set_schema_version,
)

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Replace each ``(learner_id)`` index with a ``(learner_id, id)`` one; rows are kept."""
    for table in LEARNER_TABLES:
        create_index(table, "learner_id", "id")
        drop_index(table, "learner_id")
    set_schema_version(3)


def downgrade() -> None:
    """Back to version 2: the single-column learner indexes."""
    set_schema_version(2)
    for table in LEARNER_TABLES:
        create_index(table, "learner_id")
        drop_index(table, "learner_id", "id")
