"""Custody ledger throughput on SQLite, each figure next to the physical limit measured in the same run.

    python benchmarks/ledger_ingest.py [--events N] [--single M] [--batch B] [--dir DIR]

(a) custody scans ingested one per transaction through ``services.record_scans``, against a bare sqlite3 loop
    inserting the same ledger rows with one commit per row;
(b) the same in batches of B scans per ``record_scans`` call, against bare ``executemany`` with one commit per
    batch of B rows;
(c) ``services.verify_ledger`` over the whole ledger (N+ events), against a bare ``hashlib.sha256`` chain over the
    same stored bytes.

The store is a file database in a temporary directory with the product's durability settings (WAL,
``synchronous=FULL``, ``BEGIN IMMEDIATE``); the bare baselines use the same pragmas and the product's own table
definitions (copied from the store, ``bare_sqlite.py``) on their own file next to it.
The process is pinned to one core where the OS allows it. Commands (``CustodyScan``) are built from dicts with
Pydantic outside the timed region, as an API adapter would before calling the service; that cost is printed
separately.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import Engine, func, select

from bare_sqlite import bare_connection, product_schema
from cellrail.kernel.clock import ManualClock
from cellrail.rail.access_control import SYSTEM, Principal, Role
from cellrail.rail.accounts import NewUser, create_user
from cellrail.rail.audit import verify_ledger
from cellrail.rail.orders import OrderState
from cellrail.rail.services import (
    AdvanceOrder,
    BookOrder,
    CustodyScan,
    EnrollPatient,
    OpenSlots,
    advance,
    book,
    enroll,
    open_slots,
    record_scans,
    register_network,
)
from cellrail.store import tables as t
from cellrail.store.engine import open_store
from cellrail.store.uow import SqlUnitOfWork
from machine import cpu_model, pin_to_one_core
from reporting import Figure, report

BATCHED_TARGET = 20_000.0  # events/s, batched ingest (issue target)
VERIFY_TARGET = 200_000.0  # events/s, verification on one core (issue target)
ORDERS = 8  # scans are spread round-robin over this many collected orders
START = datetime(2026, 3, 2, tzinfo=UTC)

NETWORK_YAML = """\
network:
  id: bench-net
  name: Ledger benchmark network
nodes:
  - id: h-bench
    name: Benchmark hospital
    kind: hospital
    fin: A9001
    timezone: Asia/Shanghai
    location: {city: Shanghai, country: CN, latitude: 31.2, longitude: 121.5}
    capabilities: {apheresis_chairs: 4, infusion_beds: 4}
  - id: hub-bench
    name: Benchmark hub
    kind: regional_hub
    fin: A9002
    timezone: Asia/Shanghai
    location: {city: Suzhou, country: CN, latitude: 31.3, longitude: 120.6}
    capabilities:
      qc_lab: true
      manufacturing: [{platform: CliniMACS Prodigy, units: 16, run_days: 12}]
lanes:
  - {from: h-bench, to: hub-bench, transport_hours: 3, days: [mon, tue, wed, thu, fri, sat, sun]}
