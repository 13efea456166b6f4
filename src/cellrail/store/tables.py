"""Table definitions (SQLAlchemy Core). The migrations in ``migrations/`` create exactly these; a test checks it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC so SQLite and PostgreSQL agree."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


metadata = MetaData()

networks = Table(
    "networks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("network_id", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("full_name", String(200), nullable=False),
    Column("node", String(64), nullable=False),
    Column("roles", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("active", Boolean, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(64), ForeignKey("users.username"), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

patients = Table(
    "patients",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("treatment_site", String(64), nullable=False),
    Column("mrn", String(64), nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("birth_date", Date, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("coi", String(16), primary_key=True),
    Column("patient_key", String(32), ForeignKey("patients.key"), nullable=False),
    Column("treatment_site", String(64), nullable=False),
    Column("manufacturing_node", String(64)),
    Column("state", String(32), nullable=False),
    Column("collection_din", String(14)),
    Column("product_din", String(14)),
    Column("manufacturing_attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_orders_treatment_site", "treatment_site"),
    Index("ix_orders_manufacturing_node", "manufacturing_node"),
)

slots = Table(
    "slots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("node", String(64), nullable=False),
    Column("resource", String(16), nullable=False),
    Column("platform", String(64), nullable=False),
    Column("unit", Integer, nullable=False),
    Column("starts", UTCDateTime, nullable=False),
    Column("ends", UTCDateTime, nullable=False),
    Column("order_coi", String(16), ForeignKey("orders.coi")),
    UniqueConstraint("node", "resource", "platform", "unit", "starts", name="uq_slots_identity"),
    Index("ix_slots_free", "node", "resource", "starts"),
    Index("ix_slots_order", "order_coi"),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)

# One log per site, named by its origin (e.g. "cellrail/cn-regional/hub-east-suzhou"). Events and their tree
# refer to a log by this small integer, not by the 30-odd characters of its name in every row and index entry.
ledger_logs = Table(
    "ledger_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", String(200), nullable=False, unique=True),
)

# The custody events. ``id`` is the store-wide order of insertion, ``seq`` the 1-based position in its site's log
# (its Merkle leaf index + 1); ``body`` the canonical bytes as signed, never re-encoded; ``hash`` the chain link.
# ``tree_nodes`` holds the RFC 9162 tree's inner nodes that this event completes, written with it: appending
# leaf seq-1 completes the perfect subtrees at levels 1 to k, k the number of trailing zero bits of seq, so
# node (level, index) lives in event (index + 1) << level, 32 bytes at offset 32 * (level - 1). Leaves are
# not stored as nodes: leaf seq-1 is SHA-256(0x00 ‖ body). One row per event carries the whole tree, so an
# append writes one table row and its two index entries, nothing else.
ledger_events = Table(
    "ledger_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("log_id", Integer, ForeignKey("ledger_logs.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("order_coi", String(16)),
    Column("kind", String(32), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    Column("tree_nodes", LargeBinary, nullable=False),
    UniqueConstraint("log_id", "seq", name="uq_ledger_events_position"),
    Index("ix_ledger_events_order", "order_coi"),
)

# Signed checkpoints (C2SP tlog-checkpoint notes) of this store's logs.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("log", String(200), primary_key=True),
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("signed_at", UTCDateTime, nullable=False),
)

# Checkpoints of other sites' logs that this site, as a witness, has verified and cosigned.
witnessed = Table(
    "witnessed",
    metadata,
    Column("log", String(200), primary_key=True),
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("cosigned_at", UTCDateTime, nullable=False),
)

# Landscape: registry trials as imported (one row per registry id; re-importing replaces the row) with the
# classification stored beside them. Phases, interventions and conditions are JSON text: they are always read
# with their trial and never queried element by element. Countries are a child table, indexed, because the
# country is the axis of the analytics and of the API's filters.
landscape_trials = Table(
    "landscape_trials",
    metadata,
    Column("registry_id", String(16), primary_key=True),
    Column("title", Text, nullable=False),
    Column("phases", Text, nullable=False),
    Column("overall_status", Text),
    Column("start_date", Date),
    Column("start_precision", String(8)),
    Column("start_kind", String(12), nullable=False),
    Column("lead_country", String(2)),
    Column("sponsor", Text),
    Column("sponsor_class", Text),
    Column("interventions", Text, nullable=False),
    Column("conditions", Text, nullable=False),
    Column("upstream_product_type", Text),
    Column("target", Text),
    Column("source", String(32), nullable=False),
    Column("snapshot", Date),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("modality", String(16), nullable=False),
    Column("platform", Text),
    Column("cell_source", Text),
    Column("rule", Text, nullable=False),
    Index("ix_landscape_trials_start_date", "start_date"),
    Index("ix_landscape_trials_modality", "modality"),
)

landscape_trial_countries = Table(
    "landscape_trial_countries",
    metadata,
    Column("registry_id", String(16), ForeignKey("landscape_trials.registry_id"), primary_key=True),
    Column("country", String(2), primary_key=True),
    Index("ix_landscape_trial_countries_country", "country"),
)
