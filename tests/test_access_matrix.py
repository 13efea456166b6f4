"""Who may do what, where: the whole role x action x node matrix, then the same rules as the services enforce
them on a real store (SQLite and PostgreSQL).

The expected matrix is written out by hand from the policy (node roles act where their node takes part; network
roles everywhere; only a qualified person releases; auditors and administrators never change an order), not
derived from access_control.PERMISSIONS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from cellrail.kernel.clock import ManualClock
from cellrail.kernel.errors import (
    CellRailError,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NoCapacity,
    NotFound,
)
from cellrail.kernel.identifiers import ChainOfIdentity
from cellrail.rail.access_control import Action, Principal, Role, may, role_for
from cellrail.rail.accounts import hash_password
from cellrail.rail.audit import verify_ledger
from cellrail.rail.orders import Order
from cellrail.rail.orders import OrderState as S
from cellrail.rail.ports import UserRecord
from cellrail.rail.recording import origin
from cellrail.rail.services import (
    AdvanceOrder,
    BookOrder,
    CustodyScan,
    EnrollPatient,
    LabelScan,
    advance,
    book,
    enroll,
    list_orders,
    patient_of,
    record_scans,
    timeline,
)
from cellrail.store.uow import SqlUnitOfWork
from tests.conftest import PASSWORD

R = Role
A = Action
ROLES = [R.NODE_OPERATOR, R.COURIER, R.QA_REVIEWER, R.QUALIFIED_PERSON, R.NETWORK_ADMIN, R.AUDITOR]

# Columns: node_operator, courier, qa_reviewer, qualified_person, network_admin, auditor.
#   A  anywhere: on any order, at any node, and on network-level things (the network, the whole ledger)
#   N  only on orders that involve the actor's own node (its treatment site or its manufacturing node)
#   -  never
MATRIX = """
view_network           A A A A A A
view_order             N A N A A A
view_patient_identity  N - - - - -
enroll                 N - - - - -
book                   N - - - - -
open_slots             N - - - A -
collect                N - - - - -
hand_off               N A - - - -
manufacture            N - - - - -
reject                 - - N A - -
release                - - - A - -
infuse                 N - - - - -
withdraw               N - - - - -
view_ledger            - - N A A A
manage_network         - - - - A -
manage_users           - - - - A -
"""


def _expected() -> dict[tuple[Role, Action], str]:
    table: dict[tuple[Role, Action], str] = {}
    for line in MATRIX.strip().splitlines():
        action, *cells = line.split()
        assert len(cells) == len(ROLES), line
        for role, cell in zip(ROLES, cells, strict=True):
            table[(role, Action(action))] = cell
    return table


EXPECTED = _expected()
ORDER_NODES = frozenset({"h-a", "hub"})  # an order treated at h-a and made at hub
# relation -> (the actor's node, the nodes the thing involves)
RELATIONS: dict[str, tuple[str, frozenset[str] | None]] = {
    "site": ("h-a", ORDER_NODES),
    "maker": ("hub", ORDER_NODES),
    "unrelated": ("h-b", ORDER_NODES),
    "network": ("h-a", None),
}
ALLOWED_IN = {"A": {"site", "maker", "unrelated", "network"}, "N": {"site", "maker"}, "-": set()}


def test_matrix_covers_every_role_and_action() -> None:
    assert set(ROLES) == set(Role)
    assert {action for _, action in EXPECTED} == set(Action)
    assert len(EXPECTED) == len(Role) * len(Action)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_role_for_matches_the_matrix(role: Role, action: Action) -> None:
    allowed_in = ALLOWED_IN[EXPECTED[(role, action)]]
    for relation, (node, nodes) in RELATIONS.items():
        principal = Principal(f"user-{relation}", "User", node, frozenset({role}))
        if relation in allowed_in:
            assert role_for(principal, action, nodes) is role, relation
            assert may(principal, action, nodes)
        else:
            with pytest.raises(Forbidden) as error:
                role_for(principal, action, nodes)
            assert str(error.value) == f"user 'user-{relation}' may not {action.value.replace('_', ' ')} here"
            assert not may(principal, action, nodes), relation


def test_a_user_with_several_roles_acts_under_the_one_that_allows() -> None:
    both = Principal("li", "Li", "h-a", frozenset({R.NODE_OPERATOR, R.QUALIFIED_PERSON}))
    assert role_for(both, A.COLLECT, ORDER_NODES) is R.NODE_OPERATOR
    assert role_for(both, A.RELEASE, ORDER_NODES) is R.QUALIFIED_PERSON
    assert role_for(both, A.RELEASE, frozenset({"h-b"})) is R.QUALIFIED_PERSON
    assert role_for(both, A.VIEW_ORDER, frozenset({"h-b"})) is R.QUALIFIED_PERSON
    with pytest.raises(Forbidden):
        role_for(both, A.COLLECT, frozenset({"h-b"}))
    with pytest.raises(Forbidden):
        role_for(Principal("nobody", "N", "h-a", frozenset()), A.VIEW_NETWORK, None)


# --- Enforcement through the services on a seeded store ---------------------------------------------------------

NODES = ("h-a", "h-b", "hub")
SHORT = {
    R.NODE_OPERATOR: "op",
    R.COURIER: "courier",
    R.QA_REVIEWER: "qa",
    R.QUALIFIED_PERSON: "qp",
    R.NETWORK_ADMIN: "admin",
    R.AUDITOR: "auditor",
}
EVERYONE = {f"{SHORT[role]}@{node}" for role in ROLES for node in NODES}


def everywhere(short: str) -> set[str]:
    return {f"{short}@{node}" for node in NODES}


COURIERS, QPS = everywhere("courier"), everywhere("qp")
NETWORK_PEOPLE = COURIERS | QPS | everywhere("admin") | everywhere("auditor")


@cache
def _password_hash() -> str:
    return hash_password(PASSWORD)  # Argon2id once; every test user shares it


@dataclass
class World:
    engine: Engine
    clock: ManualClock
    people: dict[str, Principal]

    def uow(self, *, write: bool = True) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, write=write)

    def enroll(self, site: str, mrn: str) -> Order:
        self.clock.advance(timedelta(minutes=1))
        command = EnrollPatient(treatment_site=site, mrn=mrn, full_name=f"Patient {mrn}", birth_date=date(1970, 1, 1))
        with self.uow() as uow:
            return enroll(uow, command, self.people[f"op@{site}"], self.clock)

    def book(self, order: Order) -> Order:
        with self.uow() as uow:
            return book(uow, order.coi, BookOrder(), self.people[f"op@{order.treatment_site}"], self.clock).order

    def get(self, coi: str) -> Order:
        with self.uow(write=False) as uow:
            found = uow.orders.get(coi)
        assert found is not None
        return found


@pytest.fixture
def world(seeded: Engine, clock: ManualClock) -> World:
    """The seeded test network with one user per role per node, e.g. 'op@h-a', 'qp@hub', 'auditor@h-b'."""
    people: dict[str, Principal] = {}
    with SqlUnitOfWork(seeded) as uow:
        for role in ROLES:
            for node in NODES:
                key = f"{SHORT[role]}@{node}"
                username = key.replace("@", ".")
                uow.users.add(UserRecord(username, key.title(), node, frozenset({role}), _password_hash()))
                people[key] = Principal(username, key.title(), node, frozenset({role}))
        uow.commit()
    return World(seeded, clock, people)


def probe(call: Callable[[], object]) -> str:
    """Run a call whose input is valid except for the check that comes right after the access check (a time in
    the future, or no capacity that far ahead): 'allowed' means the access check passed and nothing changed."""
    refused: InvalidInput | None = None
    try:
        call()
    except NotFound:
        return "not found"
    except Forbidden:
        return "forbidden"
    except IllegalTransition:
        return "illegal"
    except NoCapacity:
        return "allowed"
    except InvalidInput as error:
        refused = error
    assert refused is not None, "the probe was not refused"
    assert len(refused.problems) == 1, refused
    assert refused.problems[0].field.rsplit(".", 1)[-1] in ("at", "earliest"), refused  # e.g. at, scans[0].at
    return "allowed"


def expected_outcomes(allowed: set[str], invisible: set[str]) -> dict[str, str]:
    assert not allowed & invisible
    return {who: "allowed" if who in allowed else "not found" if who in invisible else "forbidden" for who in EVERYONE}


def step_command(
    order: Order, to: S, at_offset: timedelta | None, world: World, password: str = PASSWORD
) -> AdvanceOrder:
    at = None if at_offset is None else world.clock.now() + at_offset
    scan = None
    if to in (S.SHIPPED_TO_MANUFACTURING, S.RECEIVED_AT_MANUFACTURING, S.MANUFACTURING):
        scan = LabelScan(coi=order.coi, din=order.collection_din or "")
    elif to in (S.SHIPPED_TO_SITE, S.RECEIVED_AT_SITE, S.INFUSED):
        scan = LabelScan(coi=order.coi, din=order.product_din or "")
    return AdvanceOrder(
        to=to,
        at=at,
        scan=scan,
        patient_mrn="MRN-1" if to is S.INFUSED else None,
        password=SecretStr(password) if to in (S.RELEASED, S.REJECTED) else None,
        reason="test reason" if to in (S.REJECTED, S.CANCELLED, S.WITHDRAWN) else None,
    )


def probe_step(world: World, order: Order, to: S) -> dict[str, str]:
    def attempt(who: str) -> str:
        def call() -> object:
            with world.uow() as uow:
                return advance(
                    uow, order.coi, step_command(order, to, timedelta(days=1), world), world.people[who], world.clock
                )

        return probe(call)

    return {who: attempt(who) for who in EVERYONE}


# The order below is treated at h-a and, once booked, made at hub: node roles of h-b never see it.
INVISIBLE_BOOKED = {"op@h-b", "qa@h-b"}
INVISIBLE_ENROLLED = {"op@h-b", "qa@h-b", "op@hub", "qa@hub"}


def test_enroll_only_by_the_sites_own_operator(world: World) -> None:
    command = EnrollPatient(treatment_site="h-a", mrn="MRN-9", full_name="X", birth_date=date(1980, 5, 5))
    outcomes = {}
    for who in sorted(EVERYONE - {"op@h-a"}):
        with world.uow() as uow, pytest.raises(Forbidden) as error:
            enroll(uow, command, world.people[who], world.clock)
        outcomes[who] = str(error.value)
    assert outcomes["op@h-b"] == "user 'op.h-b' may not enroll here"
    assert outcomes["admin@hub"] == "user 'admin.hub' may not enroll here"
    with world.uow() as uow:
        order = enroll(uow, command, world.people["op@h-a"], world.clock)
    assert order.treatment_site == "h-a"
    with world.uow(write=False) as uow:
        assert [o.coi for o in list_orders(uow, world.people["auditor@hub"])] == [order.coi]


def test_book_only_by_the_sites_own_operator(world: World) -> None:
    order = world.enroll("h-a", "MRN-1")

    def attempt(who: str) -> str:
        def call() -> object:
            with world.uow() as uow:
                command = BookOrder(earliest=world.clock.now() + timedelta(days=400))
                return book(uow, order.coi, command, world.people[who], world.clock)

        return probe(call)

    assert {who: attempt(who) for who in EVERYONE} == expected_outcomes({"op@h-a"}, INVISIBLE_ENROLLED)
    booked = world.book(order)
    assert booked.manufacturing_node == "hub"
    with world.uow(write=False) as uow:
        assert {s.node for s in uow.slots.held_by(order.coi)} == {"h-a", "hub"}


def test_every_step_is_enforced_at_its_node(world: World) -> None:
    order = world.book(world.enroll("h-a", "MRN-1"))
    with world.uow(write=False) as uow:
        apheresis = next(s for s in uow.slots.held_by(order.coi) if s.node == "h-a")
    world.clock.set(apheresis.ends)
    steps = [
        (S.COLLECTED, {"op@h-a"}, "op@h-a"),
        (S.SHIPPED_TO_MANUFACTURING, {"op@h-a"} | COURIERS, "courier@h-b"),
        (S.RECEIVED_AT_MANUFACTURING, {"op@hub"} | COURIERS, "op@hub"),
        (S.MANUFACTURING, {"op@hub"}, "op@hub"),
        (S.QC_PENDING, {"op@hub"}, "op@hub"),
        (S.REJECTED, {"qa@hub"} | QPS, "qa@hub"),
        (S.MANUFACTURING, {"op@hub"}, "op@hub"),
        (S.QC_PENDING, {"op@hub"}, "op@hub"),
        (S.RELEASED, QPS, "qp@h-a"),
        (S.SHIPPED_TO_SITE, {"op@hub"} | COURIERS, "courier@hub"),
        (S.RECEIVED_AT_SITE, {"op@h-a"} | COURIERS, "op@h-a"),
        (S.INFUSED, {"op@h-a"}, "op@h-a"),
    ]
    for to, allowed, performer in steps:
        world.clock.advance(timedelta(hours=1))
        assert probe_step(world, order, to) == expected_outcomes(allowed, INVISIBLE_BOOKED), to
        assert probe_step(world, order, S.WITHDRAWN) == expected_outcomes({"op@h-a"}, INVISIBLE_BOOKED), to
        if to in (S.RELEASED, S.REJECTED):
            refused = r"^signature refused: the password does not match the signer$"
            with world.uow() as uow, pytest.raises(CellRailError, match=refused):
                advance(
                    uow,
                    order.coi,
                    step_command(order, to, None, world, "wrong password!"),
                    world.people[performer],
                    world.clock,
                )
            with world.uow() as uow, pytest.raises(InvalidInput) as error:
                advance(
                    uow,
                    order.coi,
                    step_command(order, to, None, world).model_copy(update={"password": None}),
                    world.people[performer],
                    world.clock,
                )
            assert [p.field for p in error.value.problems] == ["password"]
        with world.uow() as uow:
            order = advance(uow, order.coi, step_command(order, to, None, world), world.people[performer], world.clock)
        assert world.get(order.coi) == order
        assert order.state is to
        if to is S.REJECTED:  # giving up after a rejection is the treatment site's call
            assert probe_step(world, order, S.CANCELLED) == expected_outcomes({"op@h-a"}, INVISIBLE_BOOKED)
        with world.uow(write=False) as uow:
            last = timeline(uow, order.coi, world.people["auditor@h-b"]).events[-1]
        performer_role = world.people[performer].roles
        assert (last["kind"], last["data"]["to"], last["actor"]) == (
            "order.moved",
            to.value,
            performer.replace("@", "."),
        )
        assert {Role(last["role"])} == set(performer_role)
        if to in (S.RELEASED, S.REJECTED):
            assert [s["user"] for s in last["signatures"]] == [performer.replace("@", ".")]
    assert order.manufacturing_attempts == 2
    closed = expected_outcomes(set(), INVISIBLE_BOOKED) | {"op@h-a": "illegal"}
    assert probe_step(world, order, S.WITHDRAWN) == closed


def test_withdraw_only_by_the_sites_operator(world: World) -> None:
    enrolled = world.enroll("h-a", "MRN-1")
    assert probe_step(world, enrolled, S.WITHDRAWN) == expected_outcomes({"op@h-a"}, INVISIBLE_ENROLLED)
    with world.uow() as uow:
        withdrawn = advance(
            uow, enrolled.coi, step_command(enrolled, S.WITHDRAWN, None, world), world.people["op@h-a"], world.clock
        )
    assert withdrawn.state is S.WITHDRAWN


def _collected(world: World, mrn: str = "MRN-1") -> Order:
    order = world.book(world.enroll("h-a", mrn))
    with world.uow(write=False) as uow:
        apheresis = next(s for s in uow.slots.held_by(order.coi) if s.node == "h-a")
    world.clock.set(apheresis.ends)
    with world.uow() as uow:
        return advance(uow, order.coi, AdvanceOrder(to=S.COLLECTED), world.people["op@h-a"], world.clock)


def test_record_scans_at_the_scanning_node(world: World) -> None:
    order = _collected(world)
    label = LabelScan(coi=order.coi, din=order.collection_din or "")

    def outcomes(node: str) -> dict[str, str]:
        def attempt(who: str) -> str:
            def call() -> object:
                scan = CustodyScan(label=label, node=node, at=world.clock.now() + timedelta(days=1))
                with world.uow() as uow:
                    return record_scans(uow, [scan], world.people[who], world.clock)

            return probe(call)

        return {who: attempt(who) for who in EVERYONE}

    assert outcomes("h-a") == expected_outcomes({"op@h-a"} | COURIERS, INVISIBLE_BOOKED)
    assert outcomes("hub") == expected_outcomes({"op@hub"} | COURIERS, INVISIBLE_BOOKED)
    assert outcomes("h-b") == expected_outcomes(COURIERS, INVISIBLE_BOOKED)
    world.clock.advance(timedelta(minutes=30))
    with world.uow() as uow:
        seqs = record_scans(
            uow,
            [CustodyScan(label=label, node="h-a", temperature_c=4.5, note="in transit")],
            world.people["courier@hub"],
            world.clock,
        )
    with world.uow(write=False) as uow:
        logs = uow.ledger.logs()
        event = timeline(uow, order.coi, world.people["op@h-a"]).events[-1]
    # The scan went to the log of the node where it was made, after h-a's slots, the enrolment, the booking and
    # the collection; the probes above (refused after their access check) left no event in any log.
    h_a = origin("test-net", "h-a")
    assert logs == {
        origin("test-net", "network"): 1,
        h_a: 5,
        origin("test-net", "hub"): 1,
        origin("test-net", "h-b"): 1,
    }
    assert seqs == [logs[h_a]] == [5]
    assert (event["kind"], event["log"], event["seq"], event["actor"], event["role"], event["node"]) == (
        "custody.scan",
        h_a,
        seqs[0],
        "courier.hub",
        "courier",
        "h-a",
    )
    assert event["data"] == {"state": "collected", "note": "in transit", "temperature_c": 4.5}


def test_timeline_and_patient_identity(world: World) -> None:
    order = world.book(world.enroll("h-a", "MRN-1"))
    missing = "CHA100126ZZZZZZ"
    for who in sorted(EVERYONE):
        with world.uow(write=False) as uow:
            if who in INVISIBLE_BOOKED:
                with pytest.raises(NotFound) as hidden:
                    timeline(uow, order.coi, world.people[who])
                with pytest.raises(NotFound) as absent:
                    timeline(uow, missing, world.people[who])
                # An order of another node looks exactly like one that does not exist.
                assert str(hidden.value) == f"no order {order.coi}"
                assert str(absent.value) == f"no order {ChainOfIdentity.parse(missing)}"
            else:
                seen = timeline(uow, order.coi, world.people[who])
                assert seen.order == order
                assert [m.state for m in seen.journey.milestones] == [S.ENROLLED, S.APHERESIS_SCHEDULED]
    for who in sorted(EVERYONE):
        with world.uow(write=False) as uow:
            if who == "op@h-a":
                patient = patient_of(uow, order.coi, world.people[who])
                assert (patient.mrn, patient.full_name, patient.treatment_site) == ("MRN-1", "Patient MRN-1", "h-a")
            elif who in INVISIBLE_BOOKED:
                with pytest.raises(NotFound, match=f"^no order {order.coi}$"):
                    patient_of(uow, order.coi, world.people[who])
            else:
                with pytest.raises(Forbidden, match="may not view patient identity here"):
                    patient_of(uow, order.coi, world.people[who])


def test_list_orders_is_scoped_to_the_actors_node(world: World) -> None:
    a_booked = world.book(world.enroll("h-a", "MRN-1"))
    b_booked = world.book(world.enroll("h-b", "MRN-2"))
    a_enrolled = world.enroll("h-a", "MRN-3")
    assert (a_booked.manufacturing_node, b_booked.manufacturing_node, a_enrolled.manufacturing_node) == (
        "hub",
        "hub",
        None,
    )
    everything = [a_booked.coi, b_booked.coi, a_enrolled.coi]
    expected = {
        "op@h-a": [a_booked.coi, a_enrolled.coi],
        "qa@h-a": [a_booked.coi, a_enrolled.coi],
        "op@h-b": [b_booked.coi],
        "qa@h-b": [b_booked.coi],
        "op@hub": [a_booked.coi, b_booked.coi],
        "qa@hub": [a_booked.coi, b_booked.coi],
    } | dict.fromkeys(NETWORK_PEOPLE, everything)
    with world.uow(write=False) as uow:
        seen = {who: [o.coi for o in list_orders(uow, world.people[who])] for who in EVERYONE}
        assert seen == expected
        scheduled = [o.coi for o in list_orders(uow, world.people["op@h-a"], S.APHERESIS_SCHEDULED)]
        assert scheduled == [a_booked.coi]
        assert [o.coi for o in list_orders(uow, world.people["op@hub"], S.ENROLLED)] == []
        assert [o.coi for o in list_orders(uow, world.people["auditor@h-b"], S.ENROLLED)] == [a_enrolled.coi]
        assert [o.coi for o in list_orders(uow, world.people["courier@h-a"], limit=1, offset=1)] == [b_booked.coi]


def test_verify_ledger_only_for_network_oversight(world: World) -> None:
    world.book(world.enroll("h-a", "MRN-1"))
    allowed = QPS | everywhere("admin") | everywhere("auditor")
    with world.uow(write=False) as uow:
        size = uow.ledger.size()
        for who in sorted(EVERYONE):
            if who in allowed:
                report = verify_ledger(uow, world.people[who])
                assert (report.ok, report.logs, report.events, report.findings) == (True, 4, size, [])
            else:
                with pytest.raises(Forbidden, match="may not view ledger here"):
                    verify_ledger(uow, world.people[who])
    assert size == 6  # network, 3 x slots opened, enrolment, booking (test users are stored directly)
