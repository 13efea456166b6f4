"""Opening the store for CLI commands: the URL comes from --database or CELLRAIL_DATABASE_URL."""

from __future__ import annotations

import typer
from sqlalchemy import Engine

from cellrail.settings import Settings
from cellrail.store.engine import open_store

DatabaseOption = typer.Option(
    None, "--database", "-d", help="SQLAlchemy URL of the store (default: $CELLRAIL_DATABASE_URL or SQLite)"
)


def store_url(database: str | None) -> str:
    return database or Settings().database_url


def engine_for(database: str | None) -> Engine:
    """The store at ``database``, migrated to the current schema."""
    return open_store(store_url(database))
