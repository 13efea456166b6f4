"""Capacity and booking: the slots a node offers (hand-computed), chaining an apheresis slot to a manufacturing
slot the cells can reach in time, atomicity, and many bookings and enrolments racing on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, func, select

from cellrail.kernel.clock import ManualClock
from cellrail.kernel.errors import NoCapacity
from cellrail.kernel.identifiers import ChainOfIdentity
from cellrail.rail.access_control import SYSTEM, Principal, Role
from cellrail.rail.audit import verify_ledger
from cellrail.rail.booking import Resource, SlotSpec, manufacturing_windows, plan_slots
from cellrail.rail.network import Node, load_network
from cellrail.rail.orders import Order
from cellrail.rail.orders import OrderState as S
from cellrail.rail.parameters import holding_limits
from cellrail.rail.ports import Slot
from cellrail.rail.recording import origin
from cellrail.rail.services import (
    AdvanceOrder,
    Booking,
    BookOrder,
    EnrollPatient,
    OpenSlots,
    advance,
    book,
    enroll,
    open_slots,
    register_network,
)
from cellrail.store import tables as t
from cellrail.store.uow import SqlUnitOfWork
from tests.conftest import NETWORK_YAML, START, add_user

NETWORK = load_network(NETWORK_YAML)
MONDAY = date(2026, 3, 2)


def utc(month: int, day: int, hour: int) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def node(
    *,
    run_days: float = 12,
    units: int = 1,
    days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri"),
    chairs: int = 0,
    per_chair: int = 1,
    timezone: str = "UTC",
) -> Node:
    return Node.model_validate(
        {
            "id": "m",
            "name": "M",
            "kind": "regional_hub",
            "fin": "A1009",
            "timezone": timezone,
            "location": {"city": "X", "country": "CN", "latitude": 0, "longitude": 0},
            "operating_days": list(days),
            "capabilities": {
                "qc_lab": True,
                "apheresis_chairs": chairs,
                "collections_per_chair_per_day": per_chair,
                "manufacturing": [{"platform": "P", "units": units, "run_days": run_days}],
            },
        }
    )


# --- plan_slots, hand-computed ------------------------------------------------------------------------------------


def test_hospital_apheresis_slots_for_four_weeks() -> None:
    slots = plan_slots(NETWORK.node("h-a"), MONDAY, 28)
    # One chair, one collection a day, Monday to Friday: 20 sessions, 08:00-12:00 Shanghai = 00:00-04:00 UTC.
    weekdays = [2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20, 23, 24, 25, 26, 27]
    assert [(s.resource, s.unit, s.platform, s.starts, s.ends) for s in slots] == [
        (Resource.APHERESIS, 0, "", utc(3, d, 0), utc(3, d, 4)) for d in weekdays
    ]


def test_two_chairs_two_turns_six_days_a_week() -> None:
    slots = plan_slots(node(chairs=2, per_chair=2, days=("mon", "tue", "wed", "thu", "fri", "sat"), units=0), MONDAY, 7)
    assert len(slots) == 6 * 2 * 2
    assert {(s.unit, s.starts.hour, (s.ends - s.starts)) for s in slots} == {
        (chair, hour, timedelta(hours=4)) for chair in (0, 1) for hour in (8, 13)
    }
    assert {s.starts.date() for s in slots} == {MONDAY + timedelta(days=d) for d in range(6)}


def test_hub_manufacturing_slots_four_and_eight_weeks() -> None:
    hub = NETWORK.node("hub")
    # Prodigy, 2 units, 12-day runs: a 13-day cycle per unit anchored on 2024-01-01, unit 1 staggered 6 days.
    # Unit 0 nominal starts: Wed 4 Mar, Tue 17 Mar, Mon 30 Mar, Sun 12 Apr (-> Mon 13 Apr), Sat 25 Apr (no
    # operating day within the 1-day slack: skipped). Unit 1: Tue 10 Mar, Mon 23 Mar, Sun 5 Apr (-> Mon 6 Apr),
    # Sat 18 Apr (skipped). Runs start 09:00 Shanghai = 01:00 UTC.
    four_weeks = plan_slots(hub, MONDAY, 28)
    assert [(s.unit, s.starts, s.ends) for s in four_weeks] == [
        (0, utc(3, 4, 1), utc(3, 16, 1)),
        (0, utc(3, 17, 1), utc(3, 29, 1)),
        (1, utc(3, 10, 1), utc(3, 22, 1)),
        (1, utc(3, 23, 1), utc(4, 4, 1)),
    ]
    assert {(s.resource, s.platform, s.node) for s in four_weeks} == {
        (Resource.MANUFACTURING, "CliniMACS Prodigy", "hub")
    }
    eight_weeks = plan_slots(hub, MONDAY, 56)
    assert [(s.unit, s.starts.date()) for s in eight_weeks] == [
        (0, date(2026, 3, 4)),
        (0, date(2026, 3, 17)),
        (0, date(2026, 3, 30)),
        (0, date(2026, 4, 13)),
        (1, date(2026, 3, 10)),
        (1, date(2026, 3, 23)),
        (1, date(2026, 4, 6)),
    ]


def test_fractional_run_is_never_delayed_past_its_slack() -> None:
    # 10.5-day runs: a 12-day cycle with 1.5 days of slack. The run nominally due on Saturday 2 May 2026 cannot
    # wait until Monday (it would still be running when the next one starts on Thursday 14 May), so it is skipped.
    slots = plan_slots(node(run_days=10.5), date(2026, 4, 27), 21)
    assert [(s.starts, s.ends) for s in slots] == [(utc(5, 14, 9), utc(5, 24, 21))]


def _by_unit(slots: list[SlotSpec]) -> dict[tuple[str, int], list[SlotSpec]]:
    runs: dict[tuple[str, int], list[SlotSpec]] = {}
    for s in slots:
        if s.resource is Resource.MANUFACTURING:
            runs.setdefault((s.platform, s.unit), []).append(s)
    return {key: sorted(value, key=lambda s: s.starts) for key, value in runs.items()}


weekday_sets = st.sets(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1).map(
    lambda days: tuple(sorted(days, key=["mon", "tue", "wed", "thu", "fri", "sat", "sun"].index))
)
nodes = st.builds(
    node,
    run_days=st.sampled_from([1, 2.5, 3, 6.5, 7, 9, 10.5, 12, 12.5, 13, 13.25, 20]),
    units=st.integers(1, 4),
    days=weekday_sets,
    chairs=st.integers(0, 2),
    per_chair=st.integers(1, 2),
    timezone=st.sampled_from(["UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York"]),
)
first_days = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))


@given(nodes, first_days, st.integers(1, 120))
@settings(max_examples=300, deadline=None)
def test_manufacturing_slots_never_overlap_on_one_unit(planned: Node, first_day: date, days: int) -> None:
    slots = plan_slots(planned, first_day, days)
    operating = {d.number for d in planned.operating_days}
    for runs in _by_unit(slots).values():
        for earlier, later in itertools.pairwise(runs):
            assert earlier.ends <= later.starts, (earlier, later)
    for s in slots:
        local = s.starts.astimezone(planned.tz)
        assert local.weekday() in operating
        assert local.date() >= first_day
        if s.resource is Resource.MANUFACTURING:
            assert (local.hour, local.minute) == (9, 0)
            assert s.ends - s.starts == timedelta(days=planned.capabilities.manufacturing[0].run_days)
        else:
            assert local.date() < first_day + timedelta(days=days)


@given(nodes, first_days, st.integers(1, 60), st.integers(1, 60))
@settings(max_examples=300, deadline=None)
def test_windows_opened_apart_align(planned: Node, first_day: date, first: int, second: int) -> None:
    apart = set(plan_slots(planned, first_day, first)) | set(
        plan_slots(planned, first_day + timedelta(days=first), second)
    )
    at_once = plan_slots(planned, first_day, first + second)
    assert len(set(at_once)) == len(at_once)
    assert apart == set(at_once)


# --- The store: opening slots -------------------------------------------------------------------------------------


def _slot_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        query = select(t.slots.c.node, t.slots.c.resource, t.slots.c.unit, t.slots.c.starts).order_by(
            t.slots.c.node, t.slots.c.resource, t.slots.c.unit, t.slots.c.starts
        )
        return [tuple(row) for row in connection.execute(query)]


def _register(engine: Engine, clock: ManualClock) -> None:
    with SqlUnitOfWork(engine) as uow:
        register_network(uow, NETWORK_YAML, "test-network.yaml", SYSTEM, clock)


def _open(engine: Engine, clock: ManualClock, node_id: str, first_day: date, days: int) -> int:
    with SqlUnitOfWork(engine) as uow:
        return open_slots(uow, OpenSlots(node=node_id, first_day=first_day, days=days), SYSTEM, clock)


def test_opening_twice_adds_nothing_and_windows_apart_align(engine: Engine, clock: ManualClock) -> None:
    _register(engine, clock)
    assert _open(engine, clock, "hub", MONDAY, 28) == 4
    assert _open(engine, clock, "h-a", MONDAY, 28) == 20
    once = _slot_rows(engine)
    assert _open(engine, clock, "hub", MONDAY, 28) == 0
    assert _open(engine, clock, "h-a", MONDAY, 28) == 0
    assert _open(engine, clock, "h-a", MONDAY + timedelta(days=7), 7) == 0
    assert _slot_rows(engine) == once
    # The next four weeks opened on their own give exactly the slots of eight weeks opened at once.
    assert _open(engine, clock, "hub", MONDAY + timedelta(days=28), 28) == 3
    assert _open(engine, clock, "h-a", MONDAY + timedelta(days=28), 28) == 20
    expected = sorted(
        (s.node, s.resource.value, s.unit, s.starts)
        for n in ("hub", "h-a")
        for s in plan_slots(NETWORK.node(n), MONDAY, 56)
    )
    assert _slot_rows(engine) == expected
    assert len(expected) == 7 + 40


# --- Booking chains -----------------------------------------------------------------------------------------------


def _enroll(engine: Engine, clock: ManualClock, actor: Principal, site: str = "h-a", mrn: str = "MRN") -> Order:
    command = EnrollPatient(treatment_site=site, mrn=mrn, full_name="Patient", birth_date=date(1970, 1, 1))
    with SqlUnitOfWork(engine) as uow:
        return enroll(uow, command, actor, clock)


def _book(engine: Engine, clock: ManualClock, actor: Principal, coi: str) -> Booking:
    with SqlUnitOfWork(engine) as uow:
        return book(uow, coi, BookOrder(), actor, clock)


def _held(engine: Engine, coi: str) -> list[Slot]:
    with SqlUnitOfWork(engine, write=False) as uow:
        return uow.slots.held_by(coi)


def _order(engine: Engine, coi: str) -> Order:
    with SqlUnitOfWork(engine, write=False) as uow:
        found = uow.orders.get(coi)
    assert found is not None
    return found


def _free_count(engine: Engine, node_id: str, resource: Resource) -> int:
    with engine.connect() as connection:
        query = (
            select(func.count())
            .select_from(t.slots)
            .where(t.slots.c.node == node_id, t.slots.c.resource == resource.value, t.slots.c.order_coi.is_(None))
        )
        return int(connection.execute(query).scalar_one())


def test_booking_chains_apheresis_to_a_reachable_run_and_is_atomic(seeded: Engine, clock: ManualClock) -> None:
    op = add_user(seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    # Hand-derived: apheresis ends 04:00 UTC, cells reach the hub 3 h later, fresh cells wait at most 72 h.
    expected = [
        (utc(3, 2, 0), utc(3, 4, 1)),  # Mon apheresis -> Wed run (unit 0)
        (utc(3, 9, 0), utc(3, 10, 1)),  # Tue-Fri of week 1 reach no free run in time; Mon 9 -> Tue 10 (unit 1)
        (utc(3, 16, 0), utc(3, 17, 1)),  # Fri 13 would need a run by Mon 16 04:00; Mon 16 -> Tue 17
        (utc(3, 20, 0), utc(3, 23, 1)),  # Fri 20 ends 04:00, run Mon 23 01:00 is 69 h later: within 72 h
    ]
    for apheresis_start, run_start in expected:
        order = _enroll(seeded, clock, op)
        booking = _book(seeded, clock, op, order.coi)
        assert (booking.apheresis.starts, booking.manufacturing.starts) == (apheresis_start, run_start)
        assert (booking.apheresis.node, booking.manufacturing.node) == ("h-a", "hub")
        assert (booking.order.state, booking.order.manufacturing_node) == (S.APHERESIS_SCHEDULED, "hub")
        arrival = NETWORK.earliest_arrival("h-a", "hub", booking.apheresis.ends)
        assert arrival == booking.apheresis.ends + timedelta(hours=3)
        assert arrival <= booking.manufacturing.starts <= booking.apheresis.ends + timedelta(hours=72)
        [window] = manufacturing_windows(NETWORK, "h-a", booking.apheresis.ends, holding_limits())
        assert (window.node, window.earliest, window.latest) == (
            "hub",
            arrival,
            booking.apheresis.ends + timedelta(hours=72),
        )
        held = _held(seeded, order.coi)
        assert [(s.id, s.resource) for s in held] == [
            (booking.apheresis.id, Resource.APHERESIS),
            (booking.manufacturing.id, Resource.MANUFACTURING),
        ]
        assert _order(seeded, order.coi) == booking.order
    # Every run of the four weeks is taken: no chain is left, and the failed booking keeps nothing.
    free_apheresis = _free_count(seeded, "h-a", Resource.APHERESIS)
    assert free_apheresis == 16
    order = _enroll(seeded, clock, op)
    with pytest.raises(NoCapacity, match=r"^no free apheresis slot at 'h-a' from 2026-03-02T00:00:00\.000000Z chains"):
        _book(seeded, clock, op, order.coi)
    assert _held(seeded, order.coi) == []
    assert _order(seeded, order.coi).state is S.ENROLLED
    assert _free_count(seeded, "h-a", Resource.APHERESIS) == free_apheresis
    with SqlUnitOfWork(seeded, write=False) as uow:
        assert [e["kind"] for e in uow.ledger.for_order(order.coi)] == ["order.enrolled"]


def test_no_reachable_manufacturing_keeps_no_apheresis_slot(engine: Engine, clock: ManualClock) -> None:
    _register(engine, clock)
    _open(engine, clock, "h-a", MONDAY, 28)  # apheresis, but no manufacturing slot anywhere
    op = add_user(engine, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    order = _enroll(engine, clock, op)
    with pytest.raises(NoCapacity):
        _book(engine, clock, op, order.coi)
    assert _held(engine, order.coi) == []
    assert _free_count(engine, "h-a", Resource.APHERESIS) == 20
    # Runs that start too late for every collection do not help either: opening the week of Mon 6 Apr gives
    # runs on Mon 6 Apr (unit 1) and Mon 13 Apr (unit 0, due Sun 12 Apr); the last collection ends Fri 27 Mar.
    assert _open(engine, clock, "hub", date(2026, 4, 6), 7) == 2
    with pytest.raises(NoCapacity):
        _book(engine, clock, op, order.coi)
    assert _held(engine, order.coi) == []
    assert _order(engine, order.coi).state is S.ENROLLED


def test_withdrawal_releases_future_slots(seeded: Engine, clock: ManualClock) -> None:
    op_a = add_user(seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    clock.set(START - timedelta(hours=1))  # an hour before the first apheresis session (Mon 2 Mar 00:00 UTC)
    first = _enroll(seeded, clock, op_a)
    booking = _book(seeded, clock, op_a, first.coi)
    with SqlUnitOfWork(seeded) as uow:
        advance(uow, first.coi, AdvanceOrder(to=S.WITHDRAWN, reason="patient declined"), op_a, clock)
    assert booking.apheresis.starts == START
    assert _held(seeded, first.coi) == []
    # The same chain is free again and goes to the next patient.
    second = _enroll(seeded, clock, op_a)
    again = _book(seeded, clock, op_a, second.coi)
    assert (again.apheresis.id, again.manufacturing.id) == (booking.apheresis.id, booking.manufacturing.id)
    # Withdrawn after collection: the past apheresis stays on record, the future run is released.
    clock.set(again.apheresis.ends)
    with SqlUnitOfWork(seeded) as uow:
        advance(uow, second.coi, AdvanceOrder(to=S.COLLECTED), op_a, clock)
    clock.advance(timedelta(hours=1))
    with SqlUnitOfWork(seeded) as uow:
        advance(uow, second.coi, AdvanceOrder(to=S.WITHDRAWN, reason="patient too ill"), op_a, clock)
    assert [s.id for s in _held(seeded, second.coi)] == [again.apheresis.id]
    with SqlUnitOfWork(seeded, write=False) as uow:
        free_runs = uow.slots.free("hub", Resource.MANUFACTURING, clock.now() - timedelta(days=30), None, 10)
    assert again.manufacturing.id in [s.id for s in free_runs]


# --- Concurrency --------------------------------------------------------------------------------------------------

CONTENDERS = 16
W = TypeVar("W")


def _race(engine: Engine, actions: list[Callable[[SqlUnitOfWork], W]]) -> list[W | BaseException]:
    """Run each action in its own thread and unit of work, released together by a barrier; results or errors.

    On PostgreSQL every thread first opens its connection and transaction (on an engine with a connection per
    thread), so the actions really overlap. SQLite writers queue for the database lock (BEGIN IMMEDIATE) anyway.
    """
    postgres = engine.dialect.name == "postgresql"
    racing = create_engine(engine.url, pool_size=len(actions), max_overflow=0) if postgres else engine
    barrier = threading.Barrier(len(actions))
    results: list[W | BaseException] = [RuntimeError("did not run")] * len(actions)

    def run(index: int) -> None:
        try:
            if postgres:
                with SqlUnitOfWork(racing) as uow:
                    uow.ledger.size()  # connected, transaction open
                    barrier.wait(timeout=60)
                    results[index] = actions[index](uow)
            else:
                barrier.wait(timeout=60)
                with SqlUnitOfWork(racing) as uow:
                    results[index] = actions[index](uow)
        except BaseException as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    if racing is not engine:
        racing.dispose()
    return results


def _leave_one_run(engine: Engine, blocker: str, shared: bool) -> tuple[set[int], int]:
    """Claim for ``blocker`` every free hub run but the earliest, and every free apheresis slot but those that chain
    to it: only the first one at h-a, or (``shared``) all at h-a and h-b. Returns (apheresis slots left, run)."""
    with SqlUnitOfWork(engine) as uow:
        for slot in uow.slots.held_by(blocker):
            uow.slots.release(slot.id, blocker)
        far = datetime(2000, 1, 1, tzinfo=UTC)
        runs = uow.slots.free("hub", Resource.MANUFACTURING, far, None, 1000)
        run = runs[0]
        aphereses = [s for site in ("h-a", "h-b") for s in uow.slots.free(site, Resource.APHERESIS, far, None, 1000)]
        reaching = [
            s.id
            for s in aphereses
            if any(
                w.earliest <= run.starts <= w.latest
                for w in manufacturing_windows(NETWORK, s.node, s.ends, holding_limits())
            )
        ]
        left = set(reaching) if shared else {reaching[0]}
        for slot in runs[1:] + [s for s in aphereses if s.id not in left]:
            assert uow.slots.claim(slot.id, blocker)
        uow.commit()
    return left, run.id


def test_concurrent_bookings_of_the_last_run(seeded: Engine, clock: ManualClock) -> None:
    op = {site: add_user(seeded, clock, f"op-{site}", site, Role.NODE_OPERATOR) for site in ("h-a", "h-b")}
    blocker = _enroll(seeded, clock, op["h-a"], mrn="BLOCKER").coi
    # Each round leaves one run: first with four apheresis slots (h-a and h-b, Mon and Tue) that chain to it, then
    # with a single chain, and so on; four rounds book all four runs of the seeded four weeks.
    expected_left = [4, 1, 2, 1]
    winners: list[Booking] = []
    for round_number, left_count in enumerate(expected_left):
        sites = ["h-a", "h-b"] * (CONTENDERS // 2)
        contenders = [_enroll(seeded, clock, op[site], site, f"R{round_number}-{i}") for i, site in enumerate(sites)]
        left, run = _leave_one_run(seeded, blocker, shared=round_number % 2 == 0)
        assert len(left) == left_count

        def attempt(order: Order) -> Callable[[SqlUnitOfWork], Booking]:
            return lambda uow: book(uow, order.coi, BookOrder(), op[order.treatment_site], clock)

        results = _race(seeded, [attempt(order) for order in contenders])
        won = [r for r in results if isinstance(r, Booking)]
        assert len(won) == 1, results
        assert sum(isinstance(r, NoCapacity) for r in results) == CONTENDERS - 1, results
        [winner] = won
        assert winner.manufacturing.id == run
        assert winner.apheresis.id in left
        for order in contenders:
            held = [s.id for s in _held(seeded, order.coi)]
            state = _order(seeded, order.coi).state
            if order.coi == winner.order.coi:
                assert (held, state) == ([winner.apheresis.id, run], S.APHERESIS_SCHEDULED)
            else:
                assert (held, state) == ([], S.ENROLLED)
        winners.append(winner)
    with SqlUnitOfWork(seeded, write=False) as uow:
        report = verify_ledger(uow, SYSTEM)
        scheduled = uow.orders.visible(None, S.APHERESIS_SCHEDULED, 100, 0)
        booked = [e for o in scheduled for e in uow.ledger.for_order(o.coi) if e["kind"] == "order.booked"]
        runs_left = uow.slots.free("hub", Resource.MANUFACTURING, datetime(2000, 1, 1, tzinfo=UTC), None, 100)
    assert report.ok
    assert sorted(o.coi for o in scheduled) == sorted(w.order.coi for w in winners)
    assert len(booked) == 4
    claimed = [e["data"]["apheresis"]["slot"] for e in booked] + [e["data"]["manufacturing"]["slot"] for e in booked]
    assert len(set(claimed)) == 8
    assert runs_left == []
    # No slot is held by an order that is not booked (the blocker's claims are this test's own).
    with seeded.connect() as connection:
        holders = connection.execute(
            select(t.slots.c.order_coi, t.orders.c.state)
            .join(t.orders, t.orders.c.coi == t.slots.c.order_coi)
            .where(t.slots.c.order_coi != blocker)
        ).all()
    assert sorted(holders) == sorted((w.order.coi, S.APHERESIS_SCHEDULED.value) for w in winners for _ in (1, 2))


def test_concurrent_enrolments_get_unique_cois(seeded: Engine, clock: ManualClock) -> None:
    op_a = add_user(seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    op_b = add_user(seeded, clock, "op-b", "h-b", Role.NODE_OPERATOR)

    def attempt(actor: Principal, site: str, i: int) -> Callable[[SqlUnitOfWork], Order]:
        command = EnrollPatient(treatment_site=site, mrn=f"MRN-{site}-{i}", full_name="P", birth_date=date(1970, 1, 1))
        return lambda uow: enroll(uow, command, actor, clock)

    calls = [attempt(op_a, "h-a", i) for i in range(CONTENDERS)] + [attempt(op_b, "h-b", i) for i in range(8)]
    results = _race(seeded, calls)
    orders = [r for r in results if isinstance(r, Order)]
    assert len(orders) == len(calls), [r for r in results if not isinstance(r, Order)]
    at_a = {o.coi for o in orders if o.treatment_site == "h-a"}
    at_b = {o.coi for o in orders if o.treatment_site == "h-b"}
    assert at_a == {str(ChainOfIdentity.from_number("A1001", 26, n)) for n in range(1, CONTENDERS + 1)}
    assert at_b == {str(ChainOfIdentity.from_number("A1002", 26, n)) for n in range(1, 9)}
    with SqlUnitOfWork(seeded, write=False) as uow:
        report = verify_ledger(uow, SYSTEM)
        assert (report.ok, report.findings) == (True, [])
        assert report.events == uow.ledger.size() == 4 + 2 + CONTENDERS + 8
        # Concurrent appends to one log take consecutive places in it: slots opened, the operator, the enrolments.
        assert uow.ledger.logs() == {
            origin("test-net", "network"): 1,
            origin("test-net", "h-a"): 2 + CONTENDERS,
            origin("test-net", "h-b"): 2 + 8,
            origin("test-net", "hub"): 1,
        }
        assert len(uow.orders.visible(None, S.ENROLLED, 100, 0)) == CONTENDERS + 8
