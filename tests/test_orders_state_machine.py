"""The order lifecycle as a state machine: exactly the allowed moves, nothing else; and the journey derived
from ledger events (stage durations, vein-to-vein time).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from cellrail.kernel.clock import iso_utc
from cellrail.kernel.errors import Conflict, IllegalTransition
from cellrail.rail.journey import journey_from_events
from cellrail.rail.orders import TERMINAL, TRANSITIONS, Order, OrderState, allowed_next

S = OrderState
COI = "CHA100126000001K"

# The lifecycle written out by hand from the product description, independently of orders.TRANSITIONS.
EXPECTED: dict[OrderState, set[OrderState]] = {
    S.ENROLLED: {S.APHERESIS_SCHEDULED, S.WITHDRAWN},
    S.APHERESIS_SCHEDULED: {S.COLLECTED, S.WITHDRAWN},
    S.COLLECTED: {S.SHIPPED_TO_MANUFACTURING, S.WITHDRAWN},
    S.SHIPPED_TO_MANUFACTURING: {S.RECEIVED_AT_MANUFACTURING, S.WITHDRAWN},
    S.RECEIVED_AT_MANUFACTURING: {S.MANUFACTURING, S.WITHDRAWN},
    S.MANUFACTURING: {S.QC_PENDING, S.WITHDRAWN},
    S.QC_PENDING: {S.RELEASED, S.REJECTED, S.WITHDRAWN},
    S.REJECTED: {S.MANUFACTURING, S.CANCELLED, S.WITHDRAWN},
    S.RELEASED: {S.SHIPPED_TO_SITE, S.WITHDRAWN},
    S.SHIPPED_TO_SITE: {S.RECEIVED_AT_SITE, S.WITHDRAWN},
    S.RECEIVED_AT_SITE: {S.INFUSED, S.WITHDRAWN},
    S.INFUSED: set(),
    S.CANCELLED: set(),
    S.WITHDRAWN: set(),
}


def order_in(state: OrderState, attempts: int = 0) -> Order:
    return Order(coi=COI, patient_key="k" * 32, treatment_site="h-a", state=state, manufacturing_attempts=attempts)


def test_transition_table_is_the_documented_lifecycle() -> None:
    assert set(TRANSITIONS) == set(OrderState)
    assert {state: set(targets) for state, targets in TRANSITIONS.items()} == EXPECTED
    assert (
        frozenset(s for s, targets in EXPECTED.items() if not targets)
        == TERMINAL
        == {
            S.INFUSED,
            S.CANCELLED,
            S.WITHDRAWN,
        }
    )
    for state in OrderState:
        assert allowed_next(state) == TRANSITIONS[state]
        assert len(set(TRANSITIONS[state])) == len(TRANSITIONS[state])  # no duplicates in the message


@pytest.mark.parametrize("current", list(OrderState))
@pytest.mark.parametrize("target", list(OrderState))
def test_move_to_accepts_exactly_the_allowed_pairs(current: OrderState, target: OrderState) -> None:
    order = order_in(current, attempts=2)
    if target in EXPECTED[current]:
        moved = order.move_to(target)
        assert moved.state is target
        assert moved.manufacturing_attempts == (3 if target is S.MANUFACTURING else 2)
        assert (moved.coi, moved.patient_key, moved.treatment_site) == (order.coi, order.patient_key, "h-a")
        return
    with pytest.raises(IllegalTransition) as error:
        order.move_to(target)
    allowed = [s.value for s in TRANSITIONS[current]]
    assert error.value.order_id == COI
    assert error.value.current == current.value
    assert error.value.attempted == target.value
    assert error.value.allowed == tuple(allowed)
    allowed_text = ", ".join(allowed) if allowed else "none (the order is closed)"
    assert str(error.value) == (
        f"order {COI} is '{current.value}' and cannot become '{target.value}'; allowed next steps: {allowed_text}"
    )
    assert isinstance(error.value, Conflict)
    assert order.state is current  # the order is a value: a refused move changes nothing


def test_illegal_transition_message_exactly() -> None:
    with pytest.raises(IllegalTransition) as error:
        order_in(S.QC_PENDING).move_to(S.INFUSED)
    assert str(error.value) == (
        f"order {COI} is 'qc_pending' and cannot become 'infused'; allowed next steps: released, rejected, withdrawn"
    )
    with pytest.raises(IllegalTransition) as error:
        order_in(S.INFUSED).move_to(S.WITHDRAWN)
    assert str(error.value) == (
        f"order {COI} is 'infused' and cannot become 'withdrawn'; allowed next steps: none (the order is closed)"
    )


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_accept_nothing(state: OrderState) -> None:
    order = order_in(state)
    assert not order.is_open
    assert allowed_next(state) == ()
    for target in OrderState:
        with pytest.raises(IllegalTransition):
            order.move_to(target)


@pytest.mark.parametrize("state", [s for s in OrderState if s not in TERMINAL])
def test_withdrawal_possible_from_every_open_state(state: OrderState) -> None:
    order = order_in(state)
    assert order.is_open
    assert order.move_to(S.WITHDRAWN).state is S.WITHDRAWN


def test_remanufacture_after_rejection_counts_attempts() -> None:
    order = order_in(S.ENROLLED)
    path = [
        S.APHERESIS_SCHEDULED,
        S.COLLECTED,
        S.SHIPPED_TO_MANUFACTURING,
        S.RECEIVED_AT_MANUFACTURING,
        S.MANUFACTURING,
        S.QC_PENDING,
        S.REJECTED,
        S.MANUFACTURING,
        S.QC_PENDING,
        S.REJECTED,
        S.MANUFACTURING,
        S.QC_PENDING,
        S.RELEASED,
        S.SHIPPED_TO_SITE,
        S.RECEIVED_AT_SITE,
        S.INFUSED,
    ]
    attempts = []
    for target in path:
        order = order.move_to(target)
        attempts.append(order.manufacturing_attempts)
    assert attempts == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3]
    assert order.state is S.INFUSED
    assert not order.is_open


def test_order_nodes() -> None:
    assert order_in(S.ENROLLED).nodes == {"h-a"}
    booked = Order(COI, "k", "h-a", S.APHERESIS_SCHEDULED, manufacturing_node="hub")
    assert booked.nodes == {"h-a", "hub"}
    assert Order(COI, "k", "hub", manufacturing_node="hub").nodes == {"hub"}


class OrderLifecycle(RuleBasedStateMachine):
    """Random sequences of requested states: a model of the lifecycle against Order.move_to."""

    @initialize()
    def start(self) -> None:
        self.order = order_in(S.ENROLLED)
        self.history: list[OrderState] = [S.ENROLLED]

    def _expect(self, target: OrderState) -> None:
        before = self.order
        if target in EXPECTED[before.state]:
            self.order = before.move_to(target)
            self.history.append(target)
            assert self.order.state is target
        else:
            with pytest.raises(IllegalTransition) as error:
                before.move_to(target)
            message = str(error.value)
            assert f"is '{before.state.value}'" in message
            assert f"cannot become '{target.value}'" in message
            for allowed in EXPECTED[before.state]:
                assert allowed.value in message.split("allowed next steps: ")[1]
            assert error.value.allowed == tuple(s.value for s in TRANSITIONS[before.state])
            assert self.order is before

    @rule(wanted=st.sampled_from(OrderState))
    def request_any(self, wanted: OrderState) -> None:
        self._expect(wanted)

    @rule(pick=st.integers(0, 20))
    def request_a_forward_step(self, pick: int) -> None:
        """Mostly forward steps (withdrawal rarely), so runs go deep and loop through remanufacture."""
        forward = [s for s in TRANSITIONS[self.order.state] if s is not S.WITHDRAWN]
        if not forward:
            self._expect(S.WITHDRAWN)
            return
        self._expect(forward[pick % len(forward)])

    @invariant()
    def attempts_count_entries_to_manufacturing(self) -> None:
        assert self.order.manufacturing_attempts == self.history.count(S.MANUFACTURING)

    @invariant()
    def history_is_a_path_of_the_lifecycle(self) -> None:
        for a, b in zip(self.history, self.history[1:], strict=False):
            assert b in EXPECTED[a]
        assert self.order.state is self.history[-1]
        assert self.order.is_open == (self.order.state not in {S.INFUSED, S.CANCELLED, S.WITHDRAWN})


OrderLifecycle.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestOrderLifecycle = OrderLifecycle.TestCase


# --- The journey, from ledger events ------------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def milestone_event(state: OrderState, at: datetime, node: str = "h-a") -> dict[str, Any]:
    if state is S.ENROLLED:
        return {"kind": "order.enrolled", "at": iso_utc(at), "node": node, "actor": "op", "data": {}}
    kind = "order.booked" if state is S.APHERESIS_SCHEDULED else "order.moved"
    return {"kind": kind, "at": iso_utc(at), "node": node, "actor": "op", "data": {"from": "x", "to": state.value}}


def noise_event(kind: str, at: datetime) -> dict[str, Any]:
    return {"kind": kind, "at": iso_utc(at), "node": "hub", "actor": "courier", "data": {"state": "collected"}}


def test_journey_worked_example() -> None:
    hours = timedelta(hours=1)
    timeline = [
        (S.ENROLLED, T0),
        (S.APHERESIS_SCHEDULED, T0 + hours),
        (S.COLLECTED, T0 + 7 * 24 * hours + 4 * hours),  # 2026-03-09 04:00
        (S.SHIPPED_TO_MANUFACTURING, T0 + 7 * 24 * hours + 5 * hours),
        (S.RECEIVED_AT_MANUFACTURING, T0 + 7 * 24 * hours + 9 * hours),
        (S.MANUFACTURING, T0 + 8 * 24 * hours + 1 * hours),
        (S.QC_PENDING, T0 + 20 * 24 * hours + 1 * hours),
        (S.RELEASED, T0 + 25 * 24 * hours),
        (S.SHIPPED_TO_SITE, T0 + 25 * 24 * hours + 2 * hours),
        (S.RECEIVED_AT_SITE, T0 + 25 * 24 * hours + 6 * hours),
        (S.INFUSED, T0 + 28 * 24 * hours + 6 * hours),  # 2026-03-30 06:00
    ]
    events = [milestone_event(state, at) for state, at in timeline]
    events.insert(4, noise_event("custody.scan", T0 + 7 * 24 * hours + 6 * hours))
    events.insert(6, noise_event("identity.mismatch", T0 + 7 * 24 * hours + 9 * hours))
    journey = journey_from_events(COI, events)
    assert journey.order == COI
    assert [m.state for m in journey.milestones] == [state for state, _ in timeline]
    assert journey.state is S.INFUSED
    assert journey.vein_to_vein == timedelta(days=21, hours=2)
    durations = [stage.duration for stage in journey.stages]
    assert durations == [
        timedelta(hours=1),
        timedelta(days=7, hours=3),
        timedelta(hours=1),
        timedelta(hours=4),
        timedelta(hours=16),
        timedelta(days=12),
        timedelta(days=4, hours=23),
        timedelta(hours=2),
        timedelta(hours=4),
        timedelta(days=3),
        None,
    ]
    assert sum((d for d in durations if d is not None), timedelta()) == timedelta(days=28, hours=6)
    assert journey.first(S.MANUFACTURING) == datetime(2026, 3, 10, 1, 0, tzinfo=UTC)


def test_journey_of_an_open_order_has_no_vein_to_vein() -> None:
    events = [milestone_event(S.ENROLLED, T0), milestone_event(S.APHERESIS_SCHEDULED, T0 + timedelta(minutes=5))]
    journey = journey_from_events(COI, events)
    assert journey.vein_to_vein is None
    assert journey.state is S.APHERESIS_SCHEDULED
    assert [s.duration for s in journey.stages] == [timedelta(minutes=5), None]
    assert journey_from_events(COI, []).state is None
    assert journey_from_events(COI, []).stages == ()


@st.composite
def journeys(draw: st.DrawFn) -> tuple[list[OrderState], list[timedelta]]:
    """A legal path from enrolment (random forward steps, remanufacture loops, sometimes a withdrawal)."""
    path = [S.ENROLLED]
    while path[-1] not in TERMINAL and len(path) < 40:
        options = list(TRANSITIONS[path[-1]])
        path.append(draw(st.sampled_from(options)))
    gaps = draw(
        st.lists(
            st.integers(0, 30 * 24 * 3600 * 1_000_000).map(lambda us: timedelta(microseconds=us)),
            min_size=len(path) - 1,
            max_size=len(path) - 1,
        )
    )
    return path, gaps


@given(journeys(), st.data())
@settings(max_examples=200, deadline=None)
def test_journey_durations_add_up(journey_data: tuple[list[OrderState], list[timedelta]], data: st.DataObject) -> None:
    path, gaps = journey_data
    moments = [T0]
    for gap in gaps:
        moments.append(moments[-1] + gap)
    events: list[dict[str, Any]] = []
    for state, at in zip(path, moments, strict=True):
        if data.draw(st.booleans(), label="scan before"):
            events.append(noise_event("custody.scan", at))
        events.append(milestone_event(state, at))
    journey = journey_from_events(COI, events)
    assert [m.state for m in journey.milestones] == path
    assert [m.at for m in journey.milestones] == moments
    stages = journey.stages
    assert [s.duration for s in stages[:-1]] == gaps
    assert stages[-1].ended is None
    total = moments[-1] - moments[0]
    assert sum((s.duration for s in stages[:-1] if s.duration is not None), timedelta()) == total
    if S.INFUSED in path:
        collected = moments[path.index(S.COLLECTED)]
        infused = moments[path.index(S.INFUSED)]
        assert journey.vein_to_vein == infused - collected
    else:
        assert journey.vein_to_vein is None
