"""API hand-offs over HTTP: custody checkpoints through the real app, next to the same app's trivial endpoint.

    python benchmarks/api_handoff.py [--requests N] [--clients C] [--dir DIR]

(1) hand-offs: ``POST /api/v1/scans`` with one custody checkpoint per request (a courier scanning the collection
    bag of an order in transit, with valid labels), authenticated with a bearer token;
(2) baseline: ``GET /health`` of the same app in the same run, with the same number of clients. It touches
    neither the store nor authentication, so it is the floor of the framework (uvicorn + FastAPI + the
    loopback round trip).

The store is a SQLite file database in a temporary directory opened with ``open_store`` (WAL,
``synchronous=FULL``, ``BEGIN IMMEDIATE``). The script registers ``examples/regional.yaml``, creates one operator
per hospital and one courier, and takes one order per hospital to ``shipped_to_manufacturing`` through the
services, so each bag is in the courier's custody. The app (``create_app`` with the system clock) is then served
by uvicorn, configured as ``cellrail serve`` does, in a separate process on a free port of 127.0.0.1, and driven
by C concurrent clients on one asyncio loop (one ``httpx.AsyncClient`` each, with one keep-alive connection). The
server and the load generator share the machine's cores; neither is pinned.

Afterwards the ledger is verified from genesis, and the custody scans in it must be exactly the ones the
server acknowledged. The script exits with status 1 on any non-2xx answer or any ledger discrepancy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import platform
import socket
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select

from cellrail.kernel.clock import ManualClock
from cellrail.rail.access_control import SYSTEM, Principal, Role
from cellrail.rail.accounts import NewUser, create_user
from cellrail.rail.audit import verify_ledger
from cellrail.rail.ledger import EventKind
from cellrail.rail.orders import OrderState
from cellrail.rail.services import (
    AdvanceOrder,
    BookOrder,
    EnrollPatient,
    LabelScan,
    OpenSlots,
    advance,
    book,
    enroll,
    open_slots,
    register_network,
)
from cellrail.store import tables as t
from cellrail.store.engine import open_store
from cellrail.store.uow import SqlUnitOfWork
from machine import cpu_model

NETWORK_FILE = Path(__file__).resolve().parents[1] / "examples" / "regional.yaml"
HOST = "127.0.0.1"
COURIER = "courier-bench"
PASSWORD = "bench-password-2026"
WARM_UP = 100  # requests of each kind before the measured runs; not in the figures, but in the ledger check
SLOT_DAYS = 28


@dataclass
class Bag:
    """An order whose collection bag is in transit: what the courier's label scan carries."""

    coi: str
    din: str
    site: str
    maker: str


