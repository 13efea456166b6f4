"""Crash recovery: every custody event acknowledged before a SIGKILL is still in the ledger afterwards.

A child process seeds a SQLite store with one collected order and then ingests custody scans through
``services.record_scans`` as fast as it can, one transaction per call, printing each acknowledged sequence
number (in the log of the scanning site) only after the commit returned. The parent kills it with SIGKILL
mid-stream, reopens the store and checks that no acknowledged event is missing, that every log's chain still
verifies from genesis, and that the store still accepts and chains new events.

SIGKILL tests a process crash (a torn transaction, a hot WAL left behind). Surviving power loss as well is what
``synchronous=FULL`` is for; that cannot be simulated from a test.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cellrail.kernel.clock import ManualClock
from cellrail.rail.access_control import SYSTEM
from cellrail.rail.accounts import principal_of
from cellrail.rail.audit import verify_ledger
from cellrail.rail.recording import origin
from cellrail.rail.services import CustodyScan, LabelScan, record_scans
from cellrail.store import tables as t
from cellrail.store.engine import open_store
from cellrail.store.uow import SqlUnitOfWork
from tests.conftest import START

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
OPERATOR = "op-a"
NODE = "h-a"
LOG = origin("test-net", NODE)  # the log of the node where the scans are made (tests/conftest.py's network)
DEADLINE_SECONDS = 20.0  # per child: seeding plus ingesting until enough acknowledgements arrived

# The child: seed a network and one collected order, then ingest scans until killed. An acknowledgement line
# ("ack seq seq ...") is printed and flushed only after record_scans returned, i.e. after the commit returned.
CHILD = """\
import sys
from datetime import date, timedelta

from cellrail.kernel.clock import ManualClock
from cellrail.rail.access_control import Role
from cellrail.rail.orders import OrderState
from cellrail.rail.services import (
    AdvanceOrder, BookOrder, CustodyScan, EnrollPatient, LabelScan, advance, book, enroll, record_scans,
)
from cellrail.store.engine import open_store
from cellrail.store.uow import SqlUnitOfWork
from tests.conftest import START, add_user, seed

url, batch_size, limit, username, node = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
engine = open_store(url)
clock = ManualClock(START)
seed(engine, clock, days=14)
operator = add_user(engine, clock, username, node, Role.NODE_OPERATOR)
patient = EnrollPatient(treatment_site=node, mrn="MRN-1", full_name="Li Wei", birth_date=date(1970, 1, 1))
with SqlUnitOfWork(engine) as uow:
    order = enroll(uow, patient, operator, clock)
with SqlUnitOfWork(engine) as uow:
    booking = book(uow, order.coi, BookOrder(), operator, clock)
clock.set(booking.apheresis.ends)
with SqlUnitOfWork(engine) as uow:
    order = advance(uow, order.coi, AdvanceOrder(to=OrderState.COLLECTED), operator, clock)
label = LabelScan(coi=order.coi, din=order.collection_din)
print("ready", order.coi, order.collection_din, flush=True)
sent = 0
while sent < limit:
    batch = [
        CustodyScan(label=label, node=node, temperature_c=4.0 + (sent + i) % 10 / 10, note=f"scan {sent + i}")
        for i in range(batch_size)
    ]
    clock.advance(timedelta(seconds=1))
    with SqlUnitOfWork(engine) as uow:
        seqs = record_scans(uow, batch, operator, clock)
    print("ack", *seqs, flush=True)
    sent += batch_size
