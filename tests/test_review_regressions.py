"""Regression tests for the review fixes (commit "Review fixes: logins off the write lock, segregation of
duties, custody label by state, time order, re-registration rules, ..."), at the service and domain level.

Each test names the finding it pins down. Names that only exist since the fix are imported inside the tests that
need them, so every other test of this module still runs (and fails for its own reason) on the previous commit.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from cellrail.api.app import create_app
from cellrail.kernel.clock import ManualClock
from cellrail.kernel.errors import (
    Forbidden,
    IdentityMismatch,
    IllegalTransition,
    InvalidInput,
    Problem,
    Unauthenticated,
)
from cellrail.kernel.identifiers import DIN
from cellrail.rail import accounts
from cellrail.rail.access_control import SYSTEM, Principal, Role
from cellrail.rail.accounts import NewUser, create_user, hash_password, issue_token
from cellrail.rail.audit import verify_ledger
from cellrail.rail.booking import Resource
from cellrail.rail.ledger import GENESIS, ChainBreak, ChainReport, CustodyEvent, EventKind, seal, verify_rows
from cellrail.rail.orders import Order
from cellrail.rail.orders import OrderState as S
from cellrail.rail.ports import UserRecord
from cellrail.rail.services import (
    AdvanceOrder,
    BookOrder,
    CustodyScan,
    EnrollPatient,
    LabelScan,
    OpenSlots,
    advance,
    book,
    enroll,
    open_slots,
    record_scans,
    register_network,
    timeline,
)
from cellrail.store.engine import WRITE, open_store
from cellrail.store.uow import SqlUnitOfWork
from tests.api_support import enroll as api_enroll
from tests.api_support import move, ok, user
from tests.conftest import NETWORK_YAML, PASSWORD, START, add_user, seed

FIRST_BAG = str(DIN("A1001", 26, 1))  # the first collection DIN issued at h-a in 2026
AUDITOR = Principal("aud", "Auditor", "hub", frozenset({Role.AUDITOR}))  # read-only; never stored


def _patient(mrn: str = "MRN-1", at: datetime | None = None) -> EnrollPatient:
    return EnrollPatient(treatment_site="h-a", mrn=mrn, full_name="Li Wei", birth_date=date(1970, 1, 1), at=at)


def _enroll(engine: Engine, clock: ManualClock, actor: Principal, mrn: str = "MRN-1") -> Order:
    with SqlUnitOfWork(engine) as uow:
        return enroll(uow, _patient(mrn), actor, clock)


def _book(engine: Engine, clock: ManualClock, coi: str, actor: Principal, command: BookOrder | None = None) -> Any:
    with SqlUnitOfWork(engine) as uow:
        return book(uow, coi, command or BookOrder(), actor, clock)


def _advance(engine: Engine, clock: ManualClock, coi: str, actor: Principal, to: S, **fields: Any) -> Order:
    with SqlUnitOfWork(engine) as uow:
        return advance(uow, coi, AdvanceOrder(to=to, **fields), actor, clock)


def _scan(engine: Engine, clock: ManualClock, actor: Principal, coi: str, din: str, node: str = "hub") -> list[int]:
    with SqlUnitOfWork(engine) as uow:
        return record_scans(uow, [CustodyScan(label=LabelScan(coi=coi, din=din), node=node)], actor, clock)


def _events(engine: Engine, coi: str) -> list[dict[str, Any]]:
    with SqlUnitOfWork(engine, write=False) as uow:
        return uow.ledger.for_order(coi)


def _current_order(engine: Engine, coi: str) -> Order:
    with SqlUnitOfWork(engine, write=False) as uow:
        order = uow.orders.get(coi)
    assert order is not None
    return order


def _to_qc_pending(engine: Engine, clock: ManualClock, site: Principal, maker: Principal) -> Order:
    """An order enrolled at START, booked, collected, shipped, received, manufactured and put in QC at the hub."""
    order = _enroll(engine, clock, site)
    booking = _book(engine, clock, order.coi, site)
    clock.set(booking.apheresis.ends)
    order = _advance(engine, clock, order.coi, site, S.COLLECTED)
    bag = {"scan": LabelScan(coi=order.coi, din=order.collection_din or "")}
    clock.advance(timedelta(hours=1))
    _advance(engine, clock, order.coi, site, S.SHIPPED_TO_MANUFACTURING, **bag)
    clock.advance(timedelta(hours=4))
    _advance(engine, clock, order.coi, maker, S.RECEIVED_AT_MANUFACTURING, **bag)
    clock.advance(timedelta(hours=20))
    _advance(engine, clock, order.coi, maker, S.MANUFACTURING, **bag)
    clock.advance(timedelta(days=12))
    return _advance(engine, clock, order.coi, maker, S.QC_PENDING)


# ---- 1. identifiers: non-ASCII flag digits ------------------------------------------------------------------


def _arabic_indic(digits: str) -> str:
    return digits.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


SUPERSCRIPT_FLAGS = f"={FIRST_BAG[:13]}²³"  # "²³".isdigit() but int("²³") raises ValueError
# The right Type 3 flag for the DIN, written in Arabic-Indic digits: int() reads them as 60-96.
ARABIC_FLAGS = f"={FIRST_BAG[:13]}{_arabic_indic(DIN('A1001', 26, 1).barcode_data[-2:])}"


@pytest.mark.parametrize("scanned", [SUPERSCRIPT_FLAGS, ARABIC_FLAGS], ids=["superscript", "arabic-indic"])
def test_din_barcode_flags_must_be_ascii_digits(scanned: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        DIN.parse(scanned, "scan.din")
    assert refused.value.problems == (
        Problem("scan.din", f"'{scanned}' is not ISBT 128 DIN barcode data (=, 13 characters, 2 flags)"),
    )
    assert str(DIN.parse(DIN("A1001", 26, 1).barcode_data, "scan.din")) == FIRST_BAG  # ASCII flags still read


def test_custody_scan_with_non_ascii_flags_names_the_field(seeded: Engine, clock: ManualClock) -> None:
    site = add_user(seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    order = _enroll(seeded, clock, site)
    scan = CustodyScan(label=LabelScan(coi=order.coi, din=SUPERSCRIPT_FLAGS), node="h-a")
    with SqlUnitOfWork(seeded) as uow, pytest.raises(InvalidInput) as refused:
        record_scans(uow, [scan], site, clock)
    assert refused.value.problems == (
        Problem(
            "scans[0].label.din",
            f"'{SUPERSCRIPT_FLAGS}' is not ISBT 128 DIN barcode data (=, 13 characters, 2 flags)",
        ),
    )


def test_api_transition_with_non_ascii_flags_is_422_not_500(seeded: Engine, clock: ManualClock) -> None:
    app = create_app(seeded, clock, token_hours=24 * 30)
    with TestClient(app, raise_server_exceptions=False) as client:
        site = user(client, seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
        coi = api_enroll(client, site)["coi"]
        ok(client.post(f"/api/v1/orders/{coi}/booking", headers=site))
        clock.set(datetime(2026, 3, 2, 4, tzinfo=UTC))
        assert ok(move(client, site, coi, "collected"))["collection_din"] == FIRST_BAG
        answer = move(client, site, coi, "shipped_to_manufacturing", scan={"coi": coi, "din": SUPERSCRIPT_FLAGS})
        assert answer.status_code == 422, answer.text
        assert answer.json() == {
            "detail": [
                {
                    "field": "scan.din",
                    "message": f"'{SUPERSCRIPT_FLAGS}' is not ISBT 128 DIN barcode data (=, 13 characters, 2 flags)",
                }
            ]
        }
        assert ok(client.get(f"/api/v1/orders/{coi}", headers=site))["state"] == "collected"


# ---- 2. times: reported times ahead of the server, and collection before the booked slot ---------------------


def test_steps_after_an_enrolment_stamped_ahead_never_go_back_in_time(seeded: Engine, clock: ManualClock) -> None:
    site = add_user(seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    ahead = START + timedelta(minutes=4)  # within the 5 minutes of clock skew a reported time may have
    with SqlUnitOfWork(seeded) as uow:
        order = enroll(uow, _patient(at=ahead), site, clock)
    booking = _book(seeded, clock, order.coi, site)  # the server clock still reads START
    assert booking.apheresis.starts == START  # the 08:00 (Asia/Shanghai) chair on Monday 2 March
    collected = _advance(seeded, clock, order.coi, site, S.COLLECTED)  # no `at`: the server's time
    assert collected.state is S.COLLECTED
    with SqlUnitOfWork(seeded, write=False) as uow:
        journey = timeline(uow, order.coi, AUDITOR).journey
    assert [(m.state, m.at) for m in journey.milestones] == [
        (S.ENROLLED, ahead),
        (S.APHERESIS_SCHEDULED, ahead),
        (S.COLLECTED, ahead),
    ]
    durations = [stage.duration for stage in journey.stages]
    assert durations == [timedelta(0), timedelta(0), None]


def test_collection_before_the_booked_apheresis_slot_is_refused(seeded: Engine, clock: ManualClock) -> None:
    site = add_user(seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    order = _enroll(seeded, clock, site)
    booking = _book(seeded, clock, order.coi, site, BookOrder(earliest=START + timedelta(days=1)))
    assert booking.apheresis.starts == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    clock.set(datetime(2026, 3, 3, 4, 0, tzinfo=UTC))
    early = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # after enrolment, before the chair was booked
    with pytest.raises(InvalidInput) as refused:
        _advance(seeded, clock, order.coi, site, S.COLLECTED, at=early)
    assert refused.value.problems == (
        Problem("at", "2026-03-02T12:00:00.000000Z is before the booked apheresis slot (2026-03-03T00:00:00.000000Z)"),
    )
    assert _current_order(seeded, order.coi).state is S.APHERESIS_SCHEDULED
    collected = _advance(seeded, clock, order.coi, site, S.COLLECTED, at=booking.apheresis.starts)
    assert collected.collection_din == FIRST_BAG
    assert [e["at"] for e in _events(seeded, order.coi)][-1] == "2026-03-03T00:00:00.000000Z"


# ---- 3. custody checkpoints follow the bag actually in custody ----------------------------------------------


def test_custody_scans_during_remanufacture_expect_the_retained_collection(seeded: Engine, clock: ManualClock) -> None:
    site = add_user(seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    maker = add_user(seeded, clock, "op-hub", "hub", Role.NODE_OPERATOR)
    qp = add_user(seeded, clock, "qp", "hub", Role.QUALIFIED_PERSON)
    order = _to_qc_pending(seeded, clock, site, maker)
    bag, first_product = order.collection_din or "", order.product_din or ""
    assert (bag, first_product) == (FIRST_BAG, str(DIN("A1003", 26, 1)))
    assert len(_scan(seeded, clock, maker, order.coi, first_product)) == 1  # in QC: the product is in custody

    clock.advance(timedelta(days=7))
    rejected = _advance(seeded, clock, order.coi, qp, S.REJECTED, password=PASSWORD, reason="sterility failed")
    assert rejected.state is S.REJECTED
    assert len(_scan(seeded, clock, maker, order.coi, bag)) == 1  # the retained collection, kept for remanufacture
    with pytest.raises(IdentityMismatch) as stopped:
        _scan(seeded, clock, maker, order.coi, first_product)
    assert (stopped.value.order_id, stopped.value.field, stopped.value.scanned) == (
        order.coi,
        "scans[0].label.din",
        first_product,
    )
    mismatches = [e for e in _events(seeded, order.coi) if e["kind"] == EventKind.IDENTITY_MISMATCH.value]
    assert [(e["node"], e["actor"], e["item"], e["data"]) for e in mismatches] == [
        ("hub", "op-hub", first_product, {"attempted": "rejected", "field": "scans[0].label.din"})
    ]

    label = {"scan": LabelScan(coi=order.coi, din=bag)}
    clock.advance(timedelta(days=1))
    _advance(seeded, clock, order.coi, maker, S.MANUFACTURING, **label)
    assert len(_scan(seeded, clock, maker, order.coi, bag)) == 1  # remanufacturing from the collection
    clock.advance(timedelta(days=12))
    remade = _advance(seeded, clock, order.coi, maker, S.QC_PENDING)
    second_product = remade.product_din or ""
    assert second_product == str(DIN("A1003", 26, 2))
    clock.advance(timedelta(days=7))
    _advance(seeded, clock, order.coi, qp, S.RELEASED, password=PASSWORD)
    assert len(_scan(seeded, clock, maker, order.coi, second_product)) == 1  # released: the new product
    for stale in (bag, first_product):
        with pytest.raises(IdentityMismatch):
            _scan(seeded, clock, maker, order.coi, stale)
    scans = [e for e in _events(seeded, order.coi) if e["kind"] == EventKind.CUSTODY_SCAN.value]
    assert [(e["item"], e["data"]["state"]) for e in scans] == [
        (first_product, "qc_pending"),
        (bag, "rejected"),
        (bag, "manufacturing"),
        (second_product, "released"),
    ]


# ---- 4. segregation of duties -------------------------------------------------------------------------------


def test_a_user_cannot_be_both_node_operator_and_qualified_person(seeded: Engine, clock: ManualClock) -> None:
    with SqlUnitOfWork(seeded, write=False) as uow:
        before = uow.ledger.size()
    command = NewUser(
        username="maker-qp",
        full_name="Maker And Releaser",
        node="hub",
        roles=[Role.QUALIFIED_PERSON, Role.NODE_OPERATOR],
        password=PASSWORD,
    )
    with SqlUnitOfWork(seeded) as uow, pytest.raises(InvalidInput) as refused:
        create_user(uow, command, SYSTEM, clock)
    assert refused.value.problems == (
        Problem("roles", "a qualified person may not also be a node operator (segregation of duties)"),
    )
    with SqlUnitOfWork(seeded, write=False) as uow:
        assert uow.users.get("maker-qp") is None
        assert uow.ledger.size() == before


def test_whoever_manufactured_an_order_may_not_release_it(seeded: Engine, clock: ManualClock) -> None:
    """create_user refuses node_operator + qualified_person, no command changes a user's roles and usernames are
    unique, so through the services no maker can hold the release permission. An account stored before that rule
    existed can, so it is inserted here directly, as such a store holds it: its release is still refused."""
    with SqlUnitOfWork(seeded) as uow:
        uow.users.add(
            UserRecord(
                username="legacy",
                full_name="Legacy Dual Role",
                node="hub",
                roles=frozenset({Role.NODE_OPERATOR, Role.QUALIFIED_PERSON}),
                password_hash=hash_password(PASSWORD),
            )
        )
        uow.commit()
    legacy = Principal("legacy", "Legacy Dual Role", "hub", frozenset({Role.NODE_OPERATOR, Role.QUALIFIED_PERSON}))
    site = add_user(seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    qp = add_user(seeded, clock, "qp", "hub", Role.QUALIFIED_PERSON)
    order = _to_qc_pending(seeded, clock, site, legacy)
    clock.advance(timedelta(days=7))
    with pytest.raises(Forbidden) as refused:
        _advance(seeded, clock, order.coi, legacy, S.RELEASED, password=PASSWORD)
    assert str(refused.value) == f"user 'legacy' manufactured order {order.coi} and may not also release it"
    assert _current_order(seeded, order.coi).state is S.QC_PENDING
    released = _advance(seeded, clock, order.coi, qp, S.RELEASED, password=PASSWORD)
    assert released.state is S.RELEASED
    moves = [(e["actor"], e["data"]["to"]) for e in _events(seeded, order.coi) if e["kind"] == "order.moved"]
    assert moves[-3:] == [("legacy", "manufacturing"), ("legacy", "qc_pending"), ("qp", "released")]


# ---- 5. re-registering the network ----------------------------------------------------------------------------

_H_B = """\
  - id: h-b
    name: Hospital B
    kind: hospital
    fin: A1002
    timezone: Asia/Shanghai
    location: {city: Hangzhou, country: CN, latitude: 30.3, longitude: 120.2}
    capabilities: {apheresis_chairs: 1, infusion_beds: 2}
