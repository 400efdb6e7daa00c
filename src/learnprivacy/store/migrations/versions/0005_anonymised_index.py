"""The anonymisation re-check: an index on when each row was anonymised.

After a consent withdrawal (and ``Store.verify_anonymised(since=...)``) the store reads
back the rows of the affected record types anonymised since the plan
(``lp_anonymised_at >= since``). Without an index that read scanned every row of those
tables, personal or not, each time; with ``(lp_anonymised_at)`` indexed it reads only the
rows anonymised since then. Building the index reads each table once, during the upgrade.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from learnprivacy.store.migrations._ops import (
    RECORD_TABLES,
    create_index,
    drop_index,
    set_schema_version,
)

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Index ``lp_anonymised_at`` on every record table; rows are kept."""
    for table in RECORD_TABLES:
        create_index(table, "lp_anonymised_at")
    set_schema_version(5)


def downgrade() -> None:
    """Back to version 4: the indexes go, the anonymised rows stay."""
    set_schema_version(4)
    for table in RECORD_TABLES:
        drop_index(table, "lp_anonymised_at")
