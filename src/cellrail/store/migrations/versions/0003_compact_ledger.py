"""Compact ledger: logs named by a small integer, and each event row carrying the tree nodes it completes.

Before: ``ledger_events.log`` held the origin text in every row and index entry, and ``merkle_nodes`` one row
per inner node (about one per event, each with the origin again). After: ``ledger_logs`` names each log once,
and ``ledger_events.tree_nodes`` holds the inner nodes that appending the event completed (see store/tables.py),
so an append writes one row instead of two (docs/performance.md has the measured effect).

Nothing is recomputed: every stored hash is carried over as stored, so a store altered before the upgrade is
still caught by ``cellrail verify`` afterwards. A tree that does not fit its events (a node missing, stray or not
32 bytes, a stored leaf that is not the hash of its event, events that do not fill positions 1..n) stops the
upgrade with the log and node named, and the transaction leaves the store as it was.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterator

import sqlalchemy as sa
from alembic import context, op

from cellrail.kernel.errors import Conflict

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

HASH_BYTES = 32
_RAIL = importlib.import_module("cellrail.store.migrations.versions.0001_rail")  # the append-only guards
OLD = "ledger_events_0001"
CHUNK = 20_000  # events copied per step: memory stays bounded however long a log is (tests set a small one)

_new_events = sa.table(
    "ledger_events",
    sa.column("id", sa.Integer),
    sa.column("log_id", sa.Integer),
    sa.column("seq", sa.Integer),
    sa.column("order_coi", sa.String),
    sa.column("kind", sa.String),
    sa.column("body", sa.LargeBinary),
    sa.column("hash", sa.LargeBinary),
    sa.column("tree_nodes", sa.LargeBinary),
)


class UnfitTree(Conflict):
    """The stored tree does not match the stored events: the upgrade refuses to carry it over (a Conflict, so
    the CLI and the API report it as a message, not a traceback)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot upgrade the store to the compact ledger (migration 0003): {reason}")


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    # Move the old table aside under names that do not clash with the new one's.
    op.rename_table("ledger_events", OLD)
    op.drop_index("ix_ledger_events_order", table_name=OLD)
    if postgres:
        op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT uq_ledger_events_position TO uq_{OLD}_position")
        op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT ledger_events_pkey TO {OLD}_pkey")
        op.execute(f"ALTER SEQUENCE ledger_events_id_seq RENAME TO {OLD}_id_seq")
    op.create_table(
        "ledger_logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(200), nullable=False, unique=True),
    )
    op.create_table(
        "ledger_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("log_id", sa.Integer, sa.ForeignKey("ledger_logs.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("order_coi", sa.String(16)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("tree_nodes", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("log_id", "seq", name="uq_ledger_events_position"),
    )
    op.create_index("ix_ledger_events_order", "ledger_events", ["order_coi"])
    _copy(bind)
    if postgres:  # the ids were copied as they were: the sequence continues after the last one
        bind.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('ledger_events', 'id'), "
            "COALESCE(max(id), 1), max(id) IS NOT NULL) FROM ledger_events"
        )
    op.drop_table(OLD)
    op.drop_table("merkle_nodes")
    for table in ("ledger_logs", "ledger_events"):
        for statement in _RAIL.POSTGRES_GUARDS if postgres else _RAIL.SQLITE_GUARDS:
            op.execute(statement.format(table=table))


def _copy(bind: sa.Connection) -> None:
    """Copy every event with the inner nodes it completed, log by log, in bounded chunks; check the tree fits."""
    chunk = int(context.config.attributes.get("cellrail.ledger_copy_chunk", CHUNK))
    logs = bind.execute(
        sa.text(f"SELECT log, count(*), min(seq), max(seq) FROM {OLD} GROUP BY log ORDER BY min(id)")
    ).all()
    for log, count, first, size in logs:
        if (count, first) != (size, 1):  # positions 1..size, each once (the old table has unique (log, seq))
            raise UnfitTree(f"log {log}: {count} events do not fill positions 1 to {size}; restore from backup")
        log_id = bind.execute(
            sa.text("INSERT INTO ledger_logs (origin) VALUES (:origin) RETURNING id"), {"origin": log}
        ).scalar_one()
        used = 0
        for start in range(1, size + 1, chunk):
            end = min(start + chunk, size + 1)  # events start .. end-1
            rows, nodes_used = _chunk(bind, log, log_id, start, end)
            if rows:
                bind.execute(sa.insert(_new_events), rows)
            used += nodes_used
        stored = bind.execute(sa.text("SELECT count(*) FROM merkle_nodes WHERE log = :log"), {"log": log}).scalar_one()
        if stored != used:
            raise UnfitTree(f"log {log}: {stored - used} stored tree node(s) belong to no event; restore from backup")
    stray = bind.execute(sa.text(f"SELECT count(*) FROM merkle_nodes WHERE log NOT IN (SELECT log FROM {OLD})"))
    if orphans := stray.scalar_one():
        raise UnfitTree(f"{orphans} stored tree node(s) belong to a log without events; restore from backup")


def _chunk(bind: sa.Connection, log: str, log_id: int, start: int, end: int) -> tuple[list[dict[str, object]], int]:
    """The new rows for events ``start`` .. ``end - 1`` of ``log``, and how many stored nodes they carried."""
    events = bind.execute(
        sa.text(
            f"SELECT id, seq, order_coi, kind, body, hash FROM {OLD} "
            "WHERE log = :log AND seq >= :start AND seq < :end ORDER BY seq"
        ),
        {"log": log, "start": start, "end": end},
    ).all()
    if [row.seq for row in events] != list(range(start, end)):
        missing = sorted(set(range(start, end)) - {row.seq for row in events})
        raise UnfitTree(f"log {log}: event {missing[0]} is missing; restore from backup")
    nodes: dict[tuple[int, int], bytes] = {}
    for level in range((end - 1).bit_length()):
        # Node (level, idx) belongs to event (idx + 1) << level: those of events start .. end-1.
        low, high = -(-start >> level) - 1, ((end - 1) >> level) - 1
        if low > high:
            continue
        found = bind.execute(
            sa.text(
                "SELECT idx, hash FROM merkle_nodes WHERE log = :log AND level = :level AND idx BETWEEN :low AND :high"
            ),
            {"log": log, "level": level, "low": low, "high": high},
        )
        for idx, digest in found:
            if len(digest) != HASH_BYTES:
                raise UnfitTree(f"log {log}: tree node {(level, idx)} is {len(digest)} bytes, not a SHA-256 hash")
            nodes[(level, idx)] = bytes(digest)
    rows: list[dict[str, object]] = []
    carried = 0
    for row in events:
        body = bytes(row.body)
        leaf = nodes.pop((0, row.seq - 1), None)  # stores written before leaves were derived kept them as nodes
        if leaf is not None:
            carried += 1
            if leaf != hashlib.sha256(b"\x00" + body).digest():
                raise UnfitTree(f"log {log}: stored leaf {row.seq - 1} is not the hash of event {row.seq}")
        rows.append(
            {
                "id": row.id,
                "log_id": log_id,
                "seq": row.seq,
                "order_coi": row.order_coi,
                "kind": row.kind,
                "body": body,
                "hash": bytes(row.hash),
                "tree_nodes": b"".join(_completed(nodes, log, row.seq)),
            }
        )
        carried += _trailing_zeros(row.seq)
    return rows, carried


def _completed(nodes: dict[tuple[int, int], bytes], log: str, seq: int) -> Iterator[bytes]:
    """The stored inner nodes that appending event ``seq`` completed, level 1 upward."""
    for level in range(1, _trailing_zeros(seq) + 1):
        key = (level, (seq >> level) - 1)
        if key not in nodes:
            raise UnfitTree(f"log {log}: tree node {key} (completed by event {seq}) is missing; restore from backup")
        yield nodes[key]


def _trailing_zeros(seq: int) -> int:
    return (seq & -seq).bit_length() - 1


def downgrade() -> None:
    raise RuntimeError("the custody ledger is never dropped by a migration; restore from backup instead")
