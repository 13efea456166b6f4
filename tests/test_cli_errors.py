"""The command line refuses bad input and unusable stores with a clear message and an exit code, never a
traceback (regression tests for the review fixes). Each command runs as a user runs it, in a subprocess."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cellrail.kernel.clock import ManualClock
from cellrail.store.engine import open_store
from tests.conftest import START, seed

ROOT = Path(__file__).resolve().parents[1]
CELLRAIL = [sys.executable, "-m", "cellrail.cli.main"]
PASSWORD = "correct horse battery staple"


def cellrail(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLRAIL_")}
    env.update(COLUMNS="250", NO_COLOR="1", PYTHONIOENCODING="utf-8")
    return subprocess.run([*CELLRAIL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def refused(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The error output of a command that had to exit with ``code`` and print no traceback."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == code, output
    return result.stderr.strip()


@pytest.fixture
def registered(tmp_path: Path) -> str:
    """A SQLite store with the test network registered (and a day of slots open)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_store(url)
    seed(engine, ManualClock(START), days=1)
    engine.dispose()
    return url


def test_verify_does_not_create_a_missing_store(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.db"
    url = f"sqlite:///{missing}"
    assert refused(cellrail(tmp_path, "verify", "-d", url), 1) == (
        f"error no CellRail store at {url} (check the path, or create one with `cellrail db upgrade`)"
    )
    assert not missing.exists()


def test_verify_refuses_a_database_that_is_not_a_store(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    connection.close()
    url = f"sqlite:///{other}"
    assert refused(cellrail(tmp_path, "verify", "-d", url), 1) == (
        f"error {url} is not a CellRail store (run `cellrail db upgrade` to create one)"
    )


def test_verify_names_an_unreachable_server(tmp_path: Path) -> None:
    message = refused(cellrail(tmp_path, "verify", "-d", "postgresql+psycopg://nobody@127.0.0.1:1/x"), 1)
    assert message.startswith("error the store could not be used: "), message
    assert "127.0.0.1" in message
    assert "\n" not in message  # one line: the driver's first line, not its whole report


def test_network_register_refuses_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes("network:\n  id: caf\xe9\n".encode("latin-1"))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = cellrail(tmp_path, "network", "register", "latin1.yaml", "-d", url)
    assert refused(result, 2) == "error not a UTF-8 text file (invalid continuation byte)"


@pytest.mark.parametrize("command", ["register", "check"])
def test_network_file_nested_too_deeply(tmp_path: Path, command: str) -> None:
    (tmp_path / "deep.yaml").write_text("[" * 3000 + "]" * 3000 + "\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    args = ["network", command, "deep.yaml", *(["-d", url] if command == "register" else [])]
    assert refused(cellrail(tmp_path, *args), 2) == "error deep.yaml: the document is nested too deeply"


def test_users_add_names_an_invalid_username(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    args = ["users", "add", "Bad Name!", "--node", "h-a", "--role", "auditor", "--full-name", "Bad Name"]
    result = cellrail(tmp_path, *args, "--password", PASSWORD, "-d", url)
    assert refused(result, 2) == "error username: String should match pattern '^[a-z0-9][a-z0-9._-]{1,63}$'"


def test_users_add_refuses_a_node_operator_who_is_also_qualified_person(tmp_path: Path, registered: str) -> None:
    roles = ["--role", "node_operator", "--role", "qualified_person"]
    args = ["users", "add", "maker-qp", "--node", "hub", *roles, "--full-name", "Maker", "--password", PASSWORD]
    result = cellrail(tmp_path, *args, "-d", registered)
    assert refused(result, 2) == (
        "error roles: a qualified person may not also be a node operator (segregation of duties)"
    )


def test_slots_open_refuses_a_first_day_out_of_range(tmp_path: Path, registered: str) -> None:
    message = refused(cellrail(tmp_path, "slots", "open", "h-a", "--from", "9999-12-30", "-d", registered), 2)
    assert message.startswith("error "), message
    assert message == "error first_day: Input should be less than or equal to 8999-01-01"


def test_demo_does_not_overwrite_an_existing_database(tmp_path: Path) -> None:
    existing = tmp_path / "mine.db"
    existing.write_bytes(b"precious data")
    network = str(ROOT / "examples" / "regional.yaml")
    args = ["demo", "--no-serve", "--weeks", "1", "--network", network, "--database", "mine.db"]
    assert refused(cellrail(tmp_path, *args), 1) == (
        "error mine.db already exists; pass --replace to rebuild it (its data will be deleted)"
    )
    assert existing.read_bytes() == b"precious data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.db"]
