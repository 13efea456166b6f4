"""Opening the store for CLI commands: the URL comes from --database or CELLRAIL_DATABASE_URL."""

from __future__ import annotations

from pathlib import Path

import typer
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url

from cellrail.kernel.errors import NotFound
from cellrail.settings import Settings
from cellrail.store.engine import create_store_engine, open_store

DatabaseOption = typer.Option(
    None, "--database", "-d", help="SQLAlchemy URL of the store (default: $CELLRAIL_DATABASE_URL or SQLite)"
)


def store_url(database: str | None) -> str:
    return database or Settings().database_url


def engine_for(database: str | None) -> Engine:
    """The store at ``database``, created or migrated to the current schema."""
    return open_store(store_url(database))


def existing_store(database: str | None) -> Engine:
    """The store at ``database`` as it is: commands that only read must not create an empty one by mistake."""
    url = store_url(database)
    parsed = make_url(url)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not Path(file).is_file():
        raise NotFound(f"no CellRail store at {url} (check the path, or create one with `cellrail db upgrade`)")
    engine = create_store_engine(url)
    if "ledger_events" not in inspect(engine).get_table_names():
        engine.dispose()
        raise NotFound(f"{url} is not a CellRail store (run `cellrail db upgrade` to create one)")
    return engine
