"""Auditor-grade custody ledger on SQLite: appends with their Merkle nodes, inclusion proofs, full re-verification.

    python benchmarks/ledger_audit.py [--events 1000000] [--single 2000] [--batch 10000] [--sites 4]
                                      [--checkpoint-every 100000] [--proofs 20000] [--dir DIR]

The ledger holds ``--events`` custody scans (``custody.scan`` events with a realistic payload: CoI, DIN, state,
temperature, a note on every tenth) spread round-robin over ``--sites`` site logs, plus the network log's
registration event. Each figure is printed next to a bare baseline measured in the same run:

(a) durable appends, one ``record`` call per event in its own ``SqlUnitOfWork`` with its commit, against a bare
    sqlite3 loop inserting the same event row (with the tree nodes it carries) with one ``BEGIN IMMEDIATE ...
    COMMIT`` each;
(b) batched appends, ``--batch`` events per ``record`` call and commit (how the ledger is built), against bare
    ``executemany`` of the same event rows with one commit per batch;
(c) inclusion proofs generated with ``audit.inclusion_proofs`` (one batch per log) against each site's checkpoint
    at the full ledger
    and checked with ``verifier.verify_inclusion``, against bare ``hashlib.sha256`` over the same number of
    hashes (the leaf and one node per proof hash);
(d) ``audit.verify_ledger`` over the whole ledger (chain, Merkle root, consistency, signatures), against a bare
    ``hashlib.sha256`` chain over the same stored bodies.

Checkpoints are signed (Ed25519 keys from ``keyring.create_key``, listed in the network file) every
``--checkpoint-every`` events and once at the end, outside the timed regions, so the consistency pass has work.
The store is a file database opened with ``open_store`` (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``); the
bare baselines use the same pragmas and the product's own table definitions (copied from the store) on a file
next to it. Events are built outside the timed regions. The process is pinned to one core where the OS allows it.
"""

from __future__ import annotations

import argparse
import binascii
import hashlib
import os
import platform
import random
import resource
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy import event as sqlalchemy_event

from bare_sqlite import add_logs, bare_connection, product_schema
from cellrail.demo.journeys import with_site_keys
from cellrail.kernel.clock import ManualClock
from cellrail.kernel.identifiers import DIN, ChainOfIdentity
from cellrail.rail.access_control import SYSTEM, Role
from cellrail.rail.audit import inclusion_proof, inclusion_proofs, publish_checkpoints, verify_ledger
from cellrail.rail.ledger import CustodyEvent, EventKind, encode
from cellrail.rail.recording import origin, record
from cellrail.rail.services import register_network
from cellrail.store.engine import open_store
from cellrail.store.keyring import load_signers
from cellrail.store.uow import SqlUnitOfWork
from cellrail.transparency.verifier import leaf_hash, verify_inclusion
from machine import cpu_model, pin_to_one_core
from reporting import Figure, report

