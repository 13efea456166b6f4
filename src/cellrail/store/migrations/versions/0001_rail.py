"""The rail: network registry, users, patients, orders, slots, counters, the append-only custody ledger
with its per-site Merkle trees, signed checkpoints and witnessed checkpoints.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cellrail.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# No layer of CellRail updates or deletes these rows; the database refuses it too.
APPEND_ONLY = ("ledger_events", "merkle_nodes", "checkpoints", "witnessed")
SQLITE_GUARDS = [
    "CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
    "BEGIN SELECT RAISE(ABORT, 'the custody ledger is append-only'); END",
    "CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
    "BEGIN SELECT RAISE(ABORT, 'the custody ledger is append-only'); END",
]
POSTGRES_FUNCTION = (
    "CREATE FUNCTION ledger_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the custody ledger is append-only'; END $$"
)
POSTGRES_GUARDS = [
    "CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
    "FOR EACH ROW EXECUTE FUNCTION ledger_events_append_only()",
    "CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_events_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "networks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("network_id", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("registered_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("roles", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), sa.ForeignKey("users.username"), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "patients",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("treatment_site", sa.String(64), nullable=False),
        sa.Column("mrn", sa.String(64), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("birth_date", sa.Date, nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("coi", sa.String(16), primary_key=True),
        sa.Column("patient_key", sa.String(32), sa.ForeignKey("patients.key"), nullable=False),
        sa.Column("treatment_site", sa.String(64), nullable=False),
        sa.Column("manufacturing_node", sa.String(64)),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("collection_din", sa.String(14)),
        sa.Column("product_din", sa.String(14)),
        sa.Column("manufacturing_attempts", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_orders_treatment_site", "orders", ["treatment_site"])
    op.create_index("ix_orders_manufacturing_node", "orders", ["manufacturing_node"])
    op.create_table(
        "slots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(16), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("unit", sa.Integer, nullable=False),
        sa.Column("starts", UTCDateTime, nullable=False),
        sa.Column("ends", UTCDateTime, nullable=False),
        sa.Column("order_coi", sa.String(16), sa.ForeignKey("orders.coi")),
        sa.UniqueConstraint("node", "resource", "platform", "unit", "starts", name="uq_slots_identity"),
    )
    op.create_index("ix_slots_free", "slots", ["node", "resource", "starts"])
    op.create_index("ix_slots_order", "slots", ["order_coi"])
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )
    op.create_table(
        "ledger_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("log", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("order_coi", sa.String(16)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.UniqueConstraint("log", "seq", name="uq_ledger_events_position"),
    )
    op.create_index("ix_ledger_events_order", "ledger_events", ["order_coi"])
    op.create_table(
        "merkle_nodes",
        sa.Column("log", sa.String(200), primary_key=True),
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sqlite_with_rowid=False,  # one B-tree keyed by (log, level, idx) instead of a table and an index
    )
    op.create_table(
        "checkpoints",
        sa.Column("log", sa.String(200), primary_key=True),
        sa.Column("size", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("signed_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "witnessed",
        sa.Column("log", sa.String(200), primary_key=True),
        sa.Column("size", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("cosigned_at", UTCDateTime, nullable=False),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(POSTGRES_FUNCTION)
    for table in APPEND_ONLY:
        for statement in POSTGRES_GUARDS if postgres else SQLITE_GUARDS:
            op.execute(statement.format(table=table))


def downgrade() -> None:
    raise RuntimeError("the custody ledger is never dropped by a migration; restore from backup instead")