@dataclass
class Run:
    name: str
    latencies: list[float]
    seconds: float
    statuses: Counter[int]
    ok_bodies: list[bytes] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    client_cpu: float = 0.0
    server_cpu: float | None = None

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def failures(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    def percentile_ms(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000

    def per_request_ms(self, seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds / len(self.latencies) * 1000:.2f}"


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of another process (Linux /proc), or None where that is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- seeding, through the services ---------------------------------------------------------------------------


def seed(engine: Engine) -> list[Bag]:
    """Register the regional network, add the people, and put one order per hospital in the courier's hands."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=21 + today.weekday())  # a Monday three to four weeks ago: all of it is past
    clock = ManualClock(start)
    with SqlUnitOfWork(engine) as uow:
        network = register_network(uow, NETWORK_FILE.read_text(encoding="utf-8"), NETWORK_FILE.name, SYSTEM, clock)
    for node in network.nodes:
        with SqlUnitOfWork(engine) as uow:
            open_slots(uow, OpenSlots(node=node.id, first_day=start.date(), days=SLOT_DAYS), SYSTEM, clock)

    def user(name: str, node: str, role: Role) -> Principal:
        command = NewUser(username=name, full_name=name.title(), node=node, roles=[role], password=PASSWORD)
        with SqlUnitOfWork(engine) as uow:
            return create_user(uow, command, SYSTEM, clock)

    user(COURIER, network.nodes[0].id, Role.COURIER)
    bags = []
    for number, hospital in enumerate(network.hospitals(), start=1):
        operator = user(f"op-{hospital.id}", hospital.id, Role.NODE_OPERATOR)
        patient = EnrollPatient(
            treatment_site=hospital.id, mrn=f"MRN-{number}", full_name=f"Patient {number}", birth_date=start.date()
        )
        clock.set(start)
        with SqlUnitOfWork(engine) as uow:
            order = enroll(uow, patient, operator, clock)
        with SqlUnitOfWork(engine) as uow:
            booking = book(uow, order.coi, BookOrder(), operator, clock)
        clock.set(booking.apheresis.ends)
        with SqlUnitOfWork(engine) as uow:
            order = advance(uow, order.coi, AdvanceOrder(to=OrderState.COLLECTED), operator, clock)
        assert order.collection_din is not None
        assert order.manufacturing_node is not None
        clock.advance(timedelta(hours=1))
        bag = LabelScan(coi=order.coi, din=order.collection_din)
        ship = AdvanceOrder(to=OrderState.SHIPPED_TO_MANUFACTURING, scan=bag)
        with SqlUnitOfWork(engine) as uow:
            shipped = advance(uow, order.coi, ship, operator, clock)
        assert shipped.state is OrderState.SHIPPED_TO_MANUFACTURING
        bags.append(Bag(order.coi, order.collection_din, order.treatment_site, order.manufacturing_node))
    assert clock.now() < datetime.now(UTC)
    return bags


def handoff_bodies(bags: Sequence[Bag], count: int, offset: int) -> list[bytes]:
    """One checkpoint per body, round-robin over the bags, at pick-up or at delivery; no two bodies alike."""
    bodies = []
    for i in range(offset, offset + count):
        bag = bags[i % len(bags)]
        scan: dict[str, object] = {
            "label": {"coi": bag.coi, "din": bag.din},
            "node": bag.maker if i % 2 else bag.site,
            "temperature_c": round(2.0 + (i % 60) / 10, 1),
        }
        if i % 10 == 0:
            scan["note"] = f"courier hand-off {i}"
        bodies.append(json.dumps({"scans": [scan]}).encode())
    return bodies


# ---- the server: a separate process, uvicorn as `cellrail serve` runs it -----------------------------------


def serve(url: str, pipe: Connection) -> None:
    """Child process: open the store, bind a free loopback port, report it, serve until SIGTERM."""
    from cellrail.api.app import create_app

    engine = open_store(url)
    app = create_app(engine)
    # proto=IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it Nagle's algorithm and delayed ACKs halve the throughput of small answers.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    pipe.send(sock.getsockname()[1])
    pipe.close()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
    engine.dispose()


def wait_until_up(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server at {base} did not answer within {timeout:.0f} s")
        time.sleep(0.1)


# ---- the load generator ------------------------------------------------------------------------------------


async def drive(
    pool: Sequence[httpx.AsyncClient],
    name: str,
    method: str,
    path: str,
    bodies: Sequence[bytes | None],
    headers: dict[str, str],
    server_pid: int,
) -> Run:
    """Send ``len(bodies)`` requests, one worker per client; each worker takes the next request when it is free."""
    total = len(bodies)
    latencies = [0.0] * total
    run = Run(name, latencies, 0.0, Counter())
    numbers = itertools.count()

    async def worker(client: httpx.AsyncClient) -> None:
        while (i := next(numbers)) < total:
            started = time.perf_counter()
            try:
                response = await client.request(method, path, content=bodies[i], headers=headers)
            except httpx.HTTPError as error:
                latencies[i] = time.perf_counter() - started
                run.statuses[0] += 1  # counted as non-2xx
                if len(run.refusals) < 5:
                    run.refusals.append(f"{type(error).__name__}: {error}")
                continue
            latencies[i] = time.perf_counter() - started
            run.statuses[response.status_code] += 1
            if 200 <= response.status_code < 300:
                run.ok_bodies.append(response.content)
            elif len(run.refusals) < 5:
                run.refusals.append(f"{response.status_code} {response.text[:300]}")

    server_cpu = process_cpu_seconds(server_pid)
    client_cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in pool))
    run.seconds = time.perf_counter() - started
    run.client_cpu = time.process_time() - client_cpu
    server_after = process_cpu_seconds(server_pid)
    run.server_cpu = None if server_cpu is None or server_after is None else server_after - server_cpu
    return run


async def load(
    base: str, bags: Sequence[Bag], requests: int, clients: int, server_pid: int
) -> tuple[Run, Run, list[Run]]:
    # One AsyncClient per simulated client, each with its own keep-alive connection: one AsyncClient shared by 32
    # tasks spent about 3x the client CPU per request in its connection pool, and capped the baseline well below.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        pool = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base, limits=limits, timeout=120))
            for _ in range(clients)
        ]
        answer = await pool[0].post("/api/v1/auth/token", data={"username": COURIER, "password": PASSWORD})
        answer.raise_for_status()
        auth = {"Authorization": f"Bearer {answer.json()['access_token']}", "Content-Type": "application/json"}
        warm_bodies = handoff_bodies(bags, WARM_UP, 0)
        bodies = handoff_bodies(bags, requests, WARM_UP)
        nothing: list[bytes | None] = [None] * requests
        warm = [
            await drive(pool, "warm-up health", "GET", "/health", nothing[:WARM_UP], {}, server_pid),
            await drive(pool, "warm-up scans", "POST", "/api/v1/scans", warm_bodies, auth, server_pid),
        ]
        health = await drive(pool, "health", "GET", "/health", nothing, {}, server_pid)
        scans = await drive(pool, "scans", "POST", "/api/v1/scans", bodies, auth, server_pid)
    return health, scans, warm


# ---- checking the ledger ------------------------------------------------------------------------------------


def check_ledger(engine: Engine, acknowledged: Sequence[bytes]) -> tuple[list[str], int, int]:
    """Problems found (none expected), events checked, custody scans in the ledger."""
    problems = []
    seqs: list[int] = []
    for body in acknowledged:
        answer = json.loads(body)
        if answer.get("recorded") != 1 or len(answer.get("seqs", ())) != 1:
            problems.append(f"unexpected answer {answer}")
        seqs.extend(answer.get("seqs", ()))
    with SqlUnitOfWork(engine, write=False) as uow:
        report = verify_ledger(uow, SYSTEM)
        size = uow.ledger.size()
    e = t.ledger_events.c
    with engine.connect() as connection:
        # sequence numbers count within each site's log; the comparison below is of the multisets of them
        stored = [seq for (seq,) in connection.execute(select(e.seq).where(e.kind == EventKind.CUSTODY_SCAN.value))]
    if not report.ok:
        problems.append(f"the ledger does not verify: {report.findings}")
    if report.events != size:
        problems.append(f"verified {report.events:,} of {size:,} events")
    if len(stored) != len(acknowledged):
        problems.append(f"{len(stored):,} custody.scan events in the ledger, {len(acknowledged):,} acknowledged")
    if sorted(stored) != sorted(seqs):
        problems.append("the acknowledged sequence numbers are not the custody.scan events in the ledger")
    return problems, report.events, len(stored)


# ---- report -------------------------------------------------------------------------------------------------


def busy(cpu_seconds: float | None, run: Run) -> str:
    """How many cores a process kept busy during ``run``."""
    return "-" if cpu_seconds is None else f"{cpu_seconds / run.seconds:.2f}"


def report(console: Console, health: Run, scans: Run, header: list[str], notes: list[str]) -> None:
    for line in header:
        console.print(line)
    table = Table(title="API hand-offs over loopback HTTP (uvicorn, SQLite WAL, synchronous=FULL)")
    columns = (
        "figure",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "baseline req/s",
        "ratio",
        "non-2xx",
        "server CPU ms/req",
        "client CPU ms/req",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "figure" else "right")
    rows = (
        ("(1) POST /api/v1/scans, 1 checkpoint", scans, f"{health.rate:,.0f}", f"{scans.rate / health.rate:.2f}"),
        ("(2) GET /health (baseline)", health, "-", "-"),
    )
    for name, run, baseline, ratio in rows:
        table.add_row(
            name,
            f"{len(run.latencies):,}",
            f"{run.rate:,.0f}",
            f"{run.percentile_ms(50):.1f}",
            f"{run.percentile_ms(99):.1f}",
            baseline,
            ratio,
            str(run.failures),
            run.per_request_ms(run.server_cpu),
            run.per_request_ms(run.client_cpu),
        )
    console.print(table)
    for line in notes:
        console.print(line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3_000, help="measured requests of each kind (3,000)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the database files (default: temp)")
    args = parser.parse_args(argv)
    if args.requests < 100 or args.clients < 1:
        parser.error("--requests must be at least 100 and --clients at least 1")
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))  # keep the table on one line per row in logs
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cellrail-bench-", dir=args.dir) as workdir:
        url = f"sqlite:///{Path(workdir) / 'cellrail.db'}"
        console.print(f"seeding {NETWORK_FILE.name}: slots, users, one order per hospital in transit ...")
        engine = open_store(url)
        bags = seed(engine)
        engine.dispose()

        spawn = multiprocessing.get_context("spawn")
        receiver, sender = spawn.Pipe(duplex=False)
        server = spawn.Process(target=serve, args=(url, sender), name="cellrail-api", daemon=True)
        server.start()
        sender.close()
        try:
            if not receiver.poll(60):
                raise RuntimeError("the server process did not report its port")
            port = receiver.recv()
            base = f"http://{HOST}:{port}"
            wait_until_up(base)
            assert server.pid is not None
            console.print(
                f"server pid {server.pid} on {base}; {args.clients} clients, {WARM_UP} warm-up and "
                f"{args.requests:,} measured requests of each kind ..."
            )
            health, scans, warm = asyncio.run(load(base, bags, args.requests, args.clients, server.pid))
        finally:
            server.terminate()
            server.join(30)
            if server.is_alive():
                server.kill()
                server.join()

        engine = open_store(url)
        acknowledged = [body for run in (*warm, scans) if run.name.endswith("scans") for body in run.ok_bodies]
        problems, checked, stored = check_ledger(engine, acknowledged)
        engine.dispose()

    failures = health.failures + scans.failures + sum(run.failures for run in warm)
    for run in (*warm, health, scans):
        for refusal in run.refusals[:5]:
            problems.append(f"{run.name}: {refusal}")
    header = [
        f"CellRail API benchmark: Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"uvicorn {uvicorn.__version__} (1 worker, asyncio loop, h11), httpx {httpx.__version__}, "
        f"{cpu_model()}, nproc {os.cpu_count()}",
        f"Server and load generator share the machine's {os.cpu_count()} cores (not pinned); "
        "every request crosses 127.0.0.1.",
    ]
    notes = [
        "ratio = hand-off req/s / GET /health req/s, both measured above (1.00 = a hand-off costs no more than the "
        "trivial endpoint).",
        f"Non-2xx answers: {failures} (warm-up included). Latency: measured by the load generator, send to full "
        f"answer, queueing behind the other {args.clients - 1} clients included.",
        "CPU ms/req: CPU time of the server process (/proc) and of the load generator during each run, per request.",
        f"Cores busy: (1) server {busy(scans.server_cpu, scans)}, load generator {busy(scans.client_cpu, scans)}; "
        f"(2) server {busy(health.server_cpu, health)}, load generator {busy(health.client_cpu, health)}. "
        "Near 1.00 is that side's limit (one Python process, one GIL).",
        f"Ledger after the run: {checked:,} events verify from genesis; {stored:,} custody.scan events = "
        f"{len(acknowledged):,} acknowledged hand-offs ({WARM_UP} warm-up + {args.requests:,} measured).",
        f"Total run time {time.perf_counter() - began:.0f} s.",
    ]
    report(console, health, scans, header, notes)
    if failures or problems:
        for problem in problems:
            console.print(f"[red]{problem}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
