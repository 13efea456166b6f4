"""Repositories: the rail's protocols (``rail.ports``) implemented with SQLAlchemy Core on one connection."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from cellrail.rail.access_control import Role
from cellrail.rail.booking import Resource, SlotSpec
from cellrail.rail.ledger import GENESIS, CustodyEvent, LedgerEntry, StoredRow
from cellrail.rail.network import Network, load_network
from cellrail.rail.orders import Order, OrderState
from cellrail.rail.ports import PatientRecord, Slot, StoredCheckpoint, UserRecord
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


_INSERT_EVENTS = (
    "INSERT INTO ledger_events (log_id, seq, order_coi, kind, body, hash, tree_nodes) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_events = t.ledger_events.c
_LOG_ID = select(t.ledger_logs.c.id).where(t.ledger_logs.c.origin == bindparam("origin"))
# A log's id and last event in one statement (an append's round trips are most of its cost): max(seq) over the
# (log_id, seq) index is one index probe on both engines.
_latest = t.ledger_events.alias("latest")
_LAST_SEQ = (
    select(func.max(_latest.c.seq))
    .where(_latest.c.log_id == t.ledger_logs.c.id)
    .correlate(t.ledger_logs)
    .scalar_subquery()
)
_HEAD = (  # built once: constructing a statement costs more than running it
    select(t.ledger_logs.c.id, _events.seq, _events.hash)
    .select_from(
        t.ledger_logs.outerjoin(t.ledger_events, and_(_events.log_id == t.ledger_logs.c.id, _events.seq == _LAST_SEQ))
    )
    .where(t.ledger_logs.c.origin == bindparam("origin"))
)
_ENTRY = select(_events.body).where(_events.log_id == bindparam("log_id"), _events.seq == bindparam("seq"))
_SQLITE_ROWS = "SELECT seq, order_coi, kind, body, hash FROM ledger_events WHERE log_id = ? ORDER BY seq"
_ROWS_PER_QUERY = 500  # bound parameters per IN (...): well inside SQLite's and PostgreSQL's limits
# SQLite: one statement text per column, always with _ROWS_PER_QUERY places (unused ones hold seq 0, which no
# event has), so sqlite3 prepares it once and every chunk reuses it; rows come back as plain tuples.
_SQLITE_BY_SEQ = {
    name: f"SELECT seq, {name} FROM ledger_events WHERE log_id = ? AND seq IN ({', '.join('?' * _ROWS_PER_QUERY)})"
    for name in ("body", "tree_nodes")
}
_NODE = 32  # bytes of one SHA-256 tree node in ``tree_nodes``


def completed_levels(seq: int) -> int:
    """How many inner nodes appending event ``seq`` completes (levels 1..k): the trailing zero bits of ``seq``."""
    return (seq & -seq).bit_length() - 1


class SqlLedger:
    """The custody ledger's rows. Callers name logs by origin; the store keys them by a small integer id."""

    _ADVISORY_LOCK = 7_270_128  # PostgreSQL: one appender per log at a time keeps each chain linear

    def __init__(self, connection: Connection) -> None:
        self.c = connection
        self._ids: dict[str, int] = {}  # origin -> log id, for this unit of work (ids never change)

    def _log_id(self, log: str, *, create: bool = False) -> int | None:
        found = self._ids.get(log)
        if found is None:
            found = self.c.execute(_LOG_ID, {"origin": log}).scalar()
            if found is None and create:  # under the log's append lock on PostgreSQL; SQLite has one writer
                found = self.c.execute(insert(t.ledger_logs).values(origin=log).returning(t.ledger_logs.c.id)).scalar()
            if found is not None:
                self._ids[log] = found
        return found

    def head_for_append(self, log: str) -> tuple[int, bytes]:
        """The last sequence number and hash of ``log`` (registered if new); on PostgreSQL also takes its lock."""
        if self.c.dialect.name == "postgresql":
            self.c.execute(
                text("SELECT pg_advisory_xact_lock(:key, hashtext(:log))"), {"key": self._ADVISORY_LOCK, "log": log}
            )
        row = self.c.execute(_HEAD, {"origin": log}).first()
        if row is None:
            self._log_id(log, create=True)
            return 0, GENESIS
        self._ids[log] = row.id
        return (0, GENESIS) if row.seq is None else (row.seq, bytes(row.hash))

    def append(
        self, entries: Sequence[LedgerEntry], events: Sequence[CustodyEvent], tree_nodes: Sequence[bytes]
    ) -> None:
        """Store ``entries`` with the inner tree nodes each completed (``tree_nodes``, aligned with them)."""
        ids = {log: self._log_id(log, create=True) for log in {e.log for e in entries}}
        if self.c.dialect.name == "sqlite":
            # The same rows as the Core insert below, as plain tuples through sqlite3's executemany: building a
            # dict per row and SQLAlchemy's per-row parameter processing cost more than SQLite's own insert.
            if entries:
                self.c.exec_driver_sql(
                    _INSERT_EVENTS,
                    [
                        (ids[e.log], e.seq, ev.order, ev.kind, e.body, e.hash, nodes)  # StrEnum binds as its text
                        for e, ev, nodes in zip(entries, events, tree_nodes, strict=True)
                    ],
                )
            return
        rows = [
            {
                "log_id": ids[e.log],
                "seq": e.seq,
                "order_coi": ev.order,
                "kind": ev.kind.value,
                "body": e.body,
                "hash": e.hash,
                "tree_nodes": nodes,
            }
            for e, ev, nodes in zip(entries, events, tree_nodes, strict=True)
        ]
        if rows:
            self.c.execute(insert(t.ledger_events), rows)

    def subtrees(self, log: str, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Perfect-subtree hashes of ``log`` at (level, index) ``keys`` (those stored; a missing one is absent).

        Leaves (level 0) are SHA-256(0x00 ‖ body of event index+1), computed from the stored event bytes, which
        stay the single copy of the truth. Inner node (level, index) is the level-th 32-byte hash in the
        ``tree_nodes`` of event (index + 1) << level, read with one index lookup per event (several nodes often
        share an event: event 4 completes levels 1 and 2). A ``tree_nodes`` of the wrong length yields no node.
        """
        keys = list(keys)
        found: dict[tuple[int, int], bytes] = {}
        leaves = [index + 1 for level, index in keys if level == 0]
        if leaves:
            found.update(((0, seq - 1), leaf_hash(body)) for seq, body in self.entries(log, leaves).items())
        rows = self._columns(log, "tree_nodes", [(index + 1) << level for level, index in keys if level])
        for level, index in keys:
            if level:
                seq = (index + 1) << level
                nodes = rows.get(seq)
                if nodes is not None and len(nodes) == _NODE * completed_levels(seq):
                    found[(level, index)] = nodes[_NODE * (level - 1) : _NODE * level]
        return found

    def _columns(self, log: str, column: str, seqs: Sequence[int]) -> dict[int, bytes]:
        """``column`` (body or tree_nodes) of events ``seqs`` of ``log`` (those that exist), 500 per query."""
        log_id = self._log_id(log)
        found: dict[int, bytes] = {}
        if log_id is None:
            return found
        wanted = sorted(set(seqs))
        sqlite = self.c.dialect.name == "sqlite"
        for start in range(0, len(wanted), _ROWS_PER_QUERY):
            chunk = wanted[start : start + _ROWS_PER_QUERY]
            if sqlite:
                padded = (log_id, *chunk, *(0,) * (_ROWS_PER_QUERY - len(chunk)))
                found.update(self.c.exec_driver_sql(_SQLITE_BY_SEQ[column], padded).all())
            else:
                query = select(_events.seq, _events[column]).where(_events.log_id == log_id, _events.seq.in_(chunk))
                found.update((seq, bytes(value)) for seq, value in self.c.execute(query))
        return found

    def for_order(self, coi: str) -> list[dict[str, Any]]:
        query = select(_events.body).where(_events.order_coi == coi).order_by(_events.id)
        return [orjson.loads(body) for (body,) in self.c.execute(query)]

    def entry(self, log: str, seq: int) -> bytes | None:
        log_id = self._log_id(log)
        body = None if log_id is None else self.c.execute(_ENTRY, {"log_id": log_id, "seq": seq}).scalar()
        return None if body is None else bytes(body)

    def entries(self, log: str, seqs: Sequence[int]) -> dict[int, bytes]:
        """The stored bodies of events ``seqs`` of ``log`` (those that exist), a few hundred per query."""
        return self._columns(log, "body", seqs)

    def rows(self, log: str) -> Iterator[StoredRow]:
        """Every stored event of ``log`` in sequence order, streamed (memory does not grow with the ledger)."""
        log_id = self._log_id(log)
        if log_id is None:
            return
        if self.c.dialect.name == "sqlite":
            # A full re-verification reads every row once: plain tuples from the driver's own cursor, in the
            # unit of work's transaction (SQLAlchemy's per-row result objects were a sixth of verify_ledger).
            cursor = self.c.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(_SQLITE_ROWS, (log_id,))
                while batch := cursor.fetchmany(10_000):
                    yield from batch
            finally:
                cursor.close()
            return
        query = (
            select(_events.seq, _events.order_coi, _events.kind, _events.body, _events.hash)
            .where(_events.log_id == log_id)
            .order_by(_events.seq)
        )
        result = self.c.execution_options(yield_per=10_000).execute(query)
        for seq, order, kind, body, digest in result:  # noqa: UP028 - unpacking gives the typed row
            yield seq, order, kind, body, digest

    def logs(self) -> dict[str, int]:
        """Every log in the store with its size."""
        sizes = select(_events.log_id, func.max(_events.seq).label("size")).group_by(_events.log_id).subquery()
        query = select(t.ledger_logs.c.origin, sizes.c.size).join(sizes, sizes.c.log_id == t.ledger_logs.c.id)
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