"""
_H_B_LANE = "  - {from: h-b, to: hub, transport_hours: 4, days: [mon, tue, wed, thu, fri, sat, sun]}\n"
_H_C = """\
  - id: h-c
    name: Hospital C
    kind: hospital
    fin: A1004
    timezone: Asia/Shanghai
    location: {city: Ningbo, country: CN, latitude: 29.9, longitude: 121.6}
    capabilities: {apheresis_chairs: 1, infusion_beds: 2}
"""
_H_C_LANE = "  - {from: h-c, to: hub, transport_hours: 3, days: [mon, tue, wed, thu, fri, sat, sun]}\n"


def _register(engine: Engine, clock: ManualClock, yaml_text: str) -> Any:
    with SqlUnitOfWork(engine) as uow:
        return register_network(uow, yaml_text, "network.yaml", SYSTEM, clock)


def test_re_registration_keeps_every_node_and_its_fin(seeded: Engine, clock: ManualClock) -> None:
    assert _H_B in NETWORK_YAML
    assert _H_B_LANE in NETWORK_YAML
    site = add_user(seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    order = _enroll(seeded, clock, site)
    booking = _book(seeded, clock, order.coi, site)

    without_h_b = NETWORK_YAML.replace(_H_B, "").replace(_H_B_LANE, "")
    with pytest.raises(InvalidInput) as dropped:
        _register(seeded, clock, without_h_b)
    assert dropped.value.problems == (
        Problem("nodes", "node 'h-b' of the registered network is missing", "network.yaml"),
    )
    new_fin = NETWORK_YAML.replace("fin: A1001", "fin: A1009")
    with pytest.raises(InvalidInput) as renumbered:
        _register(seeded, clock, new_fin)
    assert renumbered.value.problems == (
        Problem("nodes", "node 'h-a' may not change its FIN or kind once registered", "network.yaml"),
    )
    renamed = NETWORK_YAML.replace("id: test-net", "id: other-net")
    with pytest.raises(InvalidInput) as new_id:  # the network id is in the name of every log
        _register(seeded, clock, renamed)
    assert new_id.value.problems == (
        Problem("network.id", "the network id names every log and may not change", "network.yaml"),
    )

    with SqlUnitOfWork(seeded, write=False) as uow:
        current = uow.networks.current()
        logs = uow.ledger.logs()
        network_log = list(uow.ledger.rows("cellrail/test-net/network"))
    assert current is not None
    assert current.network.id == "test-net"
    assert [(n.id, n.fin) for n in current.nodes] == [("h-a", "A1001"), ("h-b", "A1002"), ("hub", "A1003")]
    assert [e[2] for e in network_log] == [EventKind.NETWORK_REGISTERED.value]  # the refusals recorded nothing
    assert set(logs) == {
        "cellrail/test-net/network",
        "cellrail/test-net/h-a",
        "cellrail/test-net/h-b",
        "cellrail/test-net/hub",
    }
    clock.set(booking.apheresis.ends)
    assert _advance(seeded, clock, order.coi, site, S.COLLECTED).collection_din == FIRST_BAG  # FIN A1001

    grown = NETWORK_YAML.replace("lanes:\n", _H_C + "lanes:\n") + _H_C_LANE
    assert [n.id for n in _register(seeded, clock, grown).nodes] == ["h-a", "h-b", "hub", "h-c"]
    with SqlUnitOfWork(seeded, write=False) as uow:
        current = uow.networks.current()
    assert current is not None
    assert current.node_ids == {"h-a", "h-b", "hub", "h-c"}


# ---- 6. a failed login does not hold the write lock -----------------------------------------------------------


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = open_store(sqlite_url)
    yield engine
    engine.dispose()


def _enrol_while_a_login_is_checked(
    engine: Engine, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, log_in: Callable[[], Any]
) -> dict[str, Any]:
    """Run ``log_in`` in a thread whose password check blocks until released, and meanwhile enrol a patient in
    another thread. Returns what each produced (a result or the exception), and whether the enrolment committed
    while the password was still being checked."""
    seed(engine, clock, days=1)
    site = add_user(engine, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    verifying, release = threading.Event(), threading.Event()
    real_check = accounts.password_matches

    def slow_check(password_hash: str, password: str) -> bool:
        verifying.set()
        release.wait(30)
        return real_check(password_hash, password)

    monkeypatch.setattr(accounts, "password_matches", slow_check)
    outcome: dict[str, Any] = {}

    def run(name: str, work: Callable[[], Any]) -> None:
        try:
            outcome[name] = work()
        except Exception as error:  # handed to the main thread
            outcome[name] = error

    login = threading.Thread(target=run, args=("login", log_in))
    writer = threading.Thread(target=run, args=("enrol", partial(_enroll, engine, clock, site)))
    login.start()
    try:
        assert verifying.wait(10), outcome.get("login")
        writer.start()
        writer.join(10)  # at once when logins stay off the write lock; else only after `release`
        outcome["enrolled while checking"] = not writer.is_alive() and not release.is_set()
    finally:
        release.set()
        login.join(30)
        if writer.ident is not None:
            writer.join(60)
    return outcome


def test_a_writer_commits_while_a_failed_login_is_being_checked(
    sqlite_engine: Engine, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    uows = partial(SqlUnitOfWork, sqlite_engine)
    outcome = _enrol_while_a_login_is_checked(
        sqlite_engine, clock, monkeypatch, lambda: issue_token(uows, "op-a", "wrong password!", clock, 1)
    )
    assert outcome["enrolled while checking"] is True
    assert isinstance(outcome["enrol"], Order), outcome["enrol"]
    assert outcome["enrol"].state is S.ENROLLED
    assert isinstance(outcome["login"], Unauthenticated), outcome["login"]
    assert str(outcome["login"]) == "wrong username or password"

    issued = issue_token(uows, "op-a", PASSWORD, clock, 2)  # a right password still gets its token written
    assert issued.expires_at == START + timedelta(hours=2)
    with SqlUnitOfWork(sqlite_engine, write=False) as uow:
        assert accounts.authenticate(uow, issued.token, clock).username == "op-a"


def test_api_login_checks_the_password_off_the_write_lock(
    sqlite_engine: Engine, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(create_app(sqlite_engine, clock), raise_server_exceptions=False)
    form = {"username": "op-a", "password": "wrong password!"}
    outcome = _enrol_while_a_login_is_checked(
        sqlite_engine, clock, monkeypatch, lambda: client.post("/api/v1/auth/token", data=form)
    )
    assert outcome["enrolled while checking"] is True
    assert isinstance(outcome["enrol"], Order), outcome["enrol"]
    assert outcome["login"].status_code == 401, outcome["login"]
    assert outcome["login"].json()["detail"] == "wrong username or password"


# ---- 7. SQLite durability settings on every connection ------------------------------------------------------


def test_every_sqlite_connection_runs_wal_with_synchronous_full(sqlite_engine: Engine) -> None:
    # Read-only connections, held open together so the pool has to make three (writers would queue on one lock).
    connections = [sqlite_engine.connect().execution_options(**{WRITE: False}) for _ in range(3)]
    try:
        seen = set()
        for connection in connections:
            seen.add(id(connection.connection.dbapi_connection))
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA synchronous")).scalar() == 2
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert len(seen) == 3  # three distinct SQLite connections, each configured
    finally:
        for connection in connections:
            connection.close()
    sqlite_engine.dispose()  # a fresh pool: new connections are configured too
    for write in (False, True):
        with SqlUnitOfWork(sqlite_engine, write=write) as uow:
            in_uow = uow._connection
            assert in_uow is not None
            assert in_uow.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert in_uow.execute(text("PRAGMA synchronous")).scalar() == 2


# ---- 8. concurrent steps on the same order --------------------------------------------------------------------


def test_only_one_of_eight_concurrent_collections_of_an_order_wins(seeded: Engine, clock: ManualClock) -> None:
    site = add_user(seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    order = _enroll(seeded, clock, site)
    booking = _book(seeded, clock, order.coi, site)
    clock.set(booking.apheresis.ends)
    start = threading.Barrier(8)

    def attempt(_: int) -> Order | Exception:
        start.wait(10)
        try:
            return _advance(seeded, clock, order.coi, site, S.COLLECTED)
        except Exception as error:
            return error

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    winners = [r for r in results if isinstance(r, Order)]
    losers = [r for r in results if not isinstance(r, Order)]
    assert len(winners) == 1, results
    assert all(isinstance(r, IllegalTransition) for r in losers), losers
    assert {(r.current, r.attempted, r.allowed) for r in losers if isinstance(r, IllegalTransition)} == {
        ("collected", "collected", ("shipped_to_manufacturing", "withdrawn"))
    }
    assert len(losers) == 7
    assert winners[0].collection_din == FIRST_BAG
    assert _current_order(seeded, order.coi).collection_din == FIRST_BAG
    events = _events(seeded, order.coi)
    collections = [e for e in events if e["kind"] == "order.moved" and e["data"]["to"] == "collected"]
    assert [(e["item"], e["data"]["din"]) for e in collections] == [(FIRST_BAG, FIRST_BAG)]
    with SqlUnitOfWork(seeded, write=False) as uow:
        assert uow.counters.take("din/A1001/26") == 2  # exactly one DIN was issued (the take is rolled back)
        assert verify_ledger(uow, AUDITOR).ok


# ---- 9. booking looks past the first free apheresis slots -----------------------------------------------------

_BUSY_SITE = NETWORK_YAML.replace(
    "capabilities: {apheresis_chairs: 1, infusion_beds: 2}",
    "capabilities: {apheresis_chairs: 20, collections_per_chair_per_day: 2, infusion_beds: 2}",
    1,
)


def _busy_site(engine: Engine, clock: ManualClock) -> list[Any]:
    """h-a offers 40 collections a working day from Monday 2 March; the hub's first run starts Tuesday 10 March
    09:00 (01:00 UTC), which only collections from Monday 9 March reach within the 72 h fresh holding limit.
    Returns h-a's free apheresis slots, soonest first."""
    _register(engine, clock, _BUSY_SITE)
    for node, first_day, days in (("h-a", date(2026, 3, 2), 9), ("hub", date(2026, 3, 9), 28)):
        with SqlUnitOfWork(engine) as uow:
            open_slots(uow, OpenSlots(node=node, first_day=first_day, days=days), SYSTEM, clock)
    with SqlUnitOfWork(engine, write=False) as uow:
        free = uow.slots.free("h-a", Resource.APHERESIS, START, None, 10_000)
    assert len(free) == 7 * 40
    assert len([s for s in free if s.starts < datetime(2026, 3, 9, 0, 0, tzinfo=UTC)]) == 200
    return free


