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

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_LEARNER_TABLES = (
    "lp_progress",
    "lp_certificate",
    "lp_invoice",
    "lp_consent",
    "lp_funding",
    "lp_access_event",
)


def upgrade() -> None:
    """Replace each ``(learner_id)`` index with a ``(learner_id, id)`` one; rows are kept."""
    for table in _LEARNER_TABLES:
        op.create_index(f"ix_{table}_learner_id_id", table, ["learner_id", "id"])
        op.drop_index(f"ix_{table}_learner_id", table_name=table)
    op.execute(sa.text("UPDATE lp_meta SET value = '3' WHERE key = 'schema_version'"))


def downgrade() -> None:
    """Back to version 2: the single-column learner indexes."""
    op.execute(sa.text("UPDATE lp_meta SET value = '2' WHERE key = 'schema_version'"))
    for table in _LEARNER_TABLES:
        op.create_index(f"ix_{table}_learner_id", table, ["learner_id"])
        op.drop_index(f"ix_{table}_learner_id_id", table_name=table)
