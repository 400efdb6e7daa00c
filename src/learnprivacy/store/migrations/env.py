"""Alembic environment of the store: migrations run on the connection the store passes in.

The store calls Alembic programmatically (``learnprivacy.store._migrate``) inside its own
transaction; there is no ``alembic.ini`` and no offline mode.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
