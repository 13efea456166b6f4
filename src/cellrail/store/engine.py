"""Engines for SQLite (the embedded default) and PostgreSQL, and bringing a store's schema up to date.

SQLite runs in WAL mode with ``synchronous=FULL``: a commit that returned is on disk, so every acknowledged
event survives a crash or power loss. Write transactions start with ``BEGIN IMMEDIATE`` so concurrent writers
queue for the lock instead of failing half-way through. Within one process, the writers of an engine first queue
on a lock of the engine's own, held until their transaction ends: the next writer then starts as soon as the
previous one commits, instead of polling in SQLite's busy handler (which sleeps up to 100 ms between tries, so
under a steady stream of writers an unlucky one waited seconds). SQLite's lock still decides between processes.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, ClassVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")
WRITE = "cellrail_write"


class WriterQueueConnection(sqlite3.Connection):
    """A SQLite connection that holds its engine's ``writer`` lock from ``BEGIN IMMEDIATE`` until its transaction
    ends (commit, rollback or close, whichever thread ends it)."""

    writer: ClassVar[threading.Lock]
    holds_writer = False

    def take_writer(self) -> None:
        if not self.writer.acquire(timeout=60):  # as long as SQLite's own busy timeout
            raise sqlite3.OperationalError("database is locked (another writer of this process held it for 60 s)")
        self.holds_writer = True

    def give_writer(self) -> None:
        if self.holds_writer:
            self.holds_writer = False
            self.writer.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.give_writer()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_writer()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_writer()


def create_store_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    queued = type("EngineWriterConnection", (WriterQueueConnection,), {"writer": threading.Lock()})
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False, "factory": queued})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's begin hook below issues BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE, True)
        if not write:
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = connection.connection.dbapi_connection
        if isinstance(dbapi_connection, WriterQueueConnection):
            dbapi_connection.take_writer()
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if isinstance(dbapi_connection, WriterQueueConnection):
                dbapi_connection.give_writer()
            raise

    return engine


def migrate(engine: Engine) -> None:
    """Apply every Alembic migration not yet applied (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_store(url: str) -> Engine:
    engine = create_store_engine(url)
    migrate(engine)
    return engine