print("limit reached", flush=True)
"""


@dataclass
class ChildRun:
    coi: str
    din: str
    acked: list[int]
    returncode: int
    stderr: str


def _lines(buffer: bytearray) -> list[str]:
    """Complete lines taken off the front of ``buffer``; a trailing partial line stays (it was never acked)."""
    end = buffer.rfind(b"\n")
    if end < 0:
        return []
    text = bytes(buffer[: end + 1]).decode()
    del buffer[: end + 1]
    return text.splitlines()


def _run_and_kill(tmp_path: Path, url: str, batch_size: int, kill_after: int) -> ChildRun:
    """Start the child, wait until it acknowledged ``kill_after`` events, SIGKILL it, collect every ack."""
    script = tmp_path / "ingest_child.py"
    script.write_text(CHILD, encoding="utf-8")
    stderr_path = tmp_path / "child.stderr"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(script), url, str(batch_size), "1000000", OPERATOR, NODE],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            bufsize=0,
        )
    assert proc.stdout is not None
    buffer = bytearray()
    lines: list[str] = []
    acked = 0
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while acked < kill_after:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    pytest.fail(f"child acknowledged {acked} events in {DEADLINE_SECONDS} s: {_tail(stderr_path)}")
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    pytest.fail(f"child exited ({proc.wait()}) after {acked} acks: {_tail(stderr_path)}")
                buffer += chunk
                for line in _lines(buffer):
                    lines.append(line)
                    if line.startswith("ack "):
                        acked += len(line.split()) - 1
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the child is inside or between transactions
        returncode = proc.wait(timeout=10)
        buffer += proc.stdout.read()  # acks printed after we stopped reading still count
        lines.extend(_lines(buffer))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    ready = lines[0].split()
    assert ready[0] == "ready", lines[0]
    acks = [int(seq) for line in lines[1:] if line.startswith("ack ") for seq in line.split()[1:]]
    return ChildRun(ready[1], ready[2], acks, returncode, stderr_path.read_text(errors="replace"))


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:] if path.exists() else ""


@pytest.mark.parametrize(
    ("batch_size", "kill_after"),
    [pytest.param(1, 300, id="one-per-transaction"), pytest.param(100, 3000, id="batches-of-100")],
)
def test_acknowledged_scans_survive_sigkill(tmp_path: Path, batch_size: int, kill_after: int) -> None:
    url = f"sqlite:///{tmp_path / 'cellrail.db'}"
    run = _run_and_kill(tmp_path, url, batch_size, kill_after)
    assert run.returncode == -signal.SIGKILL, f"child was not killed mid-stream: {run.stderr[-2000:]}"
    assert len(run.acked) >= kill_after
    assert run.acked == sorted(set(run.acked)), "acknowledged sequence numbers must be unique and increasing"

    engine = open_store(url)  # also re-runs migrations on the crashed file: must be a no-op
    try:
        with SqlUnitOfWork(engine, write=False) as uow:
            report = verify_ledger(uow, SYSTEM)
            query = (
                select(t.ledger_events.c.seq)
                .join(t.ledger_logs, t.ledger_logs.c.id == t.ledger_events.c.log_id)
                .where(t.ledger_logs.c.origin == LOG)
            )
            stored = set(uow.ledger.c.execute(query).scalars())  # the scans' log: the node where they were made
            total = uow.ledger.size()
            operator = uow.users.get(OPERATOR)
        missing = sorted(set(run.acked) - stored)
        assert not missing, f"{len(missing)} acknowledged events lost, first {missing[:5]}"
        assert report.ok, report.findings
        assert report.events == total
        assert len(stored) == max(stored) >= run.acked[-1]

        # The recovered store still takes new events, chained onto the recovered head.
        assert operator is not None
        clock = ManualClock(START + timedelta(days=30))
        label = LabelScan(coi=run.coi, din=run.din)
        scans = [CustodyScan(label=label, node=NODE, note="after crash") for _ in range(batch_size)]
        with SqlUnitOfWork(engine) as uow:
            seqs = record_scans(uow, scans, principal_of(operator), clock)
        assert seqs == list(range(max(stored) + 1, max(stored) + 1 + batch_size))
        with SqlUnitOfWork(engine, write=False) as uow:
            after = verify_ledger(uow, SYSTEM)
            assert uow.ledger.logs()[LOG] == max(stored) + batch_size
        assert after.ok, after.findings
        assert after.events == report.events + batch_size
    finally:
        engine.dispose()
