"""Invariants of every replication on random small scenarios (Hypothesis): journeys run forward in time, outcomes
match the recorded steps, resources never exceed their capacity, and a seed always gives the same bits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellrail.twin.compile import compile_scenario
from cellrail.twin.engine import simulate, warm_up
from cellrail.twin.output import Outcome
from cellrail.twin.scenario import scenario_from_text

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DISTS = [
    "{dist: fixed, value: 3}",
    "{dist: exponential, mean: 2}",
    "{dist: lognormal, median: 4, sigma: 0.5}",
    "{dist: gamma, mean: 5, cv: 0.7}",
    "{dist: triangular, low: 0.5, mode: 1, high: 6}",
    "{dist: uniform, low: 0, high: 2}",
]


@pytest.fixture(scope="module", autouse=True)
def compiled_kernel() -> None:
    warm_up()


@st.composite
def scenarios(draw: st.DrawFn) -> str:
    days = lambda: sorted(draw(st.sets(st.sampled_from(WEEKDAYS), min_size=1)), key=WEEKDAYS.index)  # noqa: E731
    poc = draw(st.booleans())
    qc, run, workup, bed, hold = (draw(st.sampled_from(DISTS)) for _ in range(5))
    return f"""\
network: {{id: p, name: Property}}
nodes:
  - id: h-a
    name: A
    kind: hospital
    fin: A1001
    location: {{city: Basel, country: CH, latitude: 47.5, longitude: 7.6}}
    operating_days: [{", ".join(days())}]
    capabilities:
      apheresis_chairs: {draw(st.integers(1, 3))}
      collections_per_chair_per_day: {draw(st.integers(1, 4))}
      infusion_beds: {draw(st.integers(1, 4))}
      qc_lab: {str(poc).lower()}
      manufacturing: [{{platform: Cocoon, units: {draw(st.integers(1, 3)) if poc else 0}, run_days: 7}}]
  - id: h-b
    name: B
    kind: hospital
    fin: A1002
    location: {{city: Bern, country: CH, latitude: 46.9, longitude: 7.4}}
    operating_days: [{", ".join(days())}]
    capabilities: {{apheresis_chairs: {draw(st.integers(1, 3))}, infusion_beds: {draw(st.integers(1, 4))}}}
  - id: hub
    name: Hub
    kind: regional_hub
    fin: A1003
    location: {{city: Basel, country: CH, latitude: 47.5, longitude: 7.6}}
    operating_days: [{", ".join(days())}]
    capabilities:
      qc_lab: true
      manufacturing:
        - {{platform: Prodigy, units: {draw(st.integers(1, 4))}, run_days: 13}}
        - {{platform: Cocoon, units: {draw(st.integers(0, 2))}, run_days: 7}}
lanes:
  - {{from: h-a, to: hub, transport_hours: {draw(st.floats(0.5, 40))}, days: [{", ".join(days())}]}}
  - {{from: h-b, to: hub, transport_hours: {draw(st.floats(0.5, 40))}, days: [{", ".join(days())}]}}
demand:
  horizon_days: {draw(st.integers(30, 200))}
  warmup_days: 10
  cooldown_days: 0
  seasonality: {{amplitude: {draw(st.floats(0, 1))}, peak_day: {draw(st.integers(0, 365))}}}
  hospitals:
    h-a: {{patients_per_year: {draw(st.floats(0, 300))}, scheduled: [0, 0, 3.5]}}
    h-b: {{patients_per_year: {draw(st.floats(0, 300))}}}
process:
  workup: {workup}
  manufacturing: {{run_cv: {draw(st.floats(0, 1.2))}, run_time: {{Cocoon: {run}}}}}
  qc_release: {qc}
  oos_probability: {draw(st.floats(0, 1))}
  remanufacture_oos_probability: {draw(st.floats(0, 1))}
  max_attempts: {draw(st.integers(1, 3))}
  cryopreservation: {{enabled: {str(draw(st.booleans())).lower()}, hold: {hold}}}
  infusion: {{bed_stay: {bed}}}
  dropout:
    hazard_per_day: {draw(st.sampled_from([0.0, 0.003, 0.05, 1.0]))}
    scope: {draw(st.sampled_from(["journey", "manufacturing_queue"]))}
    bridging_share: {draw(st.floats(0, 1))}
    bridging_hazard_ratio: {draw(st.floats(0, 2))}
  routing: {{rule: {draw(st.sampled_from(["primary", "primary_overflow", "earliest_start"]))}, overflow_queue: 1}}
"""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=scenarios(), seed=st.integers(0, 2**40))
def test_invariants_hold_on_random_scenarios(text: str, seed: int) -> None:
    compiled = compile_scenario(scenario_from_text(text, "random.yaml"))
    out = simulate(compiled, seed)
    o = out.outcome
    # times run forward along each journey (NaN = did not happen; comparisons with NaN are skipped)
    steps = [out.arrival, out.apheresis, out.manufacture_start, out.release, out.infusion]
    for early, late in itertools.pairwise(steps):
        both = ~np.isnan(early) & ~np.isnan(late)
        assert np.all(early[both] <= late[both] + 1e-9)
    assert np.all(np.diff(out.arrival) >= 0)
    assert np.all(out.arrival <= out.horizon_days)
    # outcomes match the steps recorded
    treated = o == Outcome.TREATED
    assert np.array_equal(treated, ~np.isnan(out.infusion))
    assert np.all(out.ended[treated] == out.infusion[treated])
    assert np.all(~np.isnan(out.release[treated]))
    assert np.all(np.isnan(out.ended[o == Outcome.IN_PROGRESS]))
    done = o != Outcome.IN_PROGRESS
    assert np.all(out.ended[done] >= out.arrival[done])
    assert np.all(out.ended[done] <= out.horizon_days)
    failed = o == Outcome.MANUFACTURING_FAILURE
    assert np.all(out.attempts[failed] == compiled.max_attempts)
    assert np.all((out.attempts >= 0) & (out.attempts <= compiled.max_attempts))
    assert np.array_equal(out.site >= 0, out.attempts > 0)
    assert np.array_equal(out.attempts > 0, ~np.isnan(out.manufacture_start))
    assert sum(int((o == k).sum()) for k in Outcome) == out.patients
    assert np.all(out.bed_days[~treated] == 0)
    assert np.all(out.transport_cost >= 0)
    # resources
    assert np.all(out.busy <= out.capacity[:, None])
    assert np.all(out.busy >= 0)
    assert np.all(out.queue >= 0)
    assert out.busy.shape == (len(out.resource_node), compiled.days)
    # bit-identical rerun
    again = simulate(compiled, seed)
    assert out.ended.tobytes() == again.ended.tobytes()
    assert out.busy.tobytes() == again.busy.tobytes()
