"""The HTTP API end to end, on SQLite and PostgreSQL: a whole patient journey, every kind of refusal, and
random bodies that must never crash the server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from cellrail.api.app import create_app
from cellrail.kernel.clock import ManualClock
from cellrail.kernel.identifiers import DIN, ChainOfIdentity
from cellrail.rail.access_control import Role
from cellrail.rail.orders import OrderState
from tests.api_support import PATIENT, Headers, enroll, move, ok, scan_of, user
from tests.conftest import PASSWORD, add_user

V1 = "/api/v1"
BAG = str(DIN("A1001", 26, 1))  # the first collection DIN issued at h-a in 2026
PRODUCT = str(DIN("A1003", 26, 1))  # the first product DIN issued at the hub in 2026
FIRST_COI = str(ChainOfIdentity.from_number("A1001", 26, 1))
SEEDED_EVENTS = 4  # network registered + slots opened at three nodes
TOKEN_HOURS = 24 * 30  # tokens outlive a whole journey on the manual clock


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Crew:
    site: Headers  # node operator at the treatment site h-a
    maker: Headers  # node operator at the manufacturing hub
    qp: Headers  # qualified person at the hub


@pytest.fixture
def client(seeded: Engine, clock: ManualClock) -> Iterator[TestClient]:
    with TestClient(create_app(seeded, clock, token_hours=TOKEN_HOURS)) as client:
        yield client


@pytest.fixture
def crew(client: TestClient, seeded: Engine, clock: ManualClock) -> Crew:
    return Crew(
        site=user(client, seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR),
        maker=user(client, seeded, clock, "op-hub", "hub", Role.NODE_OPERATOR),
        qp=user(client, seeded, clock, "qp", "hub", Role.QUALIFIED_PERSON),
    )


def booked_and_collected(client: TestClient, clock: ManualClock, crew: Crew) -> dict[str, Any]:
    """An order enrolled and booked at START, collected when its apheresis slot ends."""
    order = enroll(client, crew.site)
    ok(client.post(f"{V1}/orders/{order['coi']}/booking", headers=crew.site))
    clock.set(at(2, 4))
    return ok(move(client, crew.site, order["coi"], "collected"))


def shipped(client: TestClient, clock: ManualClock, crew: Crew) -> dict[str, Any]:
    order = booked_and_collected(client, clock, crew)
    clock.advance(timedelta(hours=1))
    return ok(move(client, crew.site, order["coi"], "shipped_to_manufacturing", scan=scan_of(order)))


def journey_of(client: TestClient, headers: Headers, coi: str) -> dict[str, Any]:
    return ok(client.get(f"{V1}/orders/{coi}/journey", headers=headers))


# ---- the whole journey ---------------------------------------------------------------------------------------


def test_full_journey_vein_to_vein(client: TestClient, seeded: Engine, clock: ManualClock, crew: Crew) -> None:
    courier = user(client, seeded, clock, "courier", "hub", Role.COURIER)
    auditor = user(client, seeded, clock, "aud", "hub", Role.AUDITOR)
    order_answers: list[str] = []

    def step(headers: Headers, to: str, **body: Any) -> dict[str, Any]:
        answer = move(client, headers, coi, to, **body)
        order_answers.append(answer.text)
        moved = ok(answer)
        assert moved["state"] == to
        return moved

    created = client.post(f"{V1}/orders", headers=crew.site, json=PATIENT)
    assert created.status_code == 201
    coi = created.json()["coi"]
    assert coi == FIRST_COI
    assert created.headers["location"] == f"{V1}/orders/{coi}"
    assert created.json() == {
        "coi": coi,
        "treatment_site": "h-a",
        "manufacturing_node": None,
        "state": "enrolled",
        "allowed_next": ["apheresis_scheduled", "withdrawn"],
        "collection_din": None,
        "product_din": None,
        "manufacturing_attempts": 0,
    }
    order_answers.append(created.text)

    booking = client.post(f"{V1}/orders/{coi}/booking", headers=crew.site)
    assert booking.status_code == 200, booking.text
    order_answers.append(booking.text)
    assert booking.json()["order"]["state"] == "apheresis_scheduled"
    assert booking.json()["order"]["manufacturing_node"] == "hub"
    assert {k: v for k, v in booking.json()["apheresis"].items() if k != "id"} == {
        "node": "h-a",
        "resource": "apheresis",
        "platform": "",
        "unit": 0,
        "starts": "2026-03-02T00:00:00Z",  # 08:00 in Shanghai
        "ends": "2026-03-02T04:00:00Z",
    }
    assert {k: v for k, v in booking.json()["manufacturing"].items() if k != "id"} == {
        "node": "hub",
        "resource": "manufacturing",
        "platform": "CliniMACS Prodigy",
        "unit": 0,
        "starts": "2026-03-04T01:00:00Z",
        "ends": "2026-03-16T01:00:00Z",
    }

    clock.set(at(2, 4))
    collected = step(crew.site, "collected")
    assert collected["collection_din"] == BAG
    bag = scan_of(collected)
    clock.set(at(2, 5))
    step(crew.site, "shipped_to_manufacturing", scan=bag)
    clock.set(at(2, 6, 30))
    checkpoint = {"label": bag, "node": "h-a", "note": "picked up", "temperature_c": 4.5}
    assert ok(client.post(f"{V1}/scans", headers=courier, json={"scans": [checkpoint]}), 201) == {
        "recorded": 1,
        "seqs": [7],  # the seventh event of h-a's log, where the scan was made
    }
    clock.set(at(2, 8))
    step(crew.maker, "received_at_manufacturing", scan=bag)
    clock.set(at(4, 1))
    step(crew.maker, "manufacturing", scan=bag)
    clock.set(at(16, 1))
    in_qc = step(crew.maker, "qc_pending")
    assert in_qc["product_din"] == PRODUCT
    product = scan_of(in_qc, "product_din")

    clock.set(at(18, 1))
    assert move(client, crew.qp, coi, "released").json() == {
        "detail": [{"field": "password", "message": "an electronic signature needs the signer's password"}]
    }
    refused = move(client, crew.qp, coi, "released", password="not the password")
    assert refused.status_code == 403  # the signature is refused; the session itself stays valid
    assert refused.json() == {"detail": "signature refused: the password does not match the signer"}
    step(crew.qp, "released", password=PASSWORD)
    clock.set(at(18, 3))
    step(crew.maker, "shipped_to_site", scan=product)
    clock.set(at(18, 6))
    step(crew.site, "received_at_site", scan=product)
    clock.set(at(19, 6))
    wrong_patient = move(client, crew.site, coi, "infused", scan=product, patient_mrn="MRN-2")
    assert wrong_patient.status_code == 409
    assert wrong_patient.json()["field"] == "patient_mrn"
    assert "MRN-2" not in wrong_patient.text
    infused = step(crew.site, "infused", scan=product, patient_mrn=" MRN-1 ")
    assert infused["allowed_next"] == []
    assert infused["manufacturing_attempts"] == 1

    journey = journey_of(client, auditor, coi)
    assert journey["coi"] == coi
    assert journey["state"] == "infused"
    assert [(m["state"], m["at"], m["node"], m["actor"]) for m in journey["milestones"]] == [
        ("enrolled", "2026-03-02T00:00:00Z", "h-a", "op-a"),
        ("apheresis_scheduled", "2026-03-02T00:00:00Z", "h-a", "op-a"),
        ("collected", "2026-03-02T04:00:00Z", "h-a", "op-a"),
        ("shipped_to_manufacturing", "2026-03-02T05:00:00Z", "h-a", "op-a"),
        ("received_at_manufacturing", "2026-03-02T08:00:00Z", "hub", "op-hub"),
        ("manufacturing", "2026-03-04T01:00:00Z", "hub", "op-hub"),
        ("qc_pending", "2026-03-16T01:00:00Z", "hub", "op-hub"),
        ("released", "2026-03-18T01:00:00Z", "hub", "qp"),
        ("shipped_to_site", "2026-03-18T03:00:00Z", "hub", "op-hub"),
        ("received_at_site", "2026-03-18T06:00:00Z", "h-a", "op-a"),
        ("infused", "2026-03-19T06:00:00Z", "h-a", "op-a"),
    ]
    assert [(s["state"], s["hours"]) for s in journey["stages"]] == [
        ("enrolled", 0.0),
        ("apheresis_scheduled", 4.0),
        ("collected", 1.0),
        ("shipped_to_manufacturing", 3.0),
        ("received_at_manufacturing", 41.0),
        ("manufacturing", 288.0),
        ("qc_pending", 48.0),
        ("released", 2.0),
        ("shipped_to_site", 3.0),
        ("received_at_site", 24.0),
        ("infused", None),
    ]
    assert journey["stages"][-1]["ended"] is None
    assert journey["vein_to_vein_hours"] == 410.0  # 17 days and 2 hours from collection to infusion
    events = journey["events"]
    # Each event is in the log of its node, numbered there: h-a's log already holds its slots and op-a's account,
    # the hub's its slots and the accounts of op-hub, qp, the courier and the auditor (all at the hub).
    assert [(e["node"], e["seq"], e["kind"], e["actor"], e["item"]) for e in events] == [
        ("h-a", 3, "order.enrolled", "op-a", None),
        ("h-a", 4, "order.booked", "op-a", None),
        ("h-a", 5, "order.moved", "op-a", BAG),
        ("h-a", 6, "order.moved", "op-a", BAG),
        ("h-a", 7, "custody.scan", "courier", BAG),
        ("hub", 6, "order.moved", "op-hub", BAG),
        ("hub", 7, "order.moved", "op-hub", BAG),
        ("hub", 8, "order.moved", "op-hub", PRODUCT),
        ("hub", 9, "order.moved", "qp", None),
        ("hub", 10, "order.moved", "op-hub", PRODUCT),
        ("h-a", 8, "order.moved", "op-a", PRODUCT),
        ("h-a", 9, "identity.mismatch", "op-a", None),
        ("h-a", 10, "order.moved", "op-a", PRODUCT),
    ]
    assert events[4]["data"] == {"state": "shipped_to_manufacturing", "note": "picked up", "temperature_c": 4.5}
    assert events[4]["at"] == "2026-03-02T06:30:00Z"
    assert events[4]["role"] == "courier"
    assert events[8]["signatures"] == [
        {
            "user": "qp",
            "full_name": "Qp",
            "meaning": "approved for release to the patient",
            "at": "2026-03-18T01:00:00Z",
        }
    ]
    assert events[11]["data"] == {"attempted": "infused", "field": "patient_mrn"}

    for path in (f"{V1}/orders/{coi}", f"{V1}/orders", f"{V1}/orders/{coi}/journey"):
        order_answers.append(client.get(path, headers=crew.site).text)
    for answer in order_answers:
        assert "Li Wei" not in answer
        assert "MRN-1" not in answer
        assert "1970-01-01" not in answer
    assert ok(client.get(f"{V1}/orders/{coi}/patient", headers=crew.site)) == {
        "coi": coi,
        "treatment_site": "h-a",
        "mrn": "MRN-1",
        "full_name": "Li Wei",
        "birth_date": "1970-01-01",
    }
    report = ok(client.get(f"{V1}/ledger/verify", headers=auditor))
    # network (1), h-a (10), h-b (1) and hub (10) logs; no checkpoint has been signed yet
    assert report == {"ok": True, "logs": 4, "checked": 22, "checkpoints": 0, "findings": []}


# ---- validation: 422 naming the field ------------------------------------------------------------------------


def test_invalid_input_names_the_field(client: TestClient, clock: ManualClock, crew: Crew) -> None:
    order = booked_and_collected(client, clock, crew)
    coi = order["coi"]
    bad_check = BAG[:-1] + ("A" if BAG[-1] != "A" else "B")

    def problems(answer: Response) -> list[dict[str, str]]:
        detail = ok(answer, 422)["detail"]
        assert isinstance(detail, list)
        return detail

    without_birth_date = {k: v for k, v in PATIENT.items() if k != "birth_date"}
    assert problems(client.post(f"{V1}/orders", headers=crew.site, json=without_birth_date)) == [
        {"field": "birth_date", "message": "Field required"}
    ]
    assert problems(client.post(f"{V1}/orders", headers=crew.site, json={**PATIENT, "shoe_size": 42})) == [
        {"field": "shoe_size", "message": "Extra inputs are not permitted"}
    ]
    assert problems(client.post(f"{V1}/orders", headers=crew.site, json={**PATIENT, "treatment_site": "hub"})) == [
        {"field": "treatment_site", "message": "'hub' is a regional_hub, not a hospital"}
    ]
    assert problems(move(client, crew.site, coi, "shipped_to_manufacturing", scan={"coi": coi, "din": bad_check})) == [
        {
            "field": "scan.din",
            "message": f"check character '{bad_check[-1]}' does not match DIN {BAG[:-1]} (expected {BAG[-1]})",
        }
    ]
    bad_coi = coi[:-1] + ("A" if coi[-1] != "A" else "B")
    assert problems(move(client, crew.site, coi, "shipped_to_manufacturing", scan={"coi": bad_coi, "din": BAG})) == [
        {
            "field": "scan.coi",
            "message": f"check character '{bad_coi[-1]}' does not match {coi[:-1]} (expected {coi[-1]})",
        }
    ]
    assert problems(move(client, crew.site, coi, "shipped_to_manufacturing", scan={"coi": coi, "din": "A1"})) == [
        {"field": "scan.din", "message": "String should have at least 13 characters"}
    ]
    assert problems(move(client, crew.site, coi, "shipped_to_manufacturing", scan={"coi": coi})) == [
        {"field": "scan.din", "message": "Field required"}
    ]
    assert problems(move(client, crew.site, coi, "shipped_to_manufacturing")) == [
        {"field": "scan", "message": "a label scan is required to mark an order 'shipped_to_manufacturing'"}
    ]
    unknown_state = problems(move(client, crew.site, coi, "teleported"))
    assert [p["field"] for p in unknown_state] == ["to"]
    assert unknown_state[0]["message"].startswith("Input should be 'enrolled', 'apheresis_scheduled'")
    assert problems(move(client, crew.site, coi, "withdrawn", color="red")) == [
        {"field": "color", "message": "Extra inputs are not permitted"}
    ]
    assert problems(move(client, crew.site, coi, "withdrawn")) == [
        {"field": "reason", "message": "a reason is required to mark an order 'withdrawn'"}
    ]
    assert problems(move(client, crew.site, coi, "apheresis_scheduled")) == [
        {"field": "to", "message": "'apheresis_scheduled' is reached by enrolling or booking, not by advancing"}
    ]
    assert problems(move(client, crew.site, coi, "withdrawn", reason="x", at="2027-01-01T00:00:00Z")) == [
        {
            "field": "at",
            "message": "2027-01-01T00:00:00.000000Z is in the future (server time 2026-03-02T04:00:00.000000Z)",
        }
    ]
    assert problems(move(client, crew.site, coi, "withdrawn", reason="x", at="0001-01-01T00:00:00+05:00")) == [
        {"field": "at", "message": "0001-01-01T00:00:00+05:00 is out of range (years 2000 to 8999)"}
    ]
    assert problems(move(client, crew.site, coi, "withdrawn", reason="x", at="2026-03-02T00:00:00")) == [
        {"field": "at", "message": "Input should have timezone info"}
    ]
    assert problems(move(client, crew.site, coi, "withdrawn", reason="\x00")) == [
        {"field": "reason", "message": "text may not contain NUL characters or unpaired surrogates"}
    ]
    raw = {**crew.site, "content-type": "application/json"}
    surrogate = b'{"treatment_site": "h-a", "mrn": "\\ud800", "full_name": "X", "birth_date": "1970-01-01"}'
    assert problems(client.post(f"{V1}/orders", headers=raw, content=surrogate)) == [
        {"field": "mrn", "message": "text may not contain NUL characters or unpaired surrogates"}
    ]
    assert problems(client.post(f"{V1}/orders/{coi}/transitions", headers=raw, content=b'{"to": "collected",')) == [
        {
            "field": "body",
            "message": "the body is not valid JSON: Expecting property name enclosed in double quotes at character 19",
        }
    ]
    assert problems(client.post(f"{V1}/orders/{coi}/transitions", headers=raw, content=b"[1, 2]")) == [
        {"field": "body", "message": "Input should be a valid dictionary or object to extract fields from"}
    ]
    assert [p["field"] for p in problems(move(client, crew.site, coi, "withdrawn", reason=["x"]))] == ["reason"]
    huge = client.post(f"{V1}/orders/{coi}/transitions", headers=raw, content=b'{"to": "withdrawn", "at": 1e999}')
    assert [p["field"] for p in problems(huge)] == ["at"]
    scan = {"label": {"coi": coi, "din": BAG}, "node": "h-a"}
    hot = b'{"scans": [{"label": {"coi": "%s", "din": "%s"}, "node": "h-a", "temperature_c": 1e999}]}' % (
        coi.encode(),
        BAG.encode(),
    )
    assert problems(client.post(f"{V1}/scans", headers=raw, content=hot)) == [
        {"field": "scans[0].temperature_c", "message": "Input should be less than or equal to 60"}
    ]
    digits = client.post(f"{V1}/orders", headers=raw, content=b'{"birth_date": ' + b"9" * 5000 + b"}")
    assert digits.status_code == 400  # the JSON parser refuses integers of more than 4300 digits
    assert problems(client.post(f"{V1}/scans", headers=crew.site, json={"scans": []})) == [
        {"field": "scans", "message": "List should have at least 1 item after validation, not 0"}
    ]
    assert problems(client.post(f"{V1}/scans", headers=crew.site, json={"scans": [scan, {**scan, "colour": 1}]})) == [
        {"field": "scans[1].colour", "message": "Extra inputs are not permitted"}
    ]
    assert problems(client.get(f"{V1}/orders/CH-NOT-A-COI", headers=crew.site)) == [
        {
            "field": "coi",
            "message": "'CH-NOT-A-COI' is not an ISBT 128 Chain of Identity identifier (CH, FIN, year, 6 characters)",
        }
    ]
    assert problems(client.get(f"{V1}/orders", headers=crew.site, params={"limit": "9" * 40})) == [
        {"field": "limit", "message": "Input should be less than or equal to 500"}
    ]
    assert problems(client.get(f"{V1}/orders", headers=crew.site, params={"state": "lost"}))[0]["field"] == "state"
    # Nothing above moved the order.
    assert ok(client.get(f"{V1}/orders/{coi}", headers=crew.site))["state"] == "collected"


# ---- conflicts: 409 --------------------------------------------------------------------------------------------


def test_illegal_transition_names_current_state_and_allowed_steps(
    client: TestClient, clock: ManualClock, crew: Crew
) -> None:
    coi = enroll(client, crew.site)["coi"]
    refused = move(client, crew.site, coi, "collected")
    assert refused.status_code == 409
    assert refused.json() == {
        "detail": f"order {coi} is 'enrolled' and cannot become 'collected'; "
        "allowed next steps: apheresis_scheduled, withdrawn",
        "order": coi,
        "current": "enrolled",
        "attempted": "collected",
        "allowed": ["apheresis_scheduled", "withdrawn"],
    }
    ok(client.post(f"{V1}/orders/{coi}/booking", headers=crew.site))
    again = client.post(f"{V1}/orders/{coi}/booking", headers=crew.site)
    assert again.status_code == 409
    assert (again.json()["current"], again.json()["allowed"]) == ("apheresis_scheduled", ["collected", "withdrawn"])
    withdrawn = ok(move(client, crew.site, coi, "withdrawn", reason="patient chose another therapy"))
    assert (withdrawn["state"], withdrawn["allowed_next"]) == ("withdrawn", [])
    closed = move(client, crew.site, coi, "collected")
    assert closed.status_code == 409
    assert closed.json()["allowed"] == []
    assert closed.json()["detail"].endswith("allowed next steps: none (the order is closed)")


def test_label_mismatch_is_a_recorded_hard_stop(client: TestClient, clock: ManualClock, crew: Crew) -> None:
    order = shipped(client, clock, crew)
    coi = order["coi"]
    clock.advance(timedelta(hours=3))
    wrong = str(DIN("A1001", 26, 999_999))
    refused = move(client, crew.maker, coi, "received_at_manufacturing", scan={"coi": coi, "din": wrong})
    assert refused.status_code == 409
    assert refused.json() == {
        "detail": f"identity mismatch on order {coi}: scanned scan.din '{wrong}' does not match the order; "
        "hard stop recorded, the order was not advanced",
        "order": coi,
        "field": "scan.din",
    }
    other = enroll(client, crew.site, mrn="MRN-7")["coi"]
    wrong_order = move(client, crew.maker, coi, "received_at_manufacturing", scan={"coi": other, "din": BAG})
    assert wrong_order.status_code == 409
    assert wrong_order.json()["field"] == "scan.coi"

    assert ok(client.get(f"{V1}/orders/{coi}", headers=crew.maker))["state"] == "shipped_to_manufacturing"
    journey = journey_of(client, crew.maker, coi)
    assert journey["state"] == "shipped_to_manufacturing"
    assert journey["milestones"][-1]["state"] == "shipped_to_manufacturing"
    mismatches = [e for e in journey["events"] if e["kind"] == "identity.mismatch"]
    assert [(e["node"], e["actor"], e["item"], e["data"], e["at"]) for e in mismatches] == [
        (
            "hub",
            "op-hub",
            wrong,
            {"attempted": "received_at_manufacturing", "field": "scan.din"},
            "2026-03-02T08:00:00Z",
        ),
        (
            "hub",
            "op-hub",
            other,
            {"attempted": "received_at_manufacturing", "field": "scan.coi"},
            "2026-03-02T08:00:00Z",
        ),
    ]
    # The right label still goes through afterwards.
    assert ok(move(client, crew.maker, coi, "received_at_manufacturing", scan=scan_of(order)))["state"] == (
        "received_at_manufacturing"
    )


def test_booking_with_no_capacity_and_a_later_start(client: TestClient, crew: Crew) -> None:
    coi = enroll(client, crew.site)["coi"]
    full = client.post(f"{V1}/orders/{coi}/booking", headers=crew.site, json={"earliest": "2026-04-15T00:00:00Z"})
    assert full.status_code == 409
    assert full.json() == {
        "detail": "no free apheresis slot at 'h-a' from 2026-04-15T00:00:00.000000Z chains to a free manufacturing "
        "slot that the cells can reach in time; open more slots or try a later date"
    }
    assert ok(client.get(f"{V1}/orders/{coi}", headers=crew.site))["state"] == "enrolled"
    far = client.post(f"{V1}/orders/{coi}/booking", headers=crew.site, json={"earliest": "9999-12-31T23:00:00-05:00"})
    assert far.json() == {
        "detail": [{"field": "earliest", "message": "9999-12-31T23:00:00-05:00 is out of range (years 2000 to 8999)"}]
    }
    later = ok(
        client.post(f"{V1}/orders/{coi}/booking", headers=crew.site, json={"earliest": "2026-03-10T08:00:00+08:00"})
    )
    assert (later["apheresis"]["starts"], later["manufacturing"]["starts"]) == (
        "2026-03-16T00:00:00Z",
        "2026-03-17T01:00:00Z",
    )


# ---- who may do what: 401, 403, 404 --------------------------------------------------------------------------


def test_tokens_and_unauthenticated_requests(seeded: Engine, clock: ManualClock) -> None:
    add_user(seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    with TestClient(create_app(seeded, clock)) as client:
        check_tokens(client, seeded, clock)


def check_tokens(client: TestClient, seeded: Engine, clock: ManualClock) -> None:
    form = client.post(f"{V1}/auth/token", data={"grant_type": "password", "username": "op-a", "password": PASSWORD})
    assert form.status_code == 200
    assert form.json()["token_type"] == "bearer"
    assert form.json()["expires_at"] == "2026-03-02T12:00:00Z"
    headers = {"Authorization": f"Bearer {form.json()['access_token']}"}
    assert ok(client.get(f"{V1}/me", headers=headers)) == {
        "username": "op-a",
        "full_name": "Op-A",
        "node": "h-a",
        "roles": ["node_operator"],
    }
    as_json = ok(client.post(f"{V1}/auth/token", json={"username": "op-a", "password": PASSWORD}))
    assert as_json["access_token"] != form.json()["access_token"]

    for credentials in ({"username": "op-a", "password": "wrong password!"}, {"username": "nobody", "password": "x"}):
        refused = client.post(f"{V1}/auth/token", json=credentials)
        assert refused.status_code == 401
        assert refused.json() == {"detail": "wrong username or password"}
        assert refused.headers["www-authenticate"] == "Bearer"
    assert client.post(f"{V1}/auth/token", json={"username": "op-a"}).json() == {
        "detail": [{"field": "password", "message": "Field required"}]
    }
    assert client.post(f"{V1}/auth/token", json={"username": "op-a", "password": "p", "otp": 1}).json() == {
        "detail": [{"field": "otp", "message": "Extra inputs are not permitted"}]
    }
    grant = client.post(f"{V1}/auth/token", data={"grant_type": "client_credentials", "username": "op-a"})
    assert grant.status_code == 422
    assert grant.json()["detail"][0]["field"] == "grant_type"
    assert client.post(f"{V1}/auth/token", json={"username": "op\x00a", "password": "p"}).status_code == 422
    plain = client.post(f"{V1}/auth/token", content=b"op-a", headers={"content-type": "text/plain"})
    assert plain.status_code == 422

    missing = client.get(f"{V1}/me")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json() == {
        "detail": "send `Authorization: Bearer <token>`; get a token from POST /api/v1/auth/token"
    }
    for bad in ({"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic b3AtYTpwdw=="}):
        answer = client.get(f"{V1}/orders", headers=bad)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
    assert client.get(f"{V1}/orders", headers={"Authorization": "Bearer not-a-token"}).json() == {
        "detail": "the token is unknown or has expired; request a new one"
    }
    # Authentication comes before validation: an anonymous caller learns nothing about the body.
    assert client.post(f"{V1}/orders", json={"nonsense": True}).status_code == 401
    assert client.post(f"{V1}/scans", json=[]).status_code == 401

    clock.advance(timedelta(hours=12))
    assert client.get(f"{V1}/me", headers=headers).status_code == 401
    with TestClient(create_app(seeded, clock, token_hours=0.5)) as short:
        token = ok(short.post(f"{V1}/auth/token", json={"username": "op-a", "password": PASSWORD}))
        assert token["expires_at"] == "2026-03-02T12:30:00Z"


def test_other_nodes_neither_see_nor_change_an_order(
    client: TestClient, seeded: Engine, clock: ManualClock, crew: Crew
) -> None:
    other = user(client, seeded, clock, "op-b", "h-b", Role.NODE_OPERATOR)
    auditor = user(client, seeded, clock, "aud", "hub", Role.AUDITOR)
    coi = enroll(client, crew.site)["coi"]
    hidden = {"detail": f"no order {coi}"}
    for path in (f"{V1}/orders/{coi}", f"{V1}/orders/{coi}/journey", f"{V1}/orders/{coi}/patient"):
        answer = client.get(path, headers=other)
        assert (answer.status_code, answer.json()) == (404, hidden)
    # Not yet booked: the hub takes no part in the order, so it does not see it either.
    assert client.get(f"{V1}/orders/{coi}", headers=crew.maker).status_code == 404
    for answer in (
        move(client, other, coi, "withdrawn", reason="not mine"),
        client.post(f"{V1}/orders/{coi}/booking", headers=other),
    ):
        assert (answer.status_code, answer.json()) == (404, hidden)
    assert ok(client.get(f"{V1}/orders", headers=other)) == {"orders": [], "limit": 100, "offset": 0}
    enrol_elsewhere = client.post(f"{V1}/orders", headers=other, json=PATIENT)
    assert (enrol_elsewhere.status_code, enrol_elsewhere.json()) == (403, {"detail": "user 'op-b' may not enroll here"})

    ok(client.post(f"{V1}/orders/{coi}/booking", headers=crew.site))
    assert ok(client.get(f"{V1}/orders/{coi}", headers=crew.maker))["manufacturing_node"] == "hub"
    not_site = client.get(f"{V1}/orders/{coi}/patient", headers=crew.maker)
    assert (not_site.status_code, not_site.json()) == (
        403,
        {"detail": "user 'op-hub' may not view patient identity here"},
    )
    wrong_node = move(client, crew.maker, coi, "collected")
    assert (wrong_node.status_code, wrong_node.json()) == (403, {"detail": "user 'op-hub' may not collect here"})
    auditing = move(client, auditor, coi, "collected")
    assert (auditing.status_code, auditing.json()) == (403, {"detail": "user 'aud' may not collect here"})
    assert ok(client.get(f"{V1}/orders/{coi}", headers=crew.site))["state"] == "apheresis_scheduled"


def test_couriers_scan_but_do_not_see_the_patient(
    client: TestClient, seeded: Engine, clock: ManualClock, crew: Crew
) -> None:
    courier = user(client, seeded, clock, "courier", "hub", Role.COURIER)
    order = booked_and_collected(client, clock, crew)
    coi = order["coi"]
    clock.advance(timedelta(minutes=30))
    label = scan_of(order)
    batch = [
        {"label": label, "node": "h-a", "note": "bag sealed in shipper", "temperature_c": 4.0},
        {"label": {"coi": coi.lower(), "din": DIN("A1001", 26, 1).barcode_data}, "node": "h-a"},  # as scanned
    ]
    recorded = ok(client.post(f"{V1}/scans", headers=courier, json={"scans": batch}), 201)
    assert recorded["recorded"] == 2
    assert recorded["seqs"][1] == recorded["seqs"][0] + 1
    hidden = client.get(f"{V1}/orders/{coi}/patient", headers=courier)
    assert (hidden.status_code, hidden.json()) == (403, {"detail": "user 'courier' may not view patient identity here"})
    collect = move(client, courier, coi, "withdrawn", reason="lost")
    assert (collect.status_code, collect.json()) == (403, {"detail": "user 'courier' may not withdraw here"})

    wrong = str(DIN("A1001", 26, 42))
    refused = client.post(
        f"{V1}/scans", headers=courier, json={"scans": [batch[0], {"label": {"coi": coi, "din": wrong}, "node": "hub"}]}
    )
    assert refused.status_code == 409
    assert refused.json()["field"] == "scans[1].label.din"
    single = client.post(
        f"{V1}/scans", headers=courier, json={"scans": [{"label": {"coi": coi, "din": BAG[:-1] + "Z"}, "node": "h-a"}]}
    )
    assert single.json()["detail"][0]["field"] == "scans[0].label.din"  # the same path as in the request body
    nowhere = client.post(f"{V1}/scans", headers=courier, json={"scans": [{"label": label, "node": "mars"}]})
    assert nowhere.json() == {"detail": [{"field": "scans[0].node", "message": "unknown node 'mars'"}]}

    events = journey_of(client, courier, coi)["events"]
    assert [(e["kind"], e["actor"], e["node"], e["item"], e["data"]) for e in events[3:]] == [
        (
            "custody.scan",
            "courier",
            "h-a",
            BAG,
            {"state": "collected", "note": "bag sealed in shipper", "temperature_c": 4.0},
        ),
        ("custody.scan", "courier", "h-a", BAG, {"state": "collected"}),
        ("identity.mismatch", "courier", "hub", wrong, {"attempted": "collected", "field": "scans[1].label.din"}),
    ]  # the refused batch recorded its hard stop and nothing else


def test_orders_listing_filters_and_pages(client: TestClient, crew: Crew) -> None:
    cois = [enroll(client, crew.site, mrn=f"MRN-{n}")["coi"] for n in range(3)]
    ok(client.post(f"{V1}/orders/{cois[1]}/booking", headers=crew.site))
    assert [o["coi"] for o in ok(client.get(f"{V1}/orders", headers=crew.site))["orders"]] == cois
    scheduled = ok(client.get(f"{V1}/orders", headers=crew.site, params={"state": "apheresis_scheduled"}))
    assert [o["coi"] for o in scheduled["orders"]] == [cois[1]]
    page = ok(client.get(f"{V1}/orders", headers=crew.site, params={"limit": 1, "offset": 2}))
    assert (page["limit"], page["offset"], [o["coi"] for o in page["orders"]]) == (1, 2, [cois[2]])
    assert [o["coi"] for o in ok(client.get(f"{V1}/orders", headers=crew.maker))["orders"]] == [cois[1]]
    assert client.get(f"{V1}/orders", headers=crew.site, params={"offset": -1}).json() == {
        "detail": [{"field": "offset", "message": "Input should be greater than or equal to 0"}]
    }


def test_network_and_ledger_verification(client: TestClient, seeded: Engine, clock: ManualClock, crew: Crew) -> None:
    auditor = user(client, seeded, clock, "aud", "hub", Role.AUDITOR)
    network = ok(client.get(f"{V1}/network", headers=crew.site))
    assert (network["id"], network["name"]) == ("test-net", "Test network")
    assert [(n["id"], n["kind"], n["fin"]) for n in network["nodes"]] == [
        ("h-a", "hospital", "A1001"),
        ("h-b", "hospital", "A1002"),
        ("hub", "regional_hub", "A1003"),
    ]
    assert [(lane["from"], lane["to"], lane["transport_hours"]) for lane in network["lanes"]] == [
        ("h-a", "hub", 3.0),
        ("h-b", "hub", 4.0),
    ]
    enroll(client, crew.site)
    report = ok(client.get(f"{V1}/ledger/verify", headers=auditor))
    assert report == {"ok": True, "logs": 4, "checked": SEEDED_EVENTS + 4 + 1, "checkpoints": 0, "findings": []}
    operator = client.get(f"{V1}/ledger/verify", headers=crew.site)
    assert (operator.status_code, operator.json()) == (403, {"detail": "user 'op-a' may not view ledger here"})

    with seeded.begin() as connection:  # an attacker with database access removes an event
        if seeded.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_no_change"))
        else:
            connection.execute(text("DROP TRIGGER ledger_events_no_delete"))
        # op-a's account, the second of h-a's three events (slots opened, op-a created, the enrolment)
        connection.execute(
            text(
                "DELETE FROM ledger_events WHERE seq = 2 AND log_id = "
                "(SELECT id FROM ledger_logs WHERE origin = 'cellrail/test-net/h-a')"
            )
        )
    broken = ok(client.get(f"{V1}/ledger/verify", headers=auditor))
    assert (broken["ok"], broken["logs"], broken["checked"]) == (False, 4, 1 + 1 + 1 + 4)  # network, h-a, h-b, hub
    assert broken["findings"] == [
        {"check": "chain", "log": "cellrail/test-net/h-a", "position": 2, "reason": "event 2 is missing"}
    ]


def test_health_docs_and_openapi(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    root = client.get("/", follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (307, "/docs")
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    spec = client.get("/openapi.json").json()
    operations = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]
    # /health, and under /api/v1: eighteen of the rail (six of them transparency) and seven of the landscape
    assert len(operations) == 26
    for path, method, op in operations:
        assert op.get("summary"), (path, method)
        assert op.get("tags"), (path, method)
        assert "200" in op["responses"] or "201" in op["responses"], (path, method)
    transitions = spec["paths"]["/api/v1/orders/{coi}/transitions"]["post"]
    assert transitions["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AdvanceOrder"
    }
    assert {
        "form": "application/x-www-form-urlencoded"
        in spec["paths"]["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    } == {"form": True}
    assert spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == (
        "api/v1/auth/token"
    )


# ---- random bodies never crash the server --------------------------------------------------------------------

_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            *(s.value for s in OrderState),
            "h-a",
            "hub",
            "mars",
            FIRST_COI,
            BAG,
            "=A10012600000160",
            "2026-03-01T00:00:00Z",
            "2026-03-02T00:00:00+08:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "1970-01-01",
            "\x00",
            "\ud800",
            "",
        ]
    ),
)
_KEYS = st.one_of(
    st.sampled_from(
        [
            *("to", "at", "scan", "coi", "din", "patient_mrn", "password", "reason"),
            *("treatment_site", "mrn", "full_name", "birth_date", "earliest"),
        ]
    ),
    st.text(max_size=10),
)
_JSON = st.recursive(
    _LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=6), max_leaves=12
)
_TEXT = st.sampled_from(["MRN-1", PASSWORD, "a reason", "\x00", "\ud800", "x" * 65, ""]) | st.text(max_size=70)
_MOMENTS = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
# Bodies shaped like the commands, with a wild value here and there, so many get past parsing into the use cases.
_TRANSITIONS = _JSON | st.fixed_dictionaries(
    {"to": st.sampled_from([s.value for s in OrderState])},
    optional={
        "at": _MOMENTS | _LEAVES,
        "scan": st.fixed_dictionaries({"coi": _LEAVES, "din": st.sampled_from([BAG, PRODUCT]) | _LEAVES}) | _JSON,
        "patient_mrn": _TEXT,
        "password": _TEXT,
        "reason": _TEXT | _LEAVES,
        "extra": _LEAVES,
    },
)
_ENROLMENTS = _JSON | st.fixed_dictionaries(
    {
        "treatment_site": st.sampled_from(["h-a", "h-b", "hub", "mars"]),
        "mrn": _TEXT,
        "full_name": _TEXT,
        "birth_date": st.dates().map(str) | _LEAVES,
    },
    optional={"at": _MOMENTS | _LEAVES},
)


@pytest.fixture
def first_order(client: TestClient, crew: Crew) -> str:
    coi: str = enroll(client, crew.site)["coi"]
    return coi


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(transition=_TRANSITIONS, enrolment=_ENROLMENTS)
def test_random_bodies_never_cause_a_server_error(
    client: TestClient, crew: Crew, first_order: str, transition: Any, enrolment: Any
) -> None:
    headers = {**crew.site, "content-type": "application/json"}
    for path, document in ((f"{V1}/orders/{first_order}/transitions", transition), (f"{V1}/orders", enrolment)):
        answer = client.post(path, headers=headers, content=json.dumps(document).encode())
        assert answer.status_code < 500, (path, document, answer.text)
        assert isinstance(answer.json(), dict)
