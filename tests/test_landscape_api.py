"""The read-only landscape API on the real ptjeong snapshot, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cellrail.api.app import create_app
from cellrail.kernel.clock import ManualClock
from cellrail.landscape.services import import_paths
from cellrail.rail.access_control import Role
from cellrail.store.uow import SqlUnitOfWork
from tests.api_support import Headers, ok, user

TRIALS = Path(__file__).parent / "data" / "ctgov" / "ptjeong-onc-car-t" / "2026-08-22" / "trials.csv"


@pytest.fixture
def client(engine: Engine, clock: ManualClock) -> TestClient:
    result = import_paths(lambda: SqlUnitOfWork(engine), [TRIALS], clock=clock)
    assert result.imported == 2274
    return TestClient(create_app(engine, clock))


@pytest.fixture
def courier(client: TestClient, engine: Engine, clock: ManualClock) -> Headers:
    # the least privileged role: registry analytics are public data, every authenticated user may read them
    return user(client, engine, clock, "courier1", "hub", Role.COURIER)


def test_landscape_answers_every_role_but_needs_a_token(client: TestClient, courier: Headers) -> None:
    assert client.get("/api/v1/landscape/starts").status_code == 401
    body = ok(client.get("/api/v1/landscape/starts", headers=courier))
    assert body["source"] == (
        "Source: ClinicalTrials.gov (NLM), via ptjeong/ONC-CAR-T-Trials-Monitor, snapshot 2026-08-22"
    )
    actual: Counter[str] = Counter()
    for row in body["rows"]:
        if row["status"] == "actual":
            actual[row["geography"]] += row["trials"]
    assert actual["ALL"] == 1907  # CGT trials only: the 86 trials not classified as CGT are counted apart
    assert body["not_cgt"] == 86
    assert actual["CN"] > actual["US"] > actual["EU27"]
    lead = ok(client.get("/api/v1/landscape/starts?by=lead_country&modality=in_vivo", headers=courier))
    assert lead["modality"] == "in_vivo"
    assert sum(r["trials"] for r in lead["rows"] if r["geography"] == "ALL") == sum(
        r["trials"] for r in lead["rows"] if not r["aggregate"]
    )


def test_one_trial_with_its_rule(client: TestClient, courier: Headers) -> None:
    body = ok(client.get("/api/v1/landscape/trials/NCT07002112", headers=courier))
    assert body["classification"] == {
        "modality": "in_vivo",
        "platform": "lentiviral in vivo",
        "cell_source": None,
        "rule": "upstream:In vivo",
    }
    assert body["countries"] == ["CN"]
    assert client.get("/api/v1/landscape/trials/NCT99999999", headers=courier).status_code == 404
    assert client.get("/api/v1/landscape/trials/not-an-id", headers=courier).status_code == 422
    page = client.get("/api/v1/landscape/trials?country=US&modality=in_vivo&limit=5", headers=courier).json()
    assert page
    assert all("US" in t["countries"] and t["classification"]["modality"] == "in_vivo" for t in page)


def test_mixes_and_growth(client: TestClient, courier: Headers) -> None:
    split = ok(client.get("/api/v1/landscape/modality-split", headers=courier))
    assert sum(r["trials"] for r in split["rows"]) == 2274
    sponsors = ok(client.get("/api/v1/landscape/sponsor-mix", headers=courier))
    assert sponsors["not_cgt"] == 86
    phases = ok(client.get("/api/v1/landscape/phase-mix", headers=courier))
    assert sum(r["trials"] for r in phases["rows"]) == 2274 - 86
    growth = ok(client.get("/api/v1/landscape/growth?geography=CN&first=2020&last=2025", headers=courier))
    assert (growth["cagr"]["first_starts"], growth["cagr"]["last_starts"]) == (88, 179)
    assert [r["year"] for r in growth["year_on_year"]] == [2021, 2022, 2023, 2024, 2025]
    refused = client.get("/api/v1/landscape/growth?first=2025&last=2020", headers=courier)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "query.last"
    assert client.get("/api/v1/landscape/starts?by=continent", headers=courier).status_code == 422
