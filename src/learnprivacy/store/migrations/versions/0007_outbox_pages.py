"""The key outbox names a page of shreds in one row.

A sweep page that erases 5,000 learners used to write 5,000 outbox rows (each with an
entry in the ``subject_ref`` index), read them back after the commit and delete them.
This revision adds ``subject_refs``: a row whose ``subject_ref`` is empty names the key
references of one scope in it, as a JSON array, and stands for one row per reference
(``store/_keystore.py``). Rows naming one reference keep the old form.

Downgrading writes each such row back as one row per reference before the column goes,
so shreds owed when the downgrade runs stay owed.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from learnprivacy.store.migrations._ops import set_schema_version

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``lp_key_outbox.subject_refs`` (nullable; existing rows keep their form)."""
    op.add_column("lp_key_outbox", sa.Column("subject_refs", sa.Text(), nullable=True))
    set_schema_version(7)


def downgrade() -> None:
    """Back to version 6: every row naming many references becomes one row per reference."""
    set_schema_version(6)
    bind = op.get_bind()
    pages = bind.execute(
        sa.text(
            "SELECT id, scope, tombstone, subject_refs FROM lp_key_outbox "
            "WHERE subject_refs IS NOT NULL ORDER BY id"
        )
    ).all()
    insert = sa.text(
        "INSERT INTO lp_key_outbox (subject_ref, scope, tombstone) "
        "VALUES (:subject_ref, :scope, :tombstone)"
    ).bindparams(sa.bindparam("tombstone", type_=sa.Boolean()))
    for page_id, scope, tombstone, refs in pages:
        rows = [
            {"subject_ref": ref, "scope": scope, "tombstone": bool(tombstone)}
            for ref in json.loads(refs)
        ]
        if rows:
            bind.execute(insert, rows)
        bind.execute(sa.text("DELETE FROM lp_key_outbox WHERE id = :id"), {"id": page_id})
    op.drop_column("lp_key_outbox", "subject_refs")
