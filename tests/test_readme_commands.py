"""End-to-end tests of what the README promises: `make demo` builds, verifies and serves; the CLI verifies."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
CELLRAIL = [sys.executable, "-m", "cellrail.cli.main"]
DEMO_LOGS = 12  # examples/regional.yaml: eleven sites' logs and the network log
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_make_demo_builds_verifies_and_serves() -> None:
    port = _free_port()
    env = dict(os.environ, CELLRAIL_PORT=str(port), PYTHONUNBUFFERED="1", COLUMNS="160")
    process = subprocess.Popen(
        ["make", "--no-print-directory", "demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.5)
        else:
            pytest.fail("the demo API did not come up")
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/docs", timeout=5).status_code == 200
        login = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "auditor", "password": "cellrail-demo-2026"}, timeout=10
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        verified = httpx.get(f"{base}/api/v1/ledger/verify", headers=headers, timeout=30).json()
        assert (verified["ok"], verified["findings"]) == (True, [])
        assert verified["logs"] == DEMO_LOGS
        assert verified["checked"] > 500
        assert verified["checkpoints"] >= DEMO_LOGS  # every log signed at least once
        orders = httpx.get(f"{base}/api/v1/orders", params={"state": "infused"}, headers=headers, timeout=10).json()
        assert len(orders["orders"]) > 10
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert "Orders by stage" in output
    assert "Vein-to-vein" in output
    assert "Custody ledger verified" in output
    assert "Traceback" not in output


def test_cli_verify_names_the_altered_event(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    built = subprocess.run(
        [*CELLRAIL, "demo", "--no-serve", "--weeks", "2", "--database", str(database)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    url = f"sqlite:///{database}"
    clean = subprocess.run([*CELLRAIL, "verify", "-d", url], capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0
    with sqlite3.connect(database) as db:
        events = db.execute("SELECT count(*) FROM ledger_events").fetchone()[0]
        checkpoints = db.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        # The 40th event of the store, whichever site's log it is in (the demo's dates follow the wall clock).
        log_id, log, seq = db.execute(
            "SELECT log_id, origin, seq FROM ledger_events JOIN ledger_logs ON ledger_logs.id = log_id "
            "WHERE ledger_events.id = 40"
        ).fetchone()
        log_size = db.execute("SELECT max(seq) FROM ledger_events WHERE log_id = ?", (log_id,)).fetchone()[0]
        signed = db.execute("SELECT max(size) FROM checkpoints WHERE log = ?", (log,)).fetchone()[0]
    summary = f"{DEMO_LOGS} logs, {events} events, {checkpoints} signed checkpoints"
    assert clean.stdout == f"ok custody ledger verified: {summary}\n"
    assert signed == log_size >= seq  # the demo signs every log when it is done
    with sqlite3.connect(database) as db:  # an attacker with write access to the file
        db.execute("DROP TRIGGER ledger_events_no_update")
        body = db.execute("SELECT body FROM ledger_events WHERE log_id = ? AND seq = ?", (log_id, seq)).fetchone()[0]
        forged = body.replace(b'"at":"', b'"at":"1', 1)
        db.execute("UPDATE ledger_events SET body = ? WHERE log_id = ? AND seq = ?", (forged, log_id, seq))
    tampered = subprocess.run([*CELLRAIL, "verify", "-d", url], capture_output=True, text=True, timeout=60)
    assert tampered.returncode == 1
    # The chain names the altered event; its log's events no longer give the root its last checkpoint signed,
    # and (leaves being hashes of the stored events) consistency proofs between checkpoints that span the event
    # fail too. The events before it in its log, and every other log, still verify.
    verified = events - (log_size - seq + 1)
    lines = tampered.stdout.splitlines()
    assert lines[:2] == [
        f"FAILED [chain] {log} at {seq}: content does not match its hash (altered)",
        f"FAILED [merkle] {log} at {signed}: the events' Merkle root differs from the signed checkpoint",
    ]
    assert all(line.startswith(f"FAILED [consistency] {log} at ") for line in lines[2:-1]), lines
    assert (
        lines[-1]
        == f"{len(lines) - 1} problems in {DEMO_LOGS} logs, {verified} events, {checkpoints} signed checkpoints"
    )


def test_cli_reports_bad_input_without_traceback(tmp_path: Path) -> None:
    missing = subprocess.run(
        [*CELLRAIL, "network", "register", str(tmp_path / "nope.yaml"), "-d", f"sqlite:///{tmp_path / 'x.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert "No such file or directory" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout
