"""The engine on hand-computed journeys (weekends, courier days, remanufacture, loss), determinism and common
random numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cellrail.twin.compile import compile_scenario, hospital_key
from cellrail.twin.engine import simulate, warm_up
from cellrail.twin.kernel import next_open, sample, uniform01
from cellrail.twin.output import Outcome, ResourceKind, RunOutput
from cellrail.twin.scenario import Scenario, load_scenario, scenario_from_text

MORNING = 8 / 24

# Hospital open Mon-Fri with one chair (two sessions a day: 0.5 d each); hub open Mon-Sat with one unit; a 6-hour
# lane with couriers Mon-Fri. Day 0 of the simulation is a Monday 00:00.
HAND = """\
network: {{id: hand, name: Hand-computed}}
nodes:
  - id: h-a
    name: Hospital A
    kind: hospital
    fin: A1001
    location: {{city: Basel, country: CH, latitude: 47.5, longitude: 7.6}}
    operating_days: [mon, tue, wed, thu, fri]
    capabilities: {{apheresis_chairs: 1, collections_per_chair_per_day: 2, infusion_beds: 1}}
  - id: hub
    name: Hub
    kind: regional_hub
    fin: A1002
    location: {{city: Basel, country: CH, latitude: 47.5, longitude: 7.6}}
    operating_days: [mon, tue, wed, thu, fri, sat]
    capabilities:
      qc_lab: true
      manufacturing: [{{platform: Prodigy, units: 1, run_days: 13}}]
lanes:
  - {{from: h-a, to: hub, transport_hours: 6, days: [mon, tue, wed, thu, fri]}}
demand:
  horizon_days: 60
  warmup_days: 0
  cooldown_days: 0
  hospitals:
    h-a: {{scheduled: [{arrivals}]}}
process:
  manufacturing: {{run_cv: 0}}
  qc_release: {{dist: fixed, value: 7}}
  oos_probability: {oos}
  remanufacture_oos_probability: {oos}
  infusion: {{bed_stay: {{dist: fixed, value: 7}}}}
  dropout: {{hazard_per_day: {hazard}, bridging_share: 0}}
