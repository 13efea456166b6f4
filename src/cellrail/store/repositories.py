"""Repositories: the rail's protocols (``rail.ports``) implemented with SQLAlchemy Core on one connection."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, Select, bindparam, func, insert, select, text, union_all, update
from sqlalchemy.exc import IntegrityError

from cellrail.rail.access_control import Role
from cellrail.rail.booking import Resource, SlotSpec
from cellrail.rail.ledger import GENESIS, CustodyEvent, LedgerEntry, StoredRow
from cellrail.rail.network import Network, load_network
from cellrail.rail.orders import Order, OrderState
from cellrail.rail.ports import PatientRecord, Slot, StoredCheckpoint, TreeNode, UserRecord
from cellrail.store import tables as t
from cellrail.transparency.verifier import leaf_hash


@lru_cache(maxsize=8)
def _parsed_network(source: str) -> Network:
    return load_network(source, "<stored network>")


class SqlNetworks:
    def __init__(self, connection: Connection) -> None:
        self.c = connection

    def current(self) -> Network | None:
        source = self.c.execute(select(t.networks.c.source).order_by(t.networks.c.id.desc()).limit(1)).scalar()
        return None if source is None else _parsed_network(source)

    def save(self, network_id: str, text: str, registered_at: datetime) -> None:
        self.c.execute(insert(t.networks).values(network_id=network_id, source=text, registered_at=registered_at))


def _order(row: Any) -> Order:
    return Order(
        coi=row.coi,
        patient_key=row.patient_key,
        treatment_site=row.treatment_site,
        state=OrderState(row.state),
        manufacturing_node=row.manufacturing_node,
        collection_din=row.collection_din,
        product_din=row.product_din,
        manufacturing_attempts=row.manufacturing_attempts,
    )


def _order_values(order: Order) -> dict[str, Any]:
    return {
        "patient_key": order.patient_key,
        "treatment_site": order.treatment_site,
        "state": order.state.value,
        "manufacturing_node": order.manufacturing_node,
        "collection_din": order.collection_din,
        "product_din": order.product_din,
        "manufacturing_attempts": order.manufacturing_attempts,
    }


class SqlOrders:
    def __init__(self, connection: Connection) -> None:
        self.c = connection

    def add(self, order: Order, created_at: datetime) -> None:
        self.c.execute(insert(t.orders).values(coi=order.coi, created_at=created_at, **_order_values(order)))

    def get(self, coi: str, *, for_update: bool = False) -> Order | None:
        query = select(t.orders).where(t.orders.c.coi == coi)
        if for_update:
            query = query.with_for_update()
        row = self.c.execute(query).first()
        return None if row is None else _order(row)

    def save(self, order: Order) -> None:
        self.c.execute(update(t.orders).where(t.orders.c.coi == order.coi).values(**_order_values(order)))

    def visible(self, nodes: Iterable[str] | None, state: OrderState | None, limit: int, offset: int) -> list[Order]:
        query = select(t.orders).order_by(t.orders.c.created_at, t.orders.c.coi).limit(limit).offset(offset)
        if nodes is not None:
            node_list = list(nodes)
            query = query.where(t.orders.c.treatment_site.in_(node_list) | t.orders.c.manufacturing_node.in_(node_list))
        if state is not None:
            query = query.where(t.orders.c.state == state.value)
        return [_order(row) for row in self.c.execute(query)]


class SqlPatients:
    def __init__(self, connection: Connection) -> None:
        self.c = connection

    def add(self, patient: PatientRecord) -> None:
        self.c.execute(insert(t.patients).values(**patient.__dict__))

    def get(self, key: str) -> PatientRecord | None:
        row = self.c.execute(select(t.patients).where(t.patients.c.key == key)).first()
        return None if row is None else PatientRecord(**row._mapping)


def _slot(row: Any) -> Slot:
    return Slot(row.id, row.node, Resource(row.resource), row.platform, row.unit, row.starts, row.ends, row.order_coi)


class SqlSlots:
    def __init__(self, connection: Connection) -> None:
        self.c = connection

    def add_many(self, specs: Sequence[SlotSpec]) -> int:
        """Insert slots that do not exist yet; opening the same window twice adds nothing."""
        added = 0
        for spec in specs:
            exists = self.c.execute(
                select(t.slots.c.id).where(
                    t.slots.c.node == spec.node,
                    t.slots.c.resource == spec.resource.value,
                    t.slots.c.platform == spec.platform,
                    t.slots.c.unit == spec.unit,
                    t.slots.c.starts == spec.starts,
                )
            ).first()
            if exists is None:
                values = dict(spec.__dict__, resource=spec.resource.value)
                self.c.execute(insert(t.slots).values(**values))
                added += 1
        return added

    def free(
        self, node: str, resource: Resource, starts_from: datetime, until: datetime | None, limit: int, offset: int = 0
    ) -> list[Slot]:
        query = (
            select(t.slots)
            .where(
                t.slots.c.node == node,
                t.slots.c.resource == resource.value,
                t.slots.c.starts >= starts_from,
                t.slots.c.order_coi.is_(None),
            )
            .order_by(t.slots.c.starts, t.slots.c.id)
            .limit(limit)
            .offset(offset)
        )
        if until is not None:
            query = query.where(t.slots.c.starts <= until)
        return [_slot(row) for row in self.c.execute(query)]

    def claim(self, slot_id: int, order: str) -> bool:
        """Compare-and-set: take the slot only if it is still free. Safe under concurrency on both engines."""
        result = self.c.execute(
            update(t.slots).where(t.slots.c.id == slot_id, t.slots.c.order_coi.is_(None)).values(order_coi=order)
        )
        return result.rowcount == 1

    def release(self, slot_id: int, order: str) -> None:
        self.c.execute(
            update(t.slots).where(t.slots.c.id == slot_id, t.slots.c.order_coi == order).values(order_coi=None)
        )

    def held_by(self, order: str) -> list[Slot]:
        query = select(t.slots).where(t.slots.c.order_coi == order).order_by(t.slots.c.starts)
        return [_slot(row) for row in self.c.execute(query)]


_INSERT_EVENTS = "INSERT INTO ledger_events (log, seq, order_coi, kind, body, hash) VALUES (?, ?, ?, ?, ?, ?)"
_INSERT_NODES = "INSERT INTO merkle_nodes (log, level, idx, hash) VALUES (?, ?, ?, ?)"
_HEAD = (  # built once: constructing a statement costs more than running it
    select(t.ledger_events.c.seq, t.ledger_events.c.hash)
    .where(t.ledger_events.c.log == bindparam("log"))
    .order_by(t.ledger_events.c.seq.desc())
    .limit(1)
)
_ENTRY = select(t.ledger_events.c.body).where(
    t.ledger_events.c.log == bindparam("log"), t.ledger_events.c.seq == bindparam("seq")
)
_SUBTREE_KEYS_PER_QUERY = 500  # bound parameters per IN (...): well inside SQLite's and PostgreSQL's limits
_ENTRIES_PER_QUERY = _SUBTREE_KEYS_PER_QUERY


class SqlLedger:
    _ADVISORY_LOCK = 7_270_128  # PostgreSQL: one appender per log at a time keeps each chain linear

    def __init__(self, connection: Connection) -> None:
        self.c = connection

    def head_for_append(self, log: str) -> tuple[int, bytes]:
        """The last sequence number and hash of ``log``; on PostgreSQL also takes its append lock."""
        if self.c.dialect.name == "postgresql":
            self.c.execute(
                text("SELECT pg_advisory_xact_lock(:key, hashtext(:log))"), {"key": self._ADVISORY_LOCK, "log": log}
            )
        row = self.c.execute(_HEAD, {"log": log}).first()
        return (0, GENESIS) if row is None else (row.seq, bytes(row.hash))

    def append(self, entries: Sequence[LedgerEntry], events: Sequence[CustodyEvent], nodes: Sequence[TreeNode]) -> None:
        if self.c.dialect.name == "sqlite":
            # The same rows as the Core inserts below, as plain tuples through sqlite3's executemany: building a
            # dict per row and SQLAlchemy's per-row parameter processing cost more than SQLite's own insert.
            if entries:
                self.c.exec_driver_sql(
                    _INSERT_EVENTS,
                    [
                        (e.log, e.seq, ev.order, ev.kind, e.body, e.hash)  # StrEnum binds as its text
                        for e, ev in zip(entries, events, strict=True)
                    ],
                )
            if nodes:
                self.c.exec_driver_sql(_INSERT_NODES, list(nodes))
            return
        rows = [
            {"log": e.log, "seq": e.seq, "order_coi": ev.order, "kind": ev.kind.value, "body": e.body, "hash": e.hash}
            for e, ev in zip(entries, events, strict=True)
        ]
        if rows:
            self.c.execute(insert(t.ledger_events), rows)
        if nodes:
            self.c.execute(
                insert(t.merkle_nodes), [{"log": n[0], "level": n[1], "idx": n[2], "hash": n[3]} for n in nodes]
            )

    def subtrees(self, log: str, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Perfect-subtree hashes of ``log`` at (level, index) ``keys``.

        Leaves (level 0) are not stored as nodes: leaf ``i`` is SHA-256(0x00 ‖ body of event i+1), computed from
        the stored event bytes, which stay the single copy of the truth (and each append writes one row fewer).
        Higher levels are read grouped by level: ``log = ? AND level = ? AND idx IN (...)`` is a primary-key
        search per index on both engines. (A row-value ``(level, idx) IN (...)``, or an ``OR`` of three keys or
        more, made SQLite's planner search on ``log`` alone and scan every node of the log.)
        """
        by_level: dict[int, list[int]] = {}
        for level, index in keys:
            by_level.setdefault(level, []).append(index)
        found: dict[tuple[int, int], bytes] = {}
        leaves = by_level.pop(0, None)
        if leaves:
            bodies = self.entries(log, [index + 1 for index in leaves])
            found.update(((0, seq - 1), leaf_hash(body)) for seq, body in bodies.items())
        nodes = t.merkle_nodes.c
        branches: list[Select[tuple[int, int, bytes]]] = []
        bound = 0
        for level, indexes in by_level.items():
            for start in range(0, len(indexes), _SUBTREE_KEYS_PER_QUERY):
                chunk = indexes[start : start + _SUBTREE_KEYS_PER_QUERY]
                if bound + len(chunk) > _SUBTREE_KEYS_PER_QUERY:  # one statement per few hundred keys
                    found.update(self._nodes(branches))
                    branches, bound = [], 0
                branches.append(
                    select(nodes.level, nodes.idx, nodes.hash).where(
                        nodes.log == log, nodes.level == level, nodes.idx.in_(chunk)
                    )
                )
                bound += len(chunk)
        found.update(self._nodes(branches))
        return found

    def _nodes(self, branches: Sequence[Select[tuple[int, int, bytes]]]) -> Iterator[tuple[tuple[int, int], bytes]]:
        """Run per-level lookups as one statement (a proof's ~log n levels cost one round trip, not log n)."""
        if not branches:
            return
        rows: Iterable[Any] = self.c.execute(branches[0] if len(branches) == 1 else union_all(*branches))
        for level, idx, digest in rows:
            yield (level, idx), bytes(digest)

    def for_order(self, coi: str) -> list[dict[str, Any]]:
        query = select(t.ledger_events.c.body).where(t.ledger_events.c.order_coi == coi).order_by(t.ledger_events.c.id)
        return [orjson.loads(body) for (body,) in self.c.execute(query)]

    def entry(self, log: str, seq: int) -> bytes | None:
        body = self.c.execute(_ENTRY, {"log": log, "seq": seq}).scalar()
        return None if body is None else bytes(body)

    def entries(self, log: str, seqs: Sequence[int]) -> dict[int, bytes]:
        """The stored bodies of events ``seqs`` of ``log`` (those that exist), a few hundred per query."""
        found: dict[int, bytes] = {}
        wanted = sorted(set(seqs))
        for start in range(0, len(wanted), _ENTRIES_PER_QUERY):
            chunk = wanted[start : start + _ENTRIES_PER_QUERY]
            query = select(t.ledger_events.c.seq, t.ledger_events.c.body).where(
                t.ledger_events.c.log == log, t.ledger_events.c.seq.in_(chunk)
            )
            found.update((seq, bytes(body)) for seq, body in self.c.execute(query))
        return found

    def rows(self, log: str) -> Iterator[StoredRow]:
        """Every stored event of ``log`` in sequence order, streamed (memory does not grow with the ledger)."""
        query = (
            select(
                t.ledger_events.c.seq,
                t.ledger_events.c.order_coi,
                t.ledger_events.c.kind,
                t.ledger_events.c.body,
                t.ledger_events.c.hash,
            )
            .where(t.ledger_events.c.log == log)
            .order_by(t.ledger_events.c.seq)
        )
        result = self.c.execution_options(yield_per=10_000).execute(query)
        for seq, order, kind, body, digest in result:  # noqa: UP028 - unpacking gives the typed row
            yield seq, order, kind, body, digest

    def logs(self) -> dict[str, int]:
        """Every log in the store with its size."""
        query = select(t.ledger_events.c.log, func.max(t.ledger_events.c.seq)).group_by(t.ledger_events.c.log)
        return {log: int(size) for log, size in self.c.execute(query)}

    def size(self) -> int:
        return int(self.c.execute(select(func.count()).select_from(t.ledger_events)).scalar_one())


