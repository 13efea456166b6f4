"""Alembic environment: migrations run on the connection CellRail hands over (see ``store.engine.migrate``)."""

from __future__ import annotations

from alembic import context

from cellrail.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
