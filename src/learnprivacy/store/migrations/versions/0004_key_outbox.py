"""Keys apart from data: the key outbox; wrapped keys move to a key database of their own.

The records database keeps no wrapped data key any more (a backup of it plus the master
key must not read an erased learner again). This revision adds ``lp_key_outbox``, where
an erasure records in its own transaction the keys to destroy in the key database.
``lp_keys`` and ``lp_key_tombstones`` are moved out and dropped when the store opens
with its keyring (moving needs the master key: each key is rewrapped under its key
reference), see ``store/_open.py``.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from learnprivacy.store.migrations._ops import create_index, drop_index, set_schema_version

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``lp_key_outbox``."""
    op.create_table(
        "lp_key_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("subject_ref", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("tombstone", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lp_key_outbox"),
    )
    create_index("lp_key_outbox", "subject_ref")
    set_schema_version(4)


def downgrade() -> None:
    """Back to version 3: the outbox goes (keys stay in their key database)."""
    set_schema_version(3)
    drop_index("lp_key_outbox", "subject_ref")
    op.drop_table("lp_key_outbox")