SINGLE_TARGET = 1_000.0  # events/s, one commit per event (issue target)
BATCHED_TARGET = 50_000.0  # events/s, batched appends (issue target)
PROOF_TARGET = 10_000.0  # proofs/s, generated and verified (issue target)
VERIFY_TARGET = 10.0  # seconds for the whole ledger on one core (issue target)
START = datetime(2026, 3, 2, 8, tzinfo=UTC)
NETWORK_ID = "audit-bench"
LABELS = 512  # orders whose labels the scans cycle through
SITES = (  # (id, kind, FIN, city, country, latitude, longitude)
    ("hub-suzhou", "regional_hub", "A9101", "Suzhou", "CN", 31.30, 120.59),
    ("h-shanghai", "hospital", "A9102", "Shanghai", "CN", 31.23, 121.47),
    ("h-beijing", "hospital", "A9103", "Beijing", "CN", 39.90, 116.41),
    ("h-wuhan", "hospital", "A9104", "Wuhan", "CN", 30.59, 114.31),
    ("h-chengdu", "hospital", "A9105", "Chengdu", "CN", 30.57, 104.07),
    ("hub-guangzhou", "regional_hub", "A9106", "Guangzhou", "CN", 23.13, 113.26),
    ("h-xian", "hospital", "A9107", "Xi'an", "CN", 34.34, 108.94),
    ("h-hangzhou", "hospital", "A9108", "Hangzhou", "CN", 30.27, 120.16),
)
STATES = ("collected", "shipped_to_manufacturing", "received_at_manufacturing", "shipped_to_site")
BARE_EVENT = (
    "INSERT INTO ledger_events (log_id, seq, order_coi, kind, body, hash, tree_nodes) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
EventRow = tuple[int, int, str | None, str, bytes, bytes, bytes]


def network_yaml(sites: int) -> str:
    lines = [
        "network:",
        f"  id: {NETWORK_ID}",
        "  name: Auditor-grade ledger benchmark network",
        "nodes:",
    ]
    for node, kind, fin, city, country, latitude, longitude in SITES[:sites]:
        lines += [
            f"  - id: {node}",
            f"    name: Benchmark {kind.replace('_', ' ')} {city}",
            f"    kind: {kind}",
            f"    fin: {fin}",
            "    timezone: Asia/Shanghai",
            f'    location: {{city: "{city}", country: {country}, latitude: {latitude}, longitude: {longitude}}}',
        ]
        if kind == "regional_hub":
            lines.append("    capabilities:")
            lines.append("      qc_lab: true")
            lines.append("      manufacturing: [{platform: CliniMACS Prodigy, units: 16, run_days: 12}]")
        else:
            lines.append("    capabilities: {apheresis_chairs: 4, infusion_beds: 4}")
    hub = SITES[0][0]  # every hospital sends its cells to the first hub
    lanes = [f"  - {{from: {site[0]}, to: {hub}, transport_hours: 4}}" for site in SITES[1:sites]]
    if lanes:
        lines += ["lanes:", *lanes]
    return "\n".join(lines) + "\n"


class ScanEvents:
    """Custody scans as ``services.record_scans`` builds them, varied so that no two bodies are the same."""

    def __init__(self, sites: Sequence[str]) -> None:
        self.sites = sites
        fins = [site[2] for site in SITES[: len(sites)]]
        self.labels = [
            (str(ChainOfIdentity.from_number(fins[n % len(fins)], 26, n)), str(DIN(fins[n % len(fins)], 26, n + 1)))
            for n in range(LABELS)
        ]
        self.made = 0
        self.seconds = 0.0

    def batch(self, size: int) -> list[CustodyEvent]:
        started = time.perf_counter()
        events = []
        sites, labels = self.sites, self.labels
        for i in range(self.made, self.made + size):
            coi, din = labels[(i // len(sites)) % len(labels)]
            data: dict[str, Any] = {"state": STATES[i % len(STATES)], "temperature_c": 2.0 + (i % 60) / 10}
            if i % 10 == 0:
                data["note"] = f"courier hand-over {i}"
            at = START + timedelta(seconds=i)
            events.append(
                CustodyEvent(
                    EventKind.CUSTODY_SCAN, sites[i % len(sites)], "courier", Role.COURIER.value, at, coi, din, data
                )
            )
        self.made += size
        self.seconds += time.perf_counter() - started
        return events


class Readback:
    """Reads the rows the product stored since the last call, for the bare baselines (never timed)."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path)
        self.last_event = 0
        self.events_read = 0
        self.nodes_read = 0

    def since_last(self, bare: sqlite3.Connection) -> list[EventRow]:
        """The new event rows; the bare database gets any new log names first (untimed), for its foreign key."""
        add_logs(bare, self.connection.execute("SELECT id, origin FROM ledger_logs").fetchall())
        events = self.connection.execute(
            "SELECT id, log_id, seq, order_coi, kind, body, hash, tree_nodes FROM ledger_events WHERE id > ? "
            "ORDER BY id",
            (self.last_event,),
        ).fetchall()
        if events:
            self.last_event = events[-1][0]
        self.events_read += len(events)
        self.nodes_read += sum(len(row[-1]) for row in events) // 32
        return [row[1:] for row in events]

    def bodies(self, log: str) -> Iterator[bytes]:
        query = (
            "SELECT body FROM ledger_events WHERE log_id = (SELECT id FROM ledger_logs WHERE origin = ?) ORDER BY seq"
        )
        for (body,) in self.connection.execute(query, (log,)):
            yield body


def bare_batch(connection: sqlite3.Connection, events: Sequence[EventRow]) -> float:
    """Seconds to store one batch of event rows (each with the tree nodes it carries) in one transaction."""
    started = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(BARE_EVENT, events)
    connection.execute("COMMIT")
    return time.perf_counter() - started


def bare_singles(connection: sqlite3.Connection, events: Sequence[EventRow]) -> float:
    """Seconds to store each event row (with the tree nodes it carries), one transaction per event."""
    started = time.perf_counter()
    for event in events:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(BARE_EVENT, event)
        connection.execute("COMMIT")
    return time.perf_counter() - started


def sign(engine: Engine, signers: dict[str, Any], clock: ManualClock) -> tuple[int, float]:
    started = time.perf_counter()
    with SqlUnitOfWork(engine) as uow:
        signed = publish_checkpoints(uow, signers, clock)
    return len(signed), time.perf_counter() - started


def append_batches(
    engine: Engine,
    clock: ManualClock,
    events: ScanEvents,
    total: int,
    batch: int,
    every: int,
    signers: dict[str, Any],
    readback: Readback,
    bare: sqlite3.Connection,
) -> tuple[float, float, int, float]:
    """(record seconds, bare seconds, checkpoints signed, signing seconds) for ``total`` events in batches."""
    seconds = bare_seconds = signing = 0.0
    signed = 0
    done = 0
    while done < total:
        size = min(batch, total - done)
        chunk = events.batch(size)
        clock.advance(timedelta(seconds=1))
        started = time.perf_counter()
        with SqlUnitOfWork(engine) as uow:
            entries = record(uow, clock, *chunk)
            uow.commit()
        seconds += time.perf_counter() - started
        assert len(entries) == size
        before = done
        done += size
        bare_seconds += bare_batch(bare, readback.since_last(bare))
        if done // every > before // every:
            count, took = sign(engine, signers, clock)
            signed += count
            signing += took
    return seconds, bare_seconds, signed, signing


def append_singles(
    engine: Engine, clock: ManualClock, events: ScanEvents, total: int, readback: Readback, bare: sqlite3.Connection
) -> tuple[float, float]:
    """(record seconds, bare seconds) for ``total`` events, one transaction each."""
    seconds = 0.0
    for event in events.batch(total):
        clock.advance(timedelta(milliseconds=10))
        started = time.perf_counter()
        with SqlUnitOfWork(engine) as uow:
            record(uow, clock, event)
            uow.commit()
        seconds += time.perf_counter() - started
    return seconds, bare_singles(bare, readback.since_last(bare))


def proofs(engine: Engine, logs: Sequence[str], count: int) -> tuple[float, float, float, int]:
    """(generation seconds, verification seconds, bare hashing seconds, hashes) for ``count`` random proofs."""
    chooser = random.Random(9162)
    with SqlUnitOfWork(engine, write=False) as uow:
        sizes = {}
        for log in logs:
            checkpoint = uow.checkpoints.latest(log)
            assert checkpoint is not None
            sizes[log] = (checkpoint.size, checkpoint.root)
        wanted = []
        for _ in range(count):
            log = logs[chooser.randrange(len(logs))]
            wanted.append((log, chooser.randint(1, sizes[log][0])))
        started = time.perf_counter()
        by_log: dict[str, list[int]] = {}
        for log, seq in wanted:
            by_log.setdefault(log, []).append(seq)
        documents = [
            document
            for log, seqs in by_log.items()
            for document in inclusion_proofs(uow, log, seqs, sizes[log][0], SYSTEM)
        ]
        generated = time.perf_counter() - started

    b64decode = binascii.a2b_base64  # what base64.b64decode calls, without its per-call argument conversion
    started = time.perf_counter()
    for document in documents:
        verify_inclusion(
            leaf_hash(b64decode(document["event"]["body"])),
            document["leaf_index"],
            document["tree_size"],
            [b64decode(item) for item in document["proof"]],
            sizes[document["origin"]][1],
        )
    verified = time.perf_counter() - started

    work = [(b64decode(d["event"]["body"]), [b64decode(item) for item in d["proof"]]) for d in documents]
    hashes = sum(1 + len(path) for _, path in work)
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for body, path in work:
        digest = sha256(b"\x00" + body).digest()
        for item in path:
            digest = sha256(b"\x01" + item + digest).digest()
    bare = time.perf_counter() - started
    return generated, verified, bare, hashes


class StatementCounter:
    """Counts the SQL statements an engine sends to the database (BEGIN included; COMMIT is a DBAPI call)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0

    def __enter__(self) -> StatementCounter:
        sqlalchemy_event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_: object) -> None:
        sqlalchemy_event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: object) -> None:
        self.count += 1


@dataclass(frozen=True)
class Costs:
    statements_per_append: int
    encode_us: float
    statements_per_proof: float


def costs(engine: Engine, clock: ManualClock, site_ids: Sequence[str], logs: Sequence[str]) -> Costs:
    """Where the time goes, measured on the side (nothing here is stored or timed in the figures)."""
    probe = ScanEvents(site_ids).batch(10_000)
    with StatementCounter(engine) as appends, SqlUnitOfWork(engine) as uow:
        record(uow, clock, probe[0])  # no commit: rolled back, nothing stored
    now = clock.now()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for seq, scan in enumerate(probe, start=1):
            encode(scan, seq, now, logs[0])
        best = min(best, time.perf_counter() - started)
    with SqlUnitOfWork(engine, write=False) as uow:
        size = uow.ledger.logs()[logs[0]]
        with StatementCounter(engine) as proofs:
            for seq in range(1, size + 1, max(size // 100, 1)):
                inclusion_proof(uow, logs[0], seq, size, SYSTEM)
        calls = len(range(1, size + 1, max(size // 100, 1)))
    return Costs(appends.count, best / len(probe) * 1e6, proofs.count / calls)


def verify_whole(engine: Engine, expected_events: int, readback: Readback, logs: Sequence[str]) -> tuple[float, float]:
    """(verify_ledger seconds, bare sha256 chain seconds over the same bodies, log by log)."""
    started = time.perf_counter()
    with SqlUnitOfWork(engine, write=False) as uow:
        report = verify_ledger(uow, SYSTEM)
    seconds = time.perf_counter() - started
    assert report.ok, report.findings[:5]
    assert report.events == expected_events, (report.events, expected_events)
    bare = 0.0
    sha256 = hashlib.sha256
    for log in logs:
        bodies = list(readback.bodies(log))
        started = time.perf_counter()
        previous = bytes(32)
        for body in bodies:
            previous = sha256(previous + body).digest()
        bare += time.perf_counter() - started
    return seconds, bare


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="custody events in the ledger (1,000,000)")
    parser.add_argument("--single", type=int, default=2_000, help="of which appended one commit each (2,000)")
    parser.add_argument("--batch", type=int, default=10_000, help="events per record() call (10,000)")
    parser.add_argument("--sites", type=int, default=4, choices=range(1, len(SITES) + 1), help="site logs (4)")
    parser.add_argument("--checkpoint-every", type=int, default=100_000, help="sign checkpoints every N (100,000)")
    parser.add_argument("--proofs", type=int, default=20_000, help="inclusion proofs generated and checked (20,000)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the database files (default: temp)")
    args = parser.parse_args(argv)
    if not 0 < args.single < args.events:
        parser.error("--single must be between 1 and --events - 1")
    began = time.perf_counter()
    pinned = pin_to_one_core()
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 150))  # keep the table on one line per row in logs
    site_ids = [site[0] for site in SITES[: args.sites]]
    logs = [origin(NETWORK_ID, site) for site in site_ids]
    with tempfile.TemporaryDirectory(prefix="cellrail-audit-", dir=args.dir) as workdir:
        work = Path(workdir)
        engine = open_store(f"sqlite:///{work / 'cellrail.db'}")
        clock = ManualClock(START)
        text = with_site_keys(network_yaml(args.sites), work / "keys")
        with SqlUnitOfWork(engine) as uow:
            register_network(uow, text, "audit-bench.yaml", SYSTEM, clock)
        signers = load_signers(work / "keys")
        assert len(signers) == args.sites + 1, sorted(signers)
        readback = Readback(work / "cellrail.db")
        bare = bare_connection(work / "bare.db", product_schema(work / "cellrail.db"))
        readback.since_last(bare)  # the registration event: not part of any figure
        events = ScanEvents(site_ids)

        batched = args.events - args.single
        console.print(
            f"(b) {batched:,} events in record() calls of {args.batch:,}, checkpoints every "
            f"{args.checkpoint_every:,} ..."
        )
        batch_seconds, bare_batch_seconds, signed, signing = append_batches(
            engine, clock, events, batched, args.batch, args.checkpoint_every, signers, readback, bare
        )
        console.print(f"(a) {args.single:,} events, one record() call and commit each ...")
        single_seconds, bare_single_seconds = append_singles(engine, clock, events, args.single, readback, bare)
        bare.close()
        count, took = sign(engine, signers, clock)
        signed, signing = signed + count, signing + took

        console.print(f"(c) {args.proofs:,} inclusion proofs against the checkpoints at {args.events:,} events ...")
        generated, verified, bare_proofs, proof_hashes = proofs(engine, logs, args.proofs)
        console.print(f"(d) verify_ledger over {args.events + 1:,} events ...")
        verify_seconds, chain_seconds = verify_whole(
            engine, args.events + 1, readback, [*logs, origin(NETWORK_ID, "network")]
        )
        spent = costs(engine, clock, site_ids, logs)
        with SqlUnitOfWork(engine, write=False) as uow:
            sizes = uow.ledger.logs()
            checkpoints = sum(len(uow.checkpoints.history(log)) for log in sizes)
        (event_rows, node_bytes) = readback.connection.execute(
            "SELECT count(*), sum(length(tree_nodes)) FROM ledger_events"
        ).fetchone()
        node_rows = node_bytes // 32
        assert (readback.events_read, readback.nodes_read) == (event_rows, node_rows), (
            "the bare baseline must store every row"
        )
        readback.connection.close()
        engine.dispose()
        database_bytes = sum(p.stat().st_size for p in work.glob("cellrail.db*"))

    proofs_both = generated + verified
    nodes_per_event = node_rows / (args.events + 1)
    figures = [
        Figure(
            "(a) record(), 1 event per transaction",
            args.single / single_seconds,
            "events/s",
            "sqlite3 INSERTs, 1 commit per event",
            args.single / bare_single_seconds,
            SINGLE_TARGET,
        ),
        Figure(
            f"(b) record(), {args.batch:,} events per call",
            batched / batch_seconds,
            "events/s",
            f"sqlite3 executemany, 1 commit per {args.batch:,}",
            batched / bare_batch_seconds,
            BATCHED_TARGET,
        ),
        Figure(
            "(c) inclusion proofs generated + verified",
            args.proofs / proofs_both,
            "proofs/s",
            "hashlib.sha256, same number of hashes",
            args.proofs / bare_proofs,
            PROOF_TARGET,
        ),
        Figure(
            f"(d) verify_ledger, {args.events + 1:,} events",
            verify_seconds,
            "s",
            "hashlib.sha256 chain, same bodies",
            chain_seconds,
            VERIFY_TARGET,
            higher_is_better=False,
        ),
    ]
    header = [
        f"CellRail auditor-grade ledger benchmark: Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {cpu_model()}, nproc {os.cpu_count()}, {pinned}",
    ]
    sizes_text = ", ".join(f"{log.rsplit('/', 1)[1]} {size:,}" for log, size in sorted(sizes.items()))
    notes = [
        f"(a) in detail: {1e6 / figures[0].value:,.0f} µs per event, of which "
        f"{1e6 / figures[0].baseline_value:,.0f} µs for the bare rows and commit; "
        f"{spent.statements_per_append} SQL statements per append before COMMIT.",
        f"(b) in detail: {1e6 / figures[1].value:.1f} µs per event, of which {1e6 / figures[1].baseline_value:.1f} µs "
        f"for the bare rows (event with {nodes_per_event:.2f} tree nodes in it) and {spent.encode_us:.1f} µs in "
        "ledger.encode (the canonical JSON).",
        f"(c) in detail: generation {args.proofs / generated:,.0f} proofs/s "
        "(inclusion_proofs, one batch per log, one read transaction), "
        f"verification {args.proofs / verified:,.0f} proofs/s (base64 + leaf hash + verify_inclusion); "
        f"{proof_hashes / args.proofs:.1f} hashes and {spent.statements_per_proof:.1f} SQL statements per proof.",
        f"(d) in detail: {(args.events + 1) / verify_seconds:,.0f} events/s, all four passes over {len(sizes)} logs "
        f"and {checkpoints} signed checkpoints.",
        f"Ledger: {sizes_text} events; database files {database_bytes / 1e6:,.0f} MB. {signed} checkpoints signed "
        f"in {signing:.2f} s (excluded above).",
        f"Building the {events.made:,} CustodyEvents (excluded above) took {events.seconds:.2f} s. "
        f"Peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB.",
        "ratio = value / baseline for rates, baseline / value for times: the share of the bare limit reached.",
        f"Total run time {time.perf_counter() - began:,.0f} s.",
    ]
    report(console, "Auditor-grade custody ledger on SQLite (WAL, synchronous=FULL), one core", figures, header, notes)
    return 0 if all(f.met for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
