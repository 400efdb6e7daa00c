"""The integration's own tables, kept in the application's database next to its models.

- ``lp_audit`` and ``lp_audit_head``: the hash-chained audit log (the store's format), so
  entries commit in the same transaction as the change they record;
- ``lp_row_states``: rows restricted (GDPR Art. 18) or anonymised, by table and key;
- ``lp_pending_shreds``: keys to shred once the transaction that removed their last
  rows has committed; what a crash leaves here is shredded on the next call;
- ``lp_formats``: the format each of these tables is written in, marked explicitly
  (``lp_row_states`` by reference once converted), never guessed from a value's shape;
- ``lp_stale_statistics``: on PostgreSQL, the (table, subject column) pairs whose planner
  statistics sampled a learner id an erasure or sweep removed, until they are refreshed
  after the commit (see ``_statistics``);
- ``lp_audit_outbox`` instead of the audit tables when the audit log lives in a database
  the caller names (``LearnPrivacy(..., audit=)``, see ``_auditdb``).

They are added to the application's ``MetaData`` when :class:`LearnPrivacy` binds, so
``metadata.create_all`` and Alembic's autogenerate see them; they are also created on
first use when missing. No key ever lives here: keys have a database of their own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
)

from learnprivacy.store._tables import AUDIT, AUDIT_HEAD

__all__ = ["FORMATS", "ROW_STATES", "SideTables", "side_tables"]

ROW_STATES = "lp_row_states"
PENDING_SHREDS = "lp_pending_shreds"
FORMATS = "lp_formats"
STALE_STATISTICS = "lp_stale_statistics"
RESTRICTED = "restricted"
ANONYMISED = "anonymised"


class SideTables:
    """The integration's tables, as they sit in one ``MetaData``."""

    __slots__ = ("audit", "audit_head", "formats", "outbox", "pending", "states", "statistics")

    def __init__(self, metadata: MetaData, *, audit_here: bool = True) -> None:
        # The audit log lives here, or in a database of its own fed by an outbox here.
        self.audit: Table | None = _copy(AUDIT, metadata) if audit_here else None
        self.audit_head: Table | None = _copy(AUDIT_HEAD, metadata) if audit_here else None
        self.outbox: Table | None = None
        if not audit_here:
            from learnprivacy.sqlalchemy._auditdb import outbox_table

            self.outbox = outbox_table(metadata)
        self.states = _declared(
            metadata,
            ROW_STATES,
            Column("table_name", String(128), primary_key=True),
            Column("row_key", String(255), primary_key=True),
            Column("state", String(16), nullable=False),
            Column("reason", Text, nullable=False),
            Column("at", DateTime, nullable=False),
        )
        self.pending = _declared(
            metadata,
            PENDING_SHREDS,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("subject", String(255), nullable=False),
            Column("scope", String(64), nullable=False),
            Column("mode", String(16), nullable=False),
            Column("at", DateTime, nullable=False),
        )
        self.formats = _declared(
            metadata,
            FORMATS,
            Column("name", String(64), primary_key=True),
            Column("format", String(64), nullable=False),
        )
        self.statistics = _declared(
            metadata,
            STALE_STATISTICS,
            Column("table_name", String(128), primary_key=True),
            Column("column_name", String(128), nullable=False),
        )

    @property
    def all(self) -> list[Table]:
        """Every table, in creation order."""
        found = [
            self.audit,
            self.audit_head,
            self.outbox,
            self.states,
            self.pending,
            self.formats,
            self.statistics,
        ]
        return [t for t in found if t is not None]

    def ensure(self, connection: Connection) -> None:
        """Create the tables missing in ``connection``'s database (in its transaction)."""
        names = set(inspect(connection).get_table_names())
        missing = [t for t in self.all if t.name not in names]
        for table in missing:
            table.create(connection, checkfirst=True)


def _declared(metadata: MetaData, name: str, *columns: Column[Any]) -> Table:
    """``metadata``'s table ``name``, declared with ``columns`` unless it already is."""
    existing = metadata.tables.get(name)
    return existing if existing is not None else Table(name, metadata, *columns)


def _copy(table: Table, metadata: MetaData) -> Table:
    existing = metadata.tables.get(table.name)
    if existing is not None:
        return existing
    return table.to_metadata(metadata)


def side_tables(metadata: MetaData, *, audit_here: bool = True) -> SideTables:
    """The integration's tables in ``metadata`` (added if absent); without the audit
    log's when it lives in another database (``lp_audit_outbox`` instead)."""
    return SideTables(metadata, audit_here=audit_here)
