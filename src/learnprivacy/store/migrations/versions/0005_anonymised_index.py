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

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_RECORD_TABLES = (
    "lp_learner",
    "lp_progress",
    "lp_certificate",
    "lp_invoice",
    "lp_consent",
    "lp_funding",
    "lp_access_event",
)


def upgrade() -> None:
    """Index ``lp_anonymised_at`` on every record table; rows are kept."""
    for table in _RECORD_TABLES:
        op.create_index(f"ix_{table}_lp_anonymised_at", table, ["lp_anonymised_at"])
    op.execute(sa.text("UPDATE lp_meta SET value = '5' WHERE key = 'schema_version'"))


def downgrade() -> None:
    """Back to version 4: the indexes go, the anonymised rows stay."""
    op.execute(sa.text("UPDATE lp_meta SET value = '4' WHERE key = 'schema_version'"))
    for table in _RECORD_TABLES:
        op.drop_index(f"ix_{table}_lp_anonymised_at", table_name=table)
