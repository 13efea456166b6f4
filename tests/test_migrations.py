"""The Alembic migrations create exactly the tables that store/tables.py describes, on both engines."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from cellrail.cli.main import app as cli
from cellrail.kernel.clock import ManualClock
from cellrail.kernel.errors import Conflict
from cellrail.rail.ledger import GENESIS, CustodyEvent, EventKind, encode, link, verify_rows
from cellrail.rail.recording import record
from cellrail.store.engine import MIGRATIONS, create_store_engine, migrate
from cellrail.store.tables import metadata
from cellrail.store.uow import SqlUnitOfWork
from cellrail.transparency.merkle import MemoryStore, nodes_to_store
from cellrail.transparency.verifier import leaf_hash


def test_migrated_schema_matches_the_tables(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_migrating_twice_changes_nothing(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []


# --- 0003: a 0002 store's ledger carried over to the compact layout ---------------------------------------------

LOGS = {"cellrail/unregistered/hub": 37, "cellrail/unregistered/h-a": 70, "cellrail/unregistered/h-b": 1}
STARTED = datetime(2026, 5, 4, 9, tzinfo=UTC)


def _at_revision(url: str, revision: str) -> Engine:
    engine = create_store_engine(url)
    _upgrade(engine, revision)
    return engine


def _upgrade(engine: Engine, revision: str = "head", copy_chunk: int | None = None) -> None:
    """As store.engine.migrate, to ``revision``; ``copy_chunk`` makes 0003 copy that many events per step."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if copy_chunk is not None:
        config.attributes["cellrail.ledger_copy_chunk"] = copy_chunk
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _old_ledger(engine: Engine, *, leaves_as_nodes: bool) -> tuple[list[tuple[str, int]], dict[str, MemoryStore]]:
    """A ledger written in the 0002 layout (origin text per row, one merkle_nodes row per inner node; with
    ``leaves_as_nodes`` also the leaves, as stores written before leaves were derived hold them). Events of the
    logs interleave, as they do in a real store. Returns (log, seq) in insertion order and each log's tree."""
    order = sorted(((log, seq) for log, size in LOGS.items() for seq in range(1, size + 1)), key=lambda p: (p[1], p[0]))
    heads = dict.fromkeys(LOGS, GENESIS)
    trees = {log: MemoryStore() for log in LOGS}
    with engine.begin() as connection:
        for log, seq in order:
            event = CustodyEvent(
                EventKind.CUSTODY_SCAN, log.rsplit("/", 1)[1], "courier", "courier", STARTED, f"C{seq % 5}"
            )
            body = encode(event, seq, STARTED + timedelta(seconds=seq), log)
            heads[log] = link(heads[log], body)
            connection.execute(
                text(
                    "INSERT INTO ledger_events (log, seq, order_coi, kind, body, hash) "
                    "VALUES (:log, :seq, :coi, :kind, :body, :hash)"
                ),
                {
                    "log": log,
                    "seq": seq,
                    "coi": event.order,
                    "kind": event.kind.value,
                    "body": body,
                    "hash": heads[log],
                },
            )
            for level, index, digest in nodes_to_store(seq - 1, leaf_hash(body), trees[log].perfect):
                if level or leaves_as_nodes:
                    connection.execute(
                        text("INSERT INTO merkle_nodes (log, level, idx, hash) VALUES (:log, :level, :idx, :hash)"),
                        {"log": log, "level": level, "idx": index, "hash": digest},
                    )
            trees[log].append(leaf_hash(body))
    return order, trees


