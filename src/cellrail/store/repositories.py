"""Repositories: the rail's protocols (``rail.ports``) implemented with SQLAlchemy Core on one connection."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from cellrail.rail.access_control import Role
from cellrail.rail.booking import Resource, SlotSpec
from cellrail.rail.ledger import GENESIS, CustodyEvent, LedgerEntry, StoredRow
from cellrail.rail.network import Network, load_network
from cellrail.rail.orders import Order, OrderState
from cellrail.rail.ports import PatientRecord, Slot, UserRecord
from cellrail.store import tables as t


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


class SqlLedger:
    _ADVISORY_LOCK = 7_270_128  # PostgreSQL: one appender at a time keeps the chain linear

    def __init__(self, connection: Connection) -> None:
        self.c = connection

    def head_for_append(self) -> tuple[int, bytes]:
        """The last sequence number and hash; on PostgreSQL also takes the append lock for this transaction."""
        if self.c.dialect.name == "postgresql":
            self.c.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._ADVISORY_LOCK})
        row = self.c.execute(
            select(t.ledger_events.c.seq, t.ledger_events.c.hash).order_by(t.ledger_events.c.seq.desc()).limit(1)
        ).first()
        return (0, GENESIS) if row is None else (row.seq, bytes(row.hash))

    def append(self, entries: Sequence[LedgerEntry], events: Sequence[CustodyEvent]) -> None:
        rows = [
            {"seq": e.seq, "order_coi": ev.order, "kind": ev.kind.value, "body": e.body, "hash": e.hash}
            for e, ev in zip(entries, events, strict=True)
        ]
        if rows:
            self.c.execute(insert(t.ledger_events), rows)

    def for_order(self, coi: str) -> list[dict[str, Any]]:
        query = select(t.ledger_events.c.body).where(t.ledger_events.c.order_coi == coi).order_by(t.ledger_events.c.seq)
        return [orjson.loads(body) for (body,) in self.c.execute(query)]

    def rows(self) -> Iterator[StoredRow]:
        """Every stored event in sequence order, streamed (memory does not grow with the ledger)."""
        query = select(
            t.ledger_events.c.seq,
            t.ledger_events.c.order_coi,
            t.ledger_events.c.kind,
            t.ledger_events.c.body,
            t.ledger_events.c.hash,
        ).order_by(t.ledger_events.c.seq)
        result = self.c.execution_options(yield_per=10_000).execute(query)
        for seq, order, kind, body, digest in result:  # noqa: UP028 - unpacking gives the typed row
            yield seq, order, kind, body, digest

    def size(self) -> int:
        return int(self.c.execute(select(func.count()).select_from(t.ledger_events)).scalar_one())


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