"""


def hand(arrivals: str = "0.0, 5.9", oos: float = 0.0, hazard: float = 0.0) -> Scenario:
    return scenario_from_text(HAND.format(arrivals=arrivals, oos=oos, hazard=hazard), "hand.yaml")


@pytest.fixture(scope="module", autouse=True)
def compiled_kernel() -> None:
    warm_up()


def test_hand_computed_journeys_with_weekends_and_courier_days() -> None:
    out = simulate(compile_scenario(hand()), seed=1)
    assert out.patients == 2
    first, second = 0, 1
    # Patient 1, referred Monday 00:00: chair at once, collected 0.5; courier leaves Monday, hub at 0.75 (Monday,
    # open): run 0.75 -> 13.75; QC 7 d -> released 20.75, a Sunday: no courier until Monday 08:00 (21 + 1/3),
    # 6 h on the road, bed free on a Monday: infused 21 + 1/3 + 1/4.
    assert out.apheresis[first] == 0.5
    assert out.manufacture_start[first] == 0.75
    assert out.release[first] == 20.75
    assert out.infusion[first] == pytest.approx(21 + MORNING + 0.25, abs=1e-12)
    # Patient 2, referred Saturday 21:36 (5.9): chairs closed until Monday 08:00 (7 + 1/3), collected 7 + 1/3 + 1/2,
    # at the hub 6 h later (8 + 1/12); the only unit is busy until 13.75, a Sunday when the hub is closed, so the
    # run starts Monday 08:00 (14 + 1/3), ends 27 + 1/3 (Sunday), QC to 34 + 1/3 (Sunday), courier Monday 08:00,
    # infused 35 + 1/3 + 1/4.
    assert out.apheresis[second] == pytest.approx(7 + MORNING + 0.5, abs=1e-12)
    assert out.manufacture_start[second] == pytest.approx(14 + MORNING, abs=1e-12)
    assert out.release[second] == pytest.approx(34 + MORNING, abs=1e-12)
    assert out.infusion[second] == pytest.approx(35 + MORNING + 0.25, abs=1e-12)
    assert list(out.outcome) == [Outcome.TREATED, Outcome.TREATED]
    assert list(out.attempts) == [1, 1]
    assert list(out.site) == [0, 0]
    assert list(out.transport_cost) == [3000.0, 3000.0]  # two fresh shipments at the default 1,500 each
    assert list(out.bed_days) == [7.0, 7.0]
    assert np.array_equal(out.ended, out.infusion)
    # daily series are time averages over each day (regression: they were midnight samples, which miss short
    # services). The unit runs 0.75-13.75 and 14 + 1/3-27 + 1/3; patient 2 waits for it from 8 + 1/12 to 14 + 1/3.
    hub = out.resource_node.index("hub")
    assert out.resource_kind[hub] == ResourceKind.MANUFACTURING
    assert out.capacity[hub] == 1
    expected_busy = [0.25] + [1.0] * 12 + [0.75, 2 / 3] + [1.0] * 12 + [1 / 3, 0.0]
    assert out.busy[hub, :29] == pytest.approx(expected_busy, abs=1e-12)
    assert out.queue[hub, 7:16] == pytest.approx([0, 11 / 12, 1, 1, 1, 1, 1, 1 / 3, 0], abs=1e-12)
    beds = next(i for i, k in enumerate(out.resource_kind) if k == ResourceKind.INFUSION)
    assert out.busy[beds, 21] == pytest.approx(1 - MORNING - 0.25, abs=1e-12)  # admitted 21 + 1/3 + 1/4
    assert out.busy[beds, 22:28] == pytest.approx([1.0] * 6, abs=1e-12)
    assert out.busy[beds, 28] == pytest.approx(MORNING + 0.25, abs=1e-12)
    assert out.busy[beds, 29] == 0
    # a half-day collection (two a chair a day) at midnight samples was invisible: now it is half a chair-day
    chairs = next(i for i, k in enumerate(out.resource_kind) if k == ResourceKind.APHERESIS)
    assert out.busy[chairs, 0] == pytest.approx(0.5, abs=1e-12)
    assert out.busy[chairs, 7] == pytest.approx(0.5, abs=1e-12)  # 7 + 1/3 to 7 + 5/6


def test_out_of_specification_products_are_remade_then_fail() -> None:
    out = simulate(compile_scenario(hand("0.0", oos=1.0)), seed=1)
    # run 0.75 -> 13.75, QC -> 20.75 (Sunday) out of spec: back in the queue, the hub opens Monday 08:00;
    # run (21 + 1/3) -> (34 + 1/3), QC -> 41 + 1/3 out of spec again: the second and last attempt failed
    assert out.outcome[0] == Outcome.MANUFACTURING_FAILURE
    assert out.attempts[0] == 2
    assert out.manufacture_start[0] == 0.75
    assert out.ended[0] == pytest.approx(41 + MORNING, abs=1e-12)
    assert np.isnan(out.release[0])
    assert np.isnan(out.infusion[0])
    assert out.transport_cost[0] == 1500.0  # out only; nothing came back


def test_patients_lost_while_waiting_free_their_place_but_not_a_running_unit() -> None:
    out = simulate(compile_scenario(hand("0.0, 0.0, 0.0", hazard=5.0)), seed=3)  # mean patience 0.2 days
    assert set(out.outcome) <= {Outcome.LOST_WAITING, Outcome.TREATED}
    lost = out.outcome == Outcome.LOST_WAITING
    assert lost.sum() >= 2
    assert np.all(out.ended[lost] >= out.arrival[lost])
    assert np.all(out.queue >= 0)
    hub = out.resource_node.index("hub")
    started = ~np.isnan(out.manufacture_start)
    if started.any():  # a run started for a patient who was then lost still holds the unit for 13 days
        assert out.busy[hub, 12] == 1
    assert out.queue[:, -1].sum() == 0


def test_same_seed_same_bits_other_seed_other_draws() -> None:
    compiled = compile_scenario(scenario_from_text(_two_hospitals(), "two.yaml"))
    a, b, c = simulate(compiled, 11), simulate(compiled, 11), simulate(compiled, 12)
    for name in RunOutput.__dataclass_fields__:
        left, right = getattr(a, name), getattr(b, name)
        if isinstance(left, np.ndarray):
            assert left.tobytes() == right.tobytes(), name
        else:
            assert left == right, name
    assert not np.array_equal(a.arrival, c.arrival)


def test_common_random_numbers_follow_the_hospital_not_the_network() -> None:
    """Hospital h-b keeps its referrals and its patients' draws when h-a and the hub change."""
    base = compile_scenario(scenario_from_text(_two_hospitals(), "two.yaml"))
    other = compile_scenario(scenario_from_text(_two_hospitals(rate_a=5, units=9, run="{dist: fixed, value: 9}"), "x"))
    one, two = simulate(base, 5), simulate(other, 5)
    b_one = one.hospitals.index("h-b")
    b_two = two.hospitals.index("h-b")
    mine_one, mine_two = one.hospital == b_one, two.hospital == b_two
    assert np.array_equal(one.arrival[mine_one], two.arrival[mine_two])
    assert np.array_equal(one.number[mine_one], two.number[mine_two])
    assert np.array_equal(one.bridged[mine_one], two.bridged[mine_two])
    assert mine_one.sum() > 50
    # durations and out-of-specification draws come from the patient's own stream: where both runs made one
    # product (same run distribution), run + QC took exactly as long in both, whatever the queues did
    same = compile_scenario(scenario_from_text(_two_hospitals(rate_a=5, units=9), "same.yaml"))
    three = simulate(same, 5)
    mine_three = three.hospital == three.hospitals.index("h-b")
    once = (one.attempts[mine_one] == 1) & (three.attempts[mine_three] == 1) & (one.outcome[mine_one] == 0)
    once &= three.outcome[mine_three] == 0
    assert once.sum() > 50
    made_one = (one.release - one.manufacture_start)[mine_one][once]
    made_three = (three.release - three.manufacture_start)[mine_three][once]
    assert np.allclose(made_one, made_three, rtol=0, atol=1e-9)  # equal up to rounding of the start times
    both = (one.outcome[mine_one] == 0) & (three.outcome[mine_three] == 0)
    assert np.array_equal(one.attempts[mine_one][both], three.attempts[mine_three][both])  # same OOS draws
    assert hospital_key("h-b") == hospital_key("h-b") != hospital_key("h-a")