@pytest.mark.parametrize(
    ("leaves_as_nodes", "copy_chunk"),
    [(False, None), (True, None), (False, 1), (True, 3), (False, 16), (True, 33)],
    ids=["derived-leaves", "stored-leaves", "chunks-of-1", "chunks-of-3", "chunks-of-16", "chunks-of-33"],
)
def test_upgrading_to_0003_carries_every_event_and_tree_node_over(
    store_url: str, clock: ManualClock, leaves_as_nodes: bool, copy_chunk: int | None
) -> None:
    """Copied in chunks too (nodes of one event never span two; the default chunk holds these logs whole)."""
    engine = _at_revision(store_url, "0002")
    try:
        order, trees = _old_ledger(engine, leaves_as_nodes=leaves_as_nodes)
        _upgrade(engine, copy_chunk=copy_chunk)
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
            placed = connection.execute(
                text("SELECT l.origin, e.seq FROM ledger_events e JOIN ledger_logs l ON l.id = e.log_id ORDER BY e.id")
            ).all()
        assert [tuple(row) for row in placed] == order  # insertion order (the ids) kept across logs
        with SqlUnitOfWork(engine, write=False) as uow:
            assert uow.ledger.logs() == LOGS
            for log, size in LOGS.items():
                rows = list(uow.ledger.rows(log))
                assert verify_rows(rows, log).ok
                keys = [(level, i) for level in range(size.bit_length()) for i in range(size >> level)]
                assert uow.ledger.subtrees(log, keys) == {key: trees[log].perfect(*key) for key in keys}
            assert [e["seq"] for e in uow.ledger.for_order("C1")] == [seq for _, seq in order if seq % 5 == 1]
        # The upgraded store goes on: the next event of a log continues its chain, tree and the store's ids.
        with SqlUnitOfWork(engine) as uow:
            [entry] = record(uow, clock, CustodyEvent(EventKind.CUSTODY_SCAN, "h-b", "courier", "courier", clock.now()))
            uow.commit()
        assert (entry.seq, entry.log) == (2, "cellrail/unregistered/h-b")  # the store holds no network: "unregistered"
        with engine.connect() as connection:
            ids = connection.execute(text("SELECT max(id), count(*) FROM ledger_events")).one()
        assert tuple(ids) == (len(order) + 1, len(order) + 1)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (
            "DELETE FROM merkle_nodes WHERE log = 'cellrail/unregistered/h-a' AND level = 2 AND idx = 3",
            r"tree node \(2, 3\)",
        ),
        (
            "INSERT INTO merkle_nodes (log, level, idx, hash) SELECT log, level, 99, hash FROM merkle_nodes "
            "WHERE log = 'cellrail/unregistered/hub' AND level = 1 AND idx = 0",
            "belong to no event",
        ),
        (
            "UPDATE merkle_nodes SET hash = (SELECT hash FROM merkle_nodes WHERE log = 'cellrail/unregistered/hub' "
            "AND level = 0 AND idx = 5) WHERE log = 'cellrail/unregistered/hub' AND level = 0 AND idx = 4",
            "leaf 4 is not the hash of event 5",
        ),
        ("DELETE FROM ledger_events WHERE log = 'cellrail/unregistered/h-a' AND seq = 9", "do not fill positions"),
        (
            "INSERT INTO ledger_events (log, seq, order_coi, kind, body, hash) SELECT log, 0, order_coi, kind, body, "
            "hash FROM ledger_events WHERE log = 'cellrail/unregistered/hub' AND seq = 1",
            "do not fill positions 1 to 37",
        ),
        (
            "UPDATE merkle_nodes SET hash = substr(hash, 1, 31) WHERE log = 'cellrail/unregistered/h-a' "
            "AND level = 1 AND idx = 3",
            r"tree node \(1, 3\) is 31 bytes",
        ),
    ],
    ids=["missing-node", "stray-node", "altered-leaf", "missing-event", "event-at-0", "short-node"],
)
def test_upgrading_to_0003_refuses_a_tree_that_does_not_fit_and_changes_nothing(
    store_url: str, damage: str, reason: str
) -> None:
    engine = _at_revision(store_url, "0002")
    try:
        _old_ledger(engine, leaves_as_nodes=True)
        with engine.begin() as connection:  # someone with database access, before the upgrade
            for table in ("ledger_events", "merkle_nodes"):
                if connection.dialect.name == "postgresql":
                    connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_change"))
                else:
                    connection.execute(text(f"DROP TRIGGER {table}_no_update"))
                    connection.execute(text(f"DROP TRIGGER {table}_no_delete"))
            connection.execute(text(damage))
        with pytest.raises(Conflict, match="cannot upgrade the store to the compact ledger") as refused:
            migrate(engine)
        assert re.search(reason, str(refused.value)), refused.value
        with engine.connect() as connection:  # still the 0002 store, untouched
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0002"
            assert connection.execute(text("SELECT count(*) FROM merkle_nodes")).scalar_one() > 0
            assert connection.execute(text("SELECT count(DISTINCT log) FROM ledger_events")).scalar_one() == 3
    finally:
        engine.dispose()


def test_cellrail_db_upgrade_reports_an_unfit_tree_as_a_message(sqlite_url: str) -> None:
    engine = _at_revision(sqlite_url, "0002")
    _old_ledger(engine, leaves_as_nodes=False)
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER merkle_nodes_no_delete"))
        connection.execute(text("DELETE FROM merkle_nodes WHERE log = 'cellrail/unregistered/hub' AND level = 1"))
    engine.dispose()
    result = CliRunner().invoke(cli, ["db", "upgrade", "-d", sqlite_url], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert (result.exit_code, result.output) == (
        1,
        "error cannot upgrade the store to the compact ledger (migration 0003): log cellrail/unregistered/hub: "
        "tree node (1, 0) (completed by event 2) is missing; restore from backup\n",
    )
