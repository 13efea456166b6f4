"""Helpers for the API tests: log users in once, enrol and move orders through the HTTP API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from cellrail.kernel.clock import ManualClock
from cellrail.rail.access_control import Role
from tests.conftest import PASSWORD, add_user

Headers = dict[str, str]
PATIENT = {"treatment_site": "h-a", "mrn": "MRN-1", "full_name": "Li Wei", "birth_date": "1970-01-01"}


def login(client: TestClient, username: str, password: str = PASSWORD) -> Headers:
    answer = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def user(client: TestClient, engine: Engine, clock: ManualClock, username: str, node: str, *roles: Role) -> Headers:
    """Create a user (one Argon2 hash) and log in (one verification); returns the auth header."""
    add_user(engine, clock, username, node, *roles)
    return login(client, username)


def ok(answer: Response, status: int = 200) -> dict[str, Any]:
    """The JSON object of an answer that must have ``status``."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert isinstance(body, dict), body
    return body


def enroll(client: TestClient, headers: Headers, **changes: str) -> dict[str, Any]:
    return ok(client.post("/api/v1/orders", headers=headers, json={**PATIENT, **changes}), 201)


def move(client: TestClient, headers: Headers, coi: str, to: str, **body: Any) -> Response:
    """POST a transition and return the raw answer."""
    answer: Response = client.post(f"/api/v1/orders/{coi}/transitions", headers=headers, json={"to": to, **body})
    return answer


def scan_of(order: dict[str, Any], unit: str = "collection_din") -> dict[str, str]:
    return {"coi": order["coi"], "din": order[unit]}