_WITNESS_LOCK = 7_270_129


def _checkpoint(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(row.log, row.size, bytes(row.root), row.note, row.signed_at)


class SqlCheckpoints:
    def __init__(self, connection: Connection) -> None:
        self.c = connection

    def latest(self, log: str) -> StoredCheckpoint | None:
        q = t.checkpoints.c
        row = self.c.execute(select(t.checkpoints).where(q.log == log).order_by(q.size.desc()).limit(1)).first()
        return None if row is None else _checkpoint(row)

    def at(self, log: str, size: int) -> StoredCheckpoint | None:
        q = t.checkpoints.c
        row = self.c.execute(select(t.checkpoints).where(q.log == log, q.size == size)).first()
        return None if row is None else _checkpoint(row)

    def history(self, log: str) -> list[StoredCheckpoint]:
        q = t.checkpoints.c
        return [_checkpoint(r) for r in self.c.execute(select(t.checkpoints).where(q.log == log).order_by(q.size))]

    def logs(self) -> list[str]:
        return [log for (log,) in self.c.execute(select(t.checkpoints.c.log).distinct().order_by(t.checkpoints.c.log))]

    def add(self, checkpoint: StoredCheckpoint) -> None:
        self.c.execute(insert(t.checkpoints).values(**checkpoint.__dict__))

    def witnessed(self, log: str) -> StoredCheckpoint | None:
        q = t.witnessed.c
        row = self.c.execute(select(t.witnessed).where(q.log == log).order_by(q.size.desc()).limit(1)).first()
        if row is None:
            return None
        return StoredCheckpoint(row.log, row.size, bytes(row.root), row.note, row.cosigned_at)

    def lock_witness(self, log: str) -> None:
        """Serialise witness decisions about ``log`` for this transaction (SQLite's write lock already does)."""
        if self.c.dialect.name == "postgresql":
            self.c.execute(
                text("SELECT pg_advisory_xact_lock(:key, hashtext(:log))"), {"key": _WITNESS_LOCK, "log": log}
            )

    def add_witnessed(self, checkpoint: StoredCheckpoint) -> None:
        values = dict(checkpoint.__dict__)
        values["cosigned_at"] = values.pop("signed_at")
        self.c.execute(insert(t.witnessed).values(**values))


class SqlCounters:
    def __init__(self, connection: Connection) -> None:
        self.c = connection

    def take(self, name: str) -> int:
        """The next number of a named sequence (1, 2, ...), allocated inside the current transaction."""
        result = self.c.execute(
            update(t.counters)
            .where(t.counters.c.name == name)
            .values(value=t.counters.c.value + 1)
            .returning(t.counters.c.value)
        ).scalar()
        if result is not None:
            return int(result)
        try:
            with self.c.begin_nested():
                self.c.execute(insert(t.counters).values(name=name, value=1))
        except IntegrityError:
            return self.take(name)  # another transaction created it first
        return 1


def _user(row: Any) -> UserRecord:
    return UserRecord(
        username=row.username,
        full_name=row.full_name,
        node=row.node,
        roles=frozenset(Role(r) for r in row.roles.split(",") if r),
        password_hash=row.password_hash,
        active=row.active,
    )


class SqlUsers:
    def __init__(self, connection: Connection) -> None:
        self.c = connection

    def add(self, user: UserRecord) -> None:
        values = dict(user.__dict__, roles=",".join(sorted(r.value for r in user.roles)))
        self.c.execute(insert(t.users).values(**values))

    def get(self, username: str) -> UserRecord | None:
        row = self.c.execute(select(t.users).where(t.users.c.username == username)).first()
        return None if row is None else _user(row)

    def add_token(self, token_hash: str, username: str, expires_at: datetime) -> None:
        self.c.execute(insert(t.tokens).values(token_hash=token_hash, username=username, expires_at=expires_at))

    def by_token(self, token_hash: str, now: datetime) -> UserRecord | None:
        row = self.c.execute(
            select(t.users)
            .join(t.tokens, t.tokens.c.username == t.users.c.username)
            .where(t.tokens.c.token_hash == token_hash, t.tokens.c.expires_at > now, t.users.c.active.is_(True))
        ).first()
        return None if row is None else _user(row)