"""

BARE_INSERT = (
    "INSERT INTO ledger_events (id, log_id, seq, order_coi, kind, body, hash, tree_nodes) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
Row = tuple[int, int, int, str | None, str, bytes, bytes, bytes]


def seed(engine: Engine, clock: ManualClock) -> tuple[Principal, list[tuple[str, str]]]:
    """Register the network, add a courier and an operator, and take ORDERS orders to COLLECTED."""
    with SqlUnitOfWork(engine) as uow:
        network = register_network(uow, NETWORK_YAML, "bench-network.yaml", SYSTEM, clock)
    for node in network.nodes:
        with SqlUnitOfWork(engine) as uow:
            open_slots(uow, OpenSlots(node=node.id, first_day=START.date(), days=28), SYSTEM, clock)
    users = {}
    for name, home, role in (("op-bench", "h-bench", Role.NODE_OPERATOR), ("courier", "hub-bench", Role.COURIER)):
        with SqlUnitOfWork(engine) as uow:
            command = NewUser(username=name, full_name=name.title(), node=home, roles=[role], password="x" * 16)
            users[name] = create_user(uow, command, SYSTEM, clock)
    operator = users["op-bench"]
    labels = []
    for number in range(ORDERS):
        patient = EnrollPatient(
            treatment_site="h-bench", mrn=f"MRN-{number}", full_name=f"Patient {number}", birth_date=date(1970, 1, 1)
        )
        with SqlUnitOfWork(engine) as uow:
            order = enroll(uow, patient, operator, clock)
        with SqlUnitOfWork(engine) as uow:
            booking = book(uow, order.coi, BookOrder(), operator, clock)
        clock.set(max(clock.now(), booking.apheresis.ends))
        with SqlUnitOfWork(engine) as uow:
            order = advance(uow, order.coi, AdvanceOrder(to=OrderState.COLLECTED), operator, clock)
        assert order.collection_din is not None
        labels.append((order.coi, order.collection_din))
    return users["courier"], labels


class ScanFactory:
    """Custody scans as an API body would carry them, parsed by Pydantic; varied so bodies differ."""

    def __init__(self, labels: Sequence[tuple[str, str]]) -> None:
        self.labels = labels
        self.made = 0
        self.seconds = 0.0

    def batch(self, size: int) -> list[CustodyScan]:
        started = time.perf_counter()
        scans = []
        for i in range(self.made, self.made + size):
            coi, din = self.labels[i % len(self.labels)]
            body: dict[str, Any] = {
                "label": {"coi": coi, "din": din},
                "node": "hub-bench" if i % 2 else "h-bench",
                "temperature_c": 2.0 + (i % 60) / 10,
            }
            if i % 10 == 0:
                body["note"] = f"courier hand-over {i}"
            scans.append(CustodyScan.model_validate(body))
        self.made += size
        self.seconds += time.perf_counter() - started
        return scans


def ingest(engine: Engine, clock: ManualClock, actor: Principal, scans: ScanFactory, total: int, batch: int) -> float:
    """Seconds spent in ``record_scans`` transactions (commit included) to ingest ``total`` scans."""
    elapsed = 0.0
    done = 0
    while done < total:
        size = min(batch, total - done)
        commands = scans.batch(size)
        clock.advance(timedelta(seconds=1))
        started = time.perf_counter()
        with SqlUnitOfWork(engine) as uow:
            seqs = record_scans(uow, commands, actor, clock)
        elapsed += time.perf_counter() - started
        assert len(seqs) == size
        done += size
    return elapsed


def stored_rows(engine: Engine, first: int, last: int) -> list[Row]:
    e = t.ledger_events.c
    query = (
        select(e.id, e.log_id, e.seq, e.order_coi, e.kind, e.body, e.hash, e.tree_nodes)
        .where(e.id.between(first, last))
        .order_by(e.id)
    )
    with engine.connect() as connection:
        return [
            (row_id, log_id, seq, coi, kind, bytes(body), bytes(digest), bytes(nodes))
            for row_id, log_id, seq, coi, kind, body, digest, nodes in connection.execute(query)
        ]


def bare_insert(connection: sqlite3.Connection, rows: Sequence[Row], batch: int) -> float:
    """Seconds to insert ``rows`` with one BEGIN IMMEDIATE ... COMMIT per ``batch`` rows."""
    started = time.perf_counter()
    for offset in range(0, len(rows), batch):
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(BARE_INSERT, rows[offset : offset + batch])
        connection.execute("COMMIT")
    return time.perf_counter() - started


def best_of(runs: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(runs))


def verify_seconds(engine: Engine) -> tuple[float, int]:
    checked = 0

    def once() -> float:
        nonlocal checked
        started = time.perf_counter()
        with SqlUnitOfWork(engine, write=False) as uow:
            report = verify_ledger(uow, SYSTEM)
        seconds = time.perf_counter() - started
        assert report.ok, report.findings
        checked = report.events
        return seconds

    return best_of(3, once), checked


def sha256_chain_seconds(bodies: Sequence[bytes]) -> float:
    def once() -> float:
        sha256 = hashlib.sha256
        started = time.perf_counter()
        previous = bytes(32)
        for body in bodies:
            previous = sha256(previous + body).digest()
        return time.perf_counter() - started

    return best_of(3, once)


def rate(events: int, seconds: float) -> float:
    return events / seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000, help="scans ingested in batches (default 200,000)")
    parser.add_argument("--single", type=int, default=2_000, help="scans ingested one per transaction (2,000)")
    parser.add_argument("--batch", type=int, default=1_000, help="scans per record_scans call (default 1,000)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the database files (default: temp)")
    args = parser.parse_args(argv)
    pinned = pin_to_one_core()
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 150))  # keep the table on one line per row in logs
    with tempfile.TemporaryDirectory(prefix="cellrail-bench-", dir=args.dir) as workdir:
        engine = open_store(f"sqlite:///{Path(workdir) / 'cellrail.db'}")
        clock = ManualClock(START)
        actor, labels = seed(engine, clock)
        scans = ScanFactory(labels)
        with engine.connect() as connection:
            seeded = int(connection.execute(select(func.max(t.ledger_events.c.id))).scalar_one())

        console.print(f"(a) {args.single:,} scans, one transaction each ...")
        single_seconds = ingest(engine, clock, actor, scans, args.single, 1)
        console.print(f"(b) {args.events:,} scans in batches of {args.batch:,} ...")
        batched_seconds = ingest(engine, clock, actor, scans, args.events, args.batch)

        single_rows = stored_rows(engine, seeded + 1, seeded + args.single)
        batched_rows = stored_rows(engine, seeded + args.single + 1, seeded + args.single + args.events)
        console.print("    bare sqlite3 baselines ...")
        store = Path(workdir) / "cellrail.db"
        with engine.connect() as connection:
            logs = [tuple(row) for row in connection.execute(select(t.ledger_logs.c.id, t.ledger_logs.c.origin))]
        bare = bare_connection(Path(workdir) / "bare.db", product_schema(store), logs)
        bare_single_seconds = bare_insert(bare, single_rows, 1)
        bare_batched_seconds = bare_insert(bare, batched_rows, args.batch)
        bare.close()

        console.print("(c) verifying the whole ledger ...")
        verify_time, checked = verify_seconds(engine)
        all_bodies = [row[5] for row in stored_rows(engine, 1, checked)]
        sha_time = sha256_chain_seconds(all_bodies)
        database_bytes = sum(p.stat().st_size for p in Path(workdir).glob("cellrail.db*"))
        engine.dispose()

    figures = [
        Figure(
            "(a) ingest, 1 scan per transaction",
            rate(args.single, single_seconds),
            "events/s",
            "sqlite3 INSERT, 1 commit per row",
            rate(args.single, bare_single_seconds),
            None,
        ),
        Figure(
            f"(b) ingest, {args.batch:,} scans per call",
            rate(args.events, batched_seconds),
            "events/s",
            f"sqlite3 executemany, 1 commit per {args.batch:,}",
            rate(args.events, bare_batched_seconds),
            BATCHED_TARGET,
        ),
        Figure(
            f"(c) verify_ledger, {checked:,} events",
            rate(checked, verify_time),
            "events/s",
            "hashlib.sha256 chain, same bytes",
            rate(checked, sha_time),
            VERIFY_TARGET,
        ),
    ]
    header = [
        f"CellRail ledger benchmark: Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{cpu_model()}, nproc {os.cpu_count()}, {pinned}",
    ]
    made = scans.made
    notes = [
        f"Building the {made:,} CustodyScan commands with Pydantic (excluded above) took {scans.seconds:.2f} s "
        f"({rate(made, scans.seconds):,.0f} commands/s).",
        f"Ledger: {checked:,} events ({seeded} from seeding), database files {database_bytes / 1e6:,.1f} MB; "
        "verification and its baseline are best of 3.",
        "ratio = value / baseline: the share of the physical limit the service layer reaches (1.00 = no overhead).",
    ]
    report(console, "Custody ledger on SQLite (WAL, synchronous=FULL), one core", figures, header, notes)
    return 0 if all(f.met for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
