"""Initial schema: metadata, wrapped keys, audit log and one table per built-in record type.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from learnprivacy.store._types import ExactDecimal
from learnprivacy.store.migrations._ops import RECORD_TABLES, create_index, create_record_table

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create every table of schema version 1."""
    op.create_table(
        "lp_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_lp_meta"),
    )
    op.create_table(
        "lp_keys",
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("master_key_id", sa.String(16), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "key_id", name="pk_lp_keys"),
    )
    create_index("lp_keys", "subject", "scope")
    op.create_index(
        "uq_lp_keys_active",
        "lp_keys",
        ["subject", "scope"],
        unique=True,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    )
    op.create_table(
        "lp_key_tombstones",
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("subject", "scope", name="pk_lp_key_tombstones"),
    )
    op.create_table(
        "lp_audit",
        sa.Column("sequence", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("record_type", sa.String(64), nullable=True),
        sa.Column("subject_ref", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name="pk_lp_audit"),
    )
    op.create_table(
        "lp_audit_head",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("seal", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lp_audit_head"),
    )
    create_record_table(
        "lp_learner",
        sa.Column("username_token", sa.Text(), nullable=True),
        sa.Column("username_bidx", sa.String(64), nullable=True),
        sa.Column("email_token", sa.Text(), nullable=True),
        sa.Column("email_bidx", sa.String(64), nullable=True),
        sa.Column("given_name_token", sa.Text(), nullable=True),
        sa.Column("family_name_token", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_activity_at", sa.DateTime(), nullable=True),
        sa.Column("organisation_id", sa.String(255), nullable=True),
        sa.Column("contract_end_at", sa.DateTime(), nullable=True),
        indexed=("email_bidx", "username_bidx"),
    )
    create_record_table(
        "lp_progress",
        sa.Column("course_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("score_raw", ExactDecimal(), nullable=True),
        sa.Column("score_min", ExactDecimal(), nullable=True),
        sa.Column("score_max", ExactDecimal(), nullable=True),
        sa.Column("score_kinds", sa.String(3), nullable=True),
        sa.Column("time_spent", sa.BigInteger(), nullable=True),
        sa.Column("activity_id", sa.String(255), nullable=True),
    )
    create_record_table(
        "lp_certificate",
        sa.Column("course_id", sa.String(255), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("verification_code_token", sa.Text(), nullable=True),
        sa.Column("verification_code_bidx", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        indexed=("verification_code_bidx",),
    )
    create_record_table(
        "lp_invoice",
        sa.Column("billing_name_token", sa.Text(), nullable=True),
        sa.Column("billing_address_token", sa.Text(), nullable=True),
        sa.Column("amount", ExactDecimal(), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("funder", sa.String(64), nullable=False),
    )
    create_record_table(
        "lp_consent",
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("given_at", sa.DateTime(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("proof_token", sa.Text(), nullable=True),
    )
    create_record_table(
        "lp_funding",
        sa.Column("funder", sa.String(64), nullable=False),
        sa.Column("dossier_reference_token", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("amount", ExactDecimal(), nullable=True),
    )
    create_record_table(
        "lp_access_event",
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("ip_token", sa.Text(), nullable=True),
        sa.Column("user_agent_token", sa.Text(), nullable=True),
    )
    op.execute(sa.text("INSERT INTO lp_meta (key, value) VALUES ('schema_version', '1')"))


def downgrade() -> None:
    """Drop every table (and with it every record): only for an empty store."""
    for name in (*RECORD_TABLES, "lp_audit_head", "lp_audit", "lp_key_tombstones"):
        op.drop_table(name)
    op.drop_table("lp_keys")
    op.drop_table("lp_meta")