def test_booking_finds_a_chain_past_hundreds_of_unchainable_slots(engine: Engine, clock: ManualClock) -> None:
    free = _busy_site(engine, clock)
    with SqlUnitOfWork(engine, write=False) as uow:
        [run] = uow.slots.free("hub", Resource.MANUFACTURING, START, None, 1)
    assert run.starts == datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
    site = add_user(engine, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    order = _enroll(engine, clock, site)
    booking = _book(engine, clock, order.coi, site)
    assert booking.apheresis.id == free[200].id  # the first of Monday 9 March, after 200 that cannot chain
    assert booking.apheresis.starts == datetime(2026, 3, 9, 0, 0, tzinfo=UTC)
    assert (booking.manufacturing.id, booking.manufacturing.starts) == (run.id, run.starts)
    with SqlUnitOfWork(engine, write=False) as uow:
        assert {s.id for s in uow.slots.held_by(order.coi)} == {free[200].id, run.id}


def test_free_apheresis_pages_through_every_free_slot_once_in_time_order(
    sqlite_engine: Engine, clock: ManualClock
) -> None:
    from cellrail.rail.services import _free_apheresis

    free = _busy_site(sqlite_engine, clock)
    with SqlUnitOfWork(sqlite_engine, write=False) as uow:
        paged = list(_free_apheresis(uow, "h-a", START))  # pages of 100
        later = list(_free_apheresis(uow, "h-a", datetime(2026, 3, 9, 0, 0, tzinfo=UTC)))
    assert [s.id for s in paged] == [s.id for s in free]
    assert [s.starts for s in paged] == sorted(s.starts for s in free)
    assert [s.id for s in later] == [s.id for s in free[200:]]


def test_free_apheresis_yields_every_slot_when_many_share_a_start(sqlite_engine: Engine, clock: ManualClock) -> None:
    from cellrail.rail.services import _free_apheresis

    many_chairs = NETWORK_YAML.replace(
        "capabilities: {apheresis_chairs: 1, infusion_beds: 2}",
        "capabilities: {apheresis_chairs: 150, infusion_beds: 2}",
        1,
    )
    _register(sqlite_engine, clock, many_chairs)
    with SqlUnitOfWork(sqlite_engine) as uow:
        open_slots(uow, OpenSlots(node="h-a", first_day=date(2026, 3, 2), days=2), SYSTEM, clock)
    with SqlUnitOfWork(sqlite_engine, write=False) as uow:
        free = uow.slots.free("h-a", Resource.APHERESIS, START, None, 10_000)
        paged = list(_free_apheresis(uow, "h-a", START))
    assert len(free) == 300
    assert [s.id for s in paged] == [s.id for s in free]


# ---- 10. ledger verification of a well-hashed body that is not an event ---------------------------------------


@pytest.mark.parametrize("body", [b"[1,2]", b'"text"', b"null", b'{"seq":2}', b"not json"])
def test_verify_names_a_hashed_body_that_is_not_an_event(body: bytes) -> None:
    [first] = seal([CustodyEvent(EventKind.SLOTS_OPENED, "h-a", "system", "network_admin", START)], 0, GENESIS, START)
    forged = hashlib.sha256(first.hash + body).digest()
    rows = [(1, None, "slots.opened", first.body, first.hash), (2, None, "order.moved", body, forged)]
    assert verify_rows(rows) == ChainReport(1, first.hash, ChainBreak(2, "content is not a CellRail event"))
    alone = hashlib.sha256(GENESIS + body).digest()
    assert verify_rows([(1, None, "order.moved", body, alone)]) == ChainReport(
        0, GENESIS, ChainBreak(1, "content is not a CellRail event")
    )
