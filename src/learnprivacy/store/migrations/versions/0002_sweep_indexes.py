"""Sweep support: date indexes for set-based retention sweeps, and restriction reasons.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from learnprivacy.store.migrations._ops import (
    RECORD_TABLES,
    create_index,
    drop_index,
    set_schema_version,
)

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# Every date a retention trigger can read: sweeps select rows with ``date <= cutoff``.
_DATE_INDEXES = (
    ("lp_learner", "contract_end_at"),
    ("lp_learner", "created_at"),
    ("lp_learner", "last_activity_at"),
    ("lp_progress", "recorded_at"),
    ("lp_certificate", "issued_at"),
    ("lp_invoice", "issued_at"),
    ("lp_consent", "expires_at"),
    ("lp_consent", "given_at"),
    ("lp_consent", "withdrawn_at"),
    ("lp_funding", "closed_at"),
    ("lp_funding", "opened_at"),
    ("lp_access_event", "at"),
)


def upgrade() -> None:
    """Add the restriction reason column and the date indexes; existing rows are kept."""
    for table in RECORD_TABLES:
        op.add_column(table, sa.Column("lp_restriction_reason", sa.Text(), nullable=True))
    for table, column in _DATE_INDEXES:
        create_index(table, column)
    set_schema_version(2)


def downgrade() -> None:
    """Back to version 1: restriction reasons are dropped, restrictions themselves kept."""
    set_schema_version(1)
    for table, column in _DATE_INDEXES:
        drop_index(table, column)
    for table in RECORD_TABLES:
        op.drop_column(table, "lp_restriction_reason")
