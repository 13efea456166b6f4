"""The API's checkpoint schedule: a log is signed once it grew by N events, or T seconds after it grew."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from cellrail.api.checkpoints import CheckpointSchedule
from cellrail.demo.journeys import with_site_keys
from cellrail.kernel.clock import ManualClock
from cellrail.rail.access_control import SYSTEM, Principal, Role
from cellrail.rail.services import EnrollPatient, OpenSlots, enroll, open_slots, register_network
from cellrail.store.keyring import load_signers
from cellrail.store.uow import SqlUnitOfWork
from tests.conftest import NETWORK_YAML, add_user


@pytest.fixture
def keyed(sqlite_url: str, tmp_path: Path, clock: ManualClock) -> tuple[Engine, dict[str, Ed25519PrivateKey]]:
    from cellrail.store.engine import open_store

    engine = open_store(sqlite_url)
    text = with_site_keys(NETWORK_YAML, tmp_path / "keys")
    with SqlUnitOfWork(engine) as uow:
        register_network(uow, text, "net.yaml", SYSTEM, clock)
    with SqlUnitOfWork(engine) as uow:
        open_slots(uow, OpenSlots(node="h-a", first_day=date(2026, 3, 2), days=7), SYSTEM, clock)
    return engine, dict(load_signers(tmp_path / "keys"))


def _enrol(engine: Engine, clock: ManualClock, operator: Principal, n: int) -> None:
    for i in range(n):
        with SqlUnitOfWork(engine) as uow:
            command = EnrollPatient(treatment_site="h-a", mrn=f"M{i}", full_name="P", birth_date=date(1970, 1, 1))
            enroll(uow, command, operator, clock)


def test_signs_after_n_new_events_then_after_t_seconds(
    keyed: tuple[Engine, dict[str, Ed25519PrivateKey]], clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, signers = keyed
    operator = add_user(engine, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    now = [1000.0]
    monkeypatch.setattr("cellrail.api.checkpoints.time.monotonic", lambda: now[0])
    schedule = CheckpointSchedule(engine, signers, every_events=5, every_seconds=60)
    with SqlUnitOfWork(engine, write=False) as uow:
        grown = uow.ledger.logs()
    # the network log holds the registration; h-a's log its slots and its operator's account
    assert {log.rsplit("/", 1)[1]: size for log, size in grown.items()} == {"network": 1, "h-a": 2}
    now[0] += 61
    assert schedule.tick() == len(grown)  # T seconds passed: every log that grew is signed
    with SqlUnitOfWork(engine, write=False) as uow:
        sizes = {log: cp.size for log in uow.ledger.logs() if (cp := uow.checkpoints.latest(log)) is not None}
    assert sizes == grown
    _enrol(engine, clock, operator, 3)
    assert schedule.tick() == 0  # h-a grew by 3 < 5 and 60 s have not passed
    _enrol(engine, clock, operator, 2)
    assert schedule.tick() == 1  # h-a grew by 5: signed at once
    _enrol(engine, clock, operator, 1)
    assert schedule.tick() == 0
    now[0] += 61
    assert schedule.tick() == 1  # one event, but T seconds passed
    with SqlUnitOfWork(engine, write=False) as uow:
        log = next(log for log in uow.ledger.logs() if log.endswith("/h-a"))
        assert [cp.size for cp in uow.checkpoints.history(log)] == [sizes[log], sizes[log] + 5, sizes[log] + 6]