def test_the_two_example_networks_see_the_same_patients() -> None:
    """Same hospitals and demand in both examples: with one seed, the same referrals, patients and bridging."""
    root = Path(__file__).resolve().parents[1] / "examples"
    central = simulate(compile_scenario(load_scenario(root / "centralized.yaml")), 3)
    regional = simulate(compile_scenario(load_scenario(root / "regional.yaml")), 3)
    assert central.hospitals == regional.hospitals
    assert np.array_equal(central.arrival, regional.arrival)
    assert np.array_equal(central.hospital, regional.hospital)
    assert np.array_equal(central.number, regional.number)
    assert np.array_equal(central.bridged, regional.bridged)
    assert central.patients > 1000


def test_seasonality_thins_arrivals_around_the_trough() -> None:
    text = (
        _two_hospitals(rate_a=2000)
        .replace("horizon_days: 400", "horizon_days: 365")
        .replace("seasonality: {amplitude: 0, peak_day: 0}", "seasonality: {amplitude: 0.8, peak_day: 0}")
    )
    out = simulate(compile_scenario(scenario_from_text(text, "s.yaml")), 1)
    mine = out.hospital == out.hospitals.index("h-a")
    day = out.arrival[mine]
    winter = np.sum((day < 45) | (day > 320))
    summer = np.sum((day > 137) & (day < 228))
    assert winter > 4 * summer  # 1.8 / 0.2 at the extremes


def test_next_open_moves_closed_days_to_the_next_morning() -> None:
    weekdays = 0b0011111
    assert next_open(4.9, weekdays) == 4.9  # Friday evening is still Friday
    assert next_open(5.1, weekdays) == 7 + MORNING  # Saturday -> Monday 08:00
    assert next_open(13.0, 0b0111111) == 14 + MORNING  # Sunday -> Monday


