"""Alembic environment of the store: migrations run on the connection the store passes in.

The store calls Alembic programmatically (``learnprivacy.store._migrate``) inside its own
transaction; there is no ``alembic.ini`` and no offline mode. The revision is kept in
the store's own version table, so that an LMS's Alembic keeps ``alembic_version``.
"""

from __future__ import annotations

from alembic import context

from learnprivacy.store._migrate import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    transaction_per_migration=False,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
