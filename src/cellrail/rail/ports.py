"""What the rail's use cases need from a store, as protocols: the services never import the database."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Any, Protocol

from cellrail.rail.access_control import Role
from cellrail.rail.booking import Resource, SlotSpec
from cellrail.rail.ledger import CustodyEvent, LedgerEntry, StoredRow
from cellrail.rail.network import Network
from cellrail.rail.orders import Order, OrderState


@dataclass(frozen=True)
class Slot:
    id: int
    node: str
    resource: Resource
    platform: str
    unit: int
    starts: datetime
    ends: datetime
    order: str | None


@dataclass(frozen=True)
class PatientRecord:
    """Patient identity, kept apart from orders and never written to the ledger."""

    key: str
    treatment_site: str
    mrn: str
    full_name: str
    birth_date: date


@dataclass(frozen=True)
class UserRecord:
    username: str
    full_name: str
    node: str
    roles: frozenset[Role]
    password_hash: str
    active: bool = True


# (log, level, index, hash) of one perfect subtree of a log's Merkle tree.
TreeNode = tuple[str, int, int, bytes]


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint of a log: its size, root and the C2SP signed note as issued."""

    log: str
    size: int
    root: bytes
    note: str
    signed_at: datetime


class NetworkRepository(Protocol):
    def current(self) -> Network | None: ...
    def save(self, network_id: str, text: str, registered_at: datetime) -> None: ...


class OrderRepository(Protocol):
    def add(self, order: Order, created_at: datetime) -> None: ...
    def get(self, coi: str, *, for_update: bool = False) -> Order | None: ...
    def save(self, order: Order) -> None: ...
    def visible(
        self, nodes: Iterable[str] | None, state: OrderState | None, limit: int, offset: int
    ) -> list[Order]: ...


class PatientRepository(Protocol):
    def add(self, patient: PatientRecord) -> None: ...
    def get(self, key: str) -> PatientRecord | None: ...


class SlotRepository(Protocol):
    def add_many(self, specs: Sequence[SlotSpec]) -> int: ...
    def free(
        self, node: str, resource: Resource, starts_from: datetime, until: datetime | None, limit: int, offset: int = 0
    ) -> list[Slot]: ...
    def claim(self, slot_id: int, order: str) -> bool: ...
    def release(self, slot_id: int, order: str) -> None: ...
    def held_by(self, order: str) -> list[Slot]: ...


class LedgerRepository(Protocol):
    def head_for_append(self, log: str) -> tuple[int, bytes]: ...
    def append(
        self, entries: Sequence[LedgerEntry], events: Sequence[CustodyEvent], nodes: Sequence[TreeNode]
    ) -> None: ...
    def subtrees(self, log: str, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]: ...
    def for_order(self, coi: str) -> list[dict[str, Any]]: ...
    def entry(self, log: str, seq: int) -> bytes | None: ...
    def entries(self, log: str, seqs: Sequence[int]) -> dict[int, bytes]: ...
    def rows(self, log: str) -> Iterator[StoredRow]: ...
    def logs(self) -> dict[str, int]: ...
    def size(self) -> int: ...


class CheckpointRepository(Protocol):
    def latest(self, log: str) -> StoredCheckpoint | None: ...
    def at(self, log: str, size: int) -> StoredCheckpoint | None: ...
    def history(self, log: str) -> list[StoredCheckpoint]: ...
    def logs(self) -> list[str]: ...
    def add(self, checkpoint: StoredCheckpoint) -> None: ...
    def witnessed(self, log: str) -> StoredCheckpoint | None: ...
    def add_witnessed(self, checkpoint: StoredCheckpoint) -> None: ...
    def lock_witness(self, log: str) -> None: ...


class CounterRepository(Protocol):
    def take(self, name: str) -> int: ...


class UserRepository(Protocol):
    def add(self, user: UserRecord) -> None: ...
    def get(self, username: str) -> UserRecord | None: ...
    def add_token(self, token_hash: str, username: str, expires_at: datetime) -> None: ...
    def by_token(self, token_hash: str, now: datetime) -> UserRecord | None: ...


class UnitOfWorkFactory(Protocol):
    """Opens units of work; for use cases that must not hold a write transaction through slow steps."""

    def __call__(self, *, write: bool = True) -> UnitOfWork: ...


class UnitOfWork(Protocol):
    """One transaction: everything done through it commits together or not at all."""

    @property
    def networks(self) -> NetworkRepository: ...
    @property
    def orders(self) -> OrderRepository: ...
    @property
    def patients(self) -> PatientRepository: ...
    @property
    def slots(self) -> SlotRepository: ...
    @property
    def ledger(self) -> LedgerRepository: ...
    @property
    def counters(self) -> CounterRepository: ...
    @property
    def checkpoints(self) -> CheckpointRepository: ...
    @property
    def users(self) -> UserRepository: ...

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
