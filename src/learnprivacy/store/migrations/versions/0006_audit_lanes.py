"""Audit lanes: a sequence numbers a PostgreSQL store's audit entries.

Concurrent writers append to lanes of the audit log instead of queueing on its one head
row (``store/_audit.py``); their entries take numbers from ``lp_audit_sequence``, which
starts after the log's last entry. Lane heads are rows of ``lp_audit_head`` (``id`` 2
and up) and entries stay in ``lp_audit``: neither table changes. SQLite stores keep one
lane, numbered as before: there the revision only records the schema version.

Downgrading drops the sequence. A log that was written in several lanes, or with gaps
in its numbers, keeps every entry and head, but the previous version verifies only a
single gap-free chain: downgrade before writing with several workers, or keep this
version to verify such a log.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

from learnprivacy.store.migrations._ops import set_schema_version

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``lp_audit_sequence`` (PostgreSQL), after the log's last entry."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE lp_audit_sequence")
        op.execute(
            "SELECT setval('lp_audit_sequence', max(sequence)) FROM lp_audit "
            "HAVING max(sequence) IS NOT NULL"
        )
    set_schema_version(6)


def downgrade() -> None:
    """Back to version 5: the sequence goes, every entry and head stays."""
    set_schema_version(5)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE lp_audit_sequence")