@pytest.mark.parametrize(
    ("code", "params", "mean", "sd"),
    [
        (0, (13.0, 0.0, 0.0), 13.0, 0.0),
        (1, (2.0, 0.0, 0.0), 2.0, 2.0),
        (2, (13.0, 0.2, 0.0), 13 * np.exp(0.02), 13 * np.exp(0.02) * np.sqrt(np.exp(0.04) - 1)),
        (3, (7.0, 0.3, 0.0), 7.0, 2.1),
        (3, (7.0, 1.5, 0.0), 7.0, 10.5),  # shape < 1: the boosted branch
        (4, (1.0, 2.0, 4.0), 7 / 3, np.sqrt((1 + 4 + 16 - 2 - 4 - 8) / 18)),
        (5, (1.0, 2.0, 0.0), 1.5, 1 / np.sqrt(12)),
    ],
)
def test_sampled_durations_have_their_distributions_moments(
    code: int, params: tuple[float, float, float], mean: float, sd: float
) -> None:
    draws = np.array([sample(code, *params, np.uint64(key), 9) for key in range(20_000)])
    assert draws.min() >= 0
    assert draws.mean() == pytest.approx(mean, abs=4 * sd / np.sqrt(draws.size) + 1e-12)
    assert draws.std() == pytest.approx(sd, rel=0.05, abs=1e-12)


def test_uniforms_are_in_the_open_interval_and_look_uniform() -> None:
    u = np.array([uniform01(np.uint64(7), slot) for slot in range(20_000)])
    assert u.min() > 0
    assert u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert counts.min() > 1800


def _two_hospitals(rate_a: float = 100, units: int = 6, run: str = "{dist: gamma, mean: 12, cv: 0.2}") -> str:
    return f"""\
network: {{id: two, name: Two hospitals}}
nodes:
  - id: h-a
    name: A
    kind: hospital
    fin: A1001
    location: {{city: Basel, country: CH, latitude: 47.5, longitude: 7.6}}
    capabilities: {{apheresis_chairs: 2, infusion_beds: 6}}
  - id: h-b
    name: B
    kind: hospital
    fin: A1002
    location: {{city: Bern, country: CH, latitude: 46.9, longitude: 7.4}}
    capabilities: {{apheresis_chairs: 2, infusion_beds: 6}}
  - id: hub
    name: Hub
    kind: central_factory
    fin: A1003
    location: {{city: Basel, country: CH, latitude: 47.5, longitude: 7.6}}
    capabilities:
      qc_lab: true
      manufacturing: [{{platform: P, units: {units}, run_days: 12}}]
lanes:
  - {{from: h-a, to: hub, transport_hours: 4}}
  - {{from: h-b, to: hub, transport_hours: 8}}
demand:
  horizon_days: 400
  warmup_days: 50
  seasonality: {{amplitude: 0, peak_day: 0}}
  hospitals:
    h-a: {{patients_per_year: {rate_a}}}
    h-b: {{patients_per_year: 120}}
process:
  manufacturing: {{run_time: {{P: {run}}}}}
"""


def test_every_jitted_function_the_kernel_calls_lives_in_the_kernel_module() -> None:
    """Regression: Numba stamps a function's disk cache by its own source file only, so a jitted helper in another
    module (as sampling.py was) could change without the cached kernel noticing. Walk the kernel's globals, and
    those of every dispatcher it reaches, and require each dispatcher to be defined in cellrail.twin.kernel."""
    from numba.core.registry import CPUDispatcher

    from cellrail.twin import kernel

    seen: set[str] = set()
    elsewhere: list[str] = []
    todo = [kernel._kernel]
    while todo:
        dispatcher = todo.pop()
        func = dispatcher.py_func
        if func.__qualname__ in seen:
            continue
        seen.add(func.__qualname__)
        names = set(func.__code__.co_names)
        for const in func.__code__.co_consts:  # names used in nested code objects
            if hasattr(const, "co_names"):
                names |= set(const.co_names)
        for name in names:
            value = func.__globals__.get(name)
            if isinstance(value, CPUDispatcher):
                if value.py_func.__module__ != kernel.__name__:
                    elsewhere.append(f"{name} from {value.py_func.__module__}")
                todo.append(value)
    assert not elsewhere, elsewhere
    assert {"_kernel", "_referrals", "sample", "uniform01", "splitmix64", "_gamma_unit"} <= seen
