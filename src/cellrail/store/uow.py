"""The unit of work: one connection, one transaction, all repositories on it."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine

from cellrail.store.engine import WRITE
from cellrail.store.landscape_repository import SqlLandscape
from cellrail.store.repositories import (
    SqlCheckpoints,
    SqlCounters,
    SqlLedger,
    SqlNetworks,
    SqlOrders,
    SqlPatients,
    SqlSlots,
    SqlUsers,
)


class SqlUnitOfWork:
    """``with SqlUnitOfWork(engine) as uow: ...; uow.commit()`` — leaving without commit rolls back."""

    def __init__(self, engine: Engine, *, write: bool = True) -> None:
        self.engine = engine
        self.write = write
        self._connection: Connection | None = None

    def __enter__(self) -> SqlUnitOfWork:
        # The transaction begins with the first statement (on SQLite as BEGIN IMMEDIATE for writers).
        connection = self.engine.connect().execution_options(**{WRITE: self.write})
        self._connection = connection
        self.networks = SqlNetworks(connection)
        self.orders = SqlOrders(connection)
        self.patients = SqlPatients(connection)
        self.slots = SqlSlots(connection)
        self.ledger = SqlLedger(connection)
        self.counters = SqlCounters(connection)
        self.checkpoints = SqlCheckpoints(connection)
        self.users = SqlUsers(connection)
        self.landscape = SqlLandscape(connection)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        assert self._connection is not None
        try:
            self.rollback()
        finally:
            self._connection.close()
            self._connection = None

    def commit(self) -> None:
        assert self._connection is not None
        self._connection.commit()

    def rollback(self) -> None:
        assert self._connection is not None
        self._connection.rollback()
