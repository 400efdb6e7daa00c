"""The operations the store's migration scripts share.

A released revision must keep producing the same schema, so what is here is history too:
each helper emits exactly the operations the scripts once wrote out by hand, and changes
to the store's current tables never reach it (a new need gets a new helper or is written
in its revision). ``test_store_migrations`` holds the migrated schema equal to the
metadata the store declares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import op

if TYPE_CHECKING:
    from collections.abc import Iterable

#: The table of each built-in record type, as revision 0001 created them.
RECORD_TABLES = (
    "lp_learner",
    "lp_progress",
    "lp_certificate",
    "lp_invoice",
    "lp_consent",
    "lp_funding",
    "lp_access_event",
)
#: The record tables with a ``learner_id`` column (all but the learners' own).
LEARNER_TABLES = RECORD_TABLES[1:]


def set_schema_version(version: int) -> None:
    """Record ``version`` as the schema version in ``lp_meta`` (revision ``000N`` writes ``N``)."""
    update = sa.text("UPDATE lp_meta SET value = :value WHERE key = 'schema_version'")
    op.execute(update.bindparams(value=str(version)))


def index_name(table: str, columns: Iterable[str]) -> str:
    """The store's name for the index of ``table`` on ``columns``: ``ix_<table>_<columns>``."""
    return "_".join(("ix", table, *columns))


def create_index(table: str, *columns: str) -> None:
    """Index ``columns`` of ``table`` under the store's name for it."""
    op.create_index(index_name(table, columns), table, list(columns))


def drop_index(table: str, *columns: str) -> None:
    """Drop the index :func:`create_index` made on ``columns`` of ``table``."""
    op.drop_index(index_name(table, columns), table_name=table)


def create_record_table(name: str, *columns: sa.Column[Any], indexed: Iterable[str] = ()) -> None:
    """Create the table of a record type: ``id``, ``learner_id`` (except for learners),
    ``columns``, then ``basis`` and the restriction and anonymisation stamps. The learner
    column and each of ``indexed`` get an index of their own."""
    learner = name in LEARNER_TABLES
    op.create_table(
        name,
        sa.Column("id", sa.String(255), nullable=False),
        *([sa.Column("learner_id", sa.String(255), nullable=False)] if learner else []),
        *columns,
        sa.Column("basis", sa.String(64), nullable=False),
        sa.Column("lp_restricted_at", sa.DateTime(), nullable=True),
        sa.Column("lp_anonymised_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )
    for column in (*(["learner_id"] if learner else []), *indexed):
        create_index(name, column)
