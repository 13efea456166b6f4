"""The bare sqlite3 baselines' database: the product's own table definitions, the product's pragmas, no layers."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

LEDGER_TABLES = ("ledger_logs", "ledger_events")


def product_schema(store: Path, tables: Sequence[str] = LEDGER_TABLES) -> list[str]:
    """The store's CREATE TABLE and CREATE INDEX statements for ``tables`` (no triggers), copied from
    ``sqlite_master``: a baseline that writes the same rows into the same tables, whatever the migrations made."""
    marks = ",".join("?" * len(tables))
    query = (
        f"SELECT sql FROM sqlite_master WHERE tbl_name IN ({marks}) AND type IN ('table', 'index') "
        "ORDER BY type DESC"  # tables before their indexes
    )
    with sqlite3.connect(store) as connection:
        return [sql for (sql,) in connection.execute(query, tuple(tables)) if sql]


def bare_connection(path: Path, schema: Sequence[str], logs: Sequence[tuple[int, str]] = ()) -> sqlite3.Connection:
    """A plain sqlite3 connection with the product's pragmas and tables (transactions issued explicitly), and
    the store's ``ledger_logs`` rows, which the events' foreign key needs (written here, outside any timing)."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    for statement in schema:
        connection.execute(statement)
    add_logs(connection, logs)
    return connection


def add_logs(connection: sqlite3.Connection, logs: Sequence[tuple[int, str]]) -> None:
    """Copy ``(id, origin)`` rows of the store's ``ledger_logs`` that the bare database does not have yet."""
    connection.executemany("INSERT OR IGNORE INTO ledger_logs (id, origin) VALUES (?, ?)", logs)
