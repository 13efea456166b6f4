"""Validation of the engine against queueing theory, published vein-to-vein times and an independent SimPy model.

Each check, its tolerance and the figures measured are documented in docs/validation.md. Analytic test vectors:
Erlang C (M/M/c), Erlang A (M/M/c+M, Palm), M/D/1 (Pollaczek-Khinchine) and Little's law (Little 1961).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from benchmarks.twin_simpy import simulate_simpy
from scipy import stats

from cellrail.twin.compile import Compiled, compile_scenario
from cellrail.twin.engine import simulate, warm_up
from cellrail.twin.output import Outcome, ResourceKind, RunOutput
from cellrail.twin.scenario import load_scenario, scenario_from_text

ROOT = Path(__file__).resolve().parents[1]
EVERY_DAY = "[mon, tue, wed, thu, fri, sat, sun]"
REPLICATIONS = 10


@pytest.fixture(scope="module", autouse=True)
def compiled_kernel() -> None:
    warm_up()


def single_queue(
    rate: float, units: int, service: str, patience: float | None = None, horizon: int = 100_000
) -> Compiled:
    """One hospital that manufactures for itself, open every day, with ample chairs and beds, no QC time and no
    failures: the manufacturing units are the only queue, fed by Poisson referrals (M/G/c). With ``patience``,
    only the wait for a unit counts towards it (scope manufacturing_queue): Palm's M/M/c+M."""
    dropout = "{hazard_per_day: 0}"
    if patience is not None:
        dropout = f"{{hazard_per_day: {1 / patience}, scope: manufacturing_queue, bridging_share: 0}}"
    text = f"""\
network: {{id: queue, name: One queue}}
nodes:
  - id: h-a
    name: A
    kind: hospital
    fin: A1001
    location: {{city: Basel, country: CH, latitude: 47.5, longitude: 7.6}}
    operating_days: {EVERY_DAY}
    capabilities:
      apheresis_chairs: 1000
      collections_per_chair_per_day: 4
      infusion_beds: 10000
      qc_lab: true
      manufacturing: [{{platform: P, units: {units}, run_days: 1}}]
demand:
  horizon_days: {horizon}
  warmup_days: 1000
  hospitals: {{h-a: {{patients_per_year: {rate * 365}}}}}
process:
  manufacturing: {{run_time: {{P: {service}}}}}
  qc_release: {{dist: fixed, value: 0}}
  oos_probability: 0
  infusion: {{bed_stay: {{dist: fixed, value: 0.01}}}}
  dropout: {dropout}
"""
    return compile_scenario(scenario_from_text(text, "queue.yaml"))


def unit_row(out: RunOutput) -> int:
    return list(out.resource_kind).index(ResourceKind.MANUFACTURING)


def queue_figures(compiled: Compiled) -> dict[str, np.ndarray]:
    """Per replication: mean wait for a unit (patients who got one), time-average queue and busy units, arrival
    rate, share who abandoned."""
    rows: dict[str, list[float]] = {"wq": [], "lq": [], "busy": [], "rate": [], "abandoned": []}
    for seed in range(REPLICATIONS):
        out = simulate(compiled, seed)
        counted = out.counted() & (out.outcome != Outcome.IN_PROGRESS)
        served = counted & ~np.isnan(out.manufacture_start)
        rows["wq"].append(float(np.mean(out.manufacture_start[served] - out.apheresis[served])))
        warm = int(out.warmup_days)
        row = unit_row(out)
        rows["lq"].append(float(out.queue[row, warm:].mean()))
        rows["busy"].append(float(out.busy[row, warm:].mean()))
        rows["rate"].append(float(out.counted().sum() / out.counted_window_days))
        rows["abandoned"].append(float(np.mean(out.outcome[counted] == Outcome.LOST_WAITING)))
    return {key: np.array(values) for key, values in rows.items()}


def erlang_c_wait(rate: float, mu: float, c: int) -> float:
    a = rate / mu
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return wait / (c * mu - rate)


def within(values: np.ndarray, expected: float, relative: float) -> None:
    """The analytic value lies within 3 standard errors of the replication mean, and within ``relative``."""
    mean = float(values.mean())
    se = float(values.std(ddof=1) / math.sqrt(values.size))
    assert abs(mean - expected) <= 3 * se + 1e-12, (mean, se, expected)
    assert abs(mean - expected) <= relative * expected, (mean, expected)


@pytest.mark.parametrize(
    ("rate", "mean", "units", "expected"),
    [
        (0.2, 10.0, 3, 4.4444),  # M/M/3, lambda 0.2, mu 0.1 (the Ciw README case)
        (0.5, 14.0, 8, 8.894),  # 8 lines, slot held 14 d (7 manufacture + 7 QC), 182 patients a year
    ],
)
def test_erlang_c_wait_and_littles_law(rate: float, mean: float, units: int, expected: float) -> None:
    assert erlang_c_wait(rate, 1 / mean, units) == pytest.approx(expected, abs=1e-3)
    figures = queue_figures(single_queue(rate, units, f"{{dist: exponential, mean: {mean}}}"))
    within(figures["wq"], expected, relative=0.06)
    # Little's law on the queue (Lq = lambda Wq) and on the servers (busy = lambda E[S]), per replication
    assert figures["lq"] == pytest.approx(figures["rate"] * figures["wq"], rel=0.03)
    assert figures["busy"] == pytest.approx(figures["rate"] * mean, rel=0.03)


@pytest.mark.parametrize(("rate", "expected"), [(0.5, 0.0502), (0.6, 0.1122)])
def test_erlang_a_share_abandoned(rate: float, expected: float) -> None:
    figures = queue_figures(single_queue(rate, 8, "{dist: exponential, mean: 14}", patience=60))
    within(figures["abandoned"], expected, relative=0.06)
    # throughput consistency: lambda (1 - P(abandon)) = busy units / E[S]
    assert figures["busy"] / 14 == pytest.approx(figures["rate"] * (1 - figures["abandoned"]), rel=0.03)


def test_m_d_1_waits_half_of_m_m_1() -> None:
    figures = queue_figures(single_queue(0.9, 1, "{dist: fixed, value: 1}", horizon=50_000))
    within(figures["wq"], 4.5, relative=0.08)


def v2v(out: RunOutput) -> np.ndarray:
    treated = out.counted() & (out.outcome == Outcome.TREATED)
    return np.asarray(out.infusion[treated] - out.apheresis[treated])


def test_centralized_example_reproduces_published_vein_to_vein() -> None:
    """Published: ZUMA-1 median 24 d; US real-world axi-cel 28 d (IQR 26-34); review: 3-4 weeks."""
    compiled = compile_scenario(load_scenario(ROOT / "examples" / "centralized.yaml"))
    times = np.concatenate([v2v(simulate(compiled, seed)) for seed in range(5)])
    assert 21 <= float(np.median(times)) <= 28
    assert float(np.percentile(times, 10)) >= 19
    assert float(np.percentile(times, 90)) <= 34


POINT_OF_CARE = """\
network: {{id: poc, name: Point of care}}
nodes:
  - id: h-poc
    name: Point-of-care hospital
    kind: hospital
    fin: A1001
    location: {{city: Leiden, country: NL, latitude: 52.2, longitude: 4.5}}
    operating_days: {days}
    capabilities:
      apheresis_chairs: 2
      infusion_beds: 6
      qc_lab: true
      manufacturing: [{{platform: Cocoon, units: 6, run_days: 6}}]
demand:
  horizon_days: 1000
  warmup_days: 100
  hospitals: {{h-poc: {{patients_per_year: 60}}}}
process:
  manufacturing: {{run_cv: 0.05}}
  qc_release: {{dist: triangular, low: 0.083, mode: 0.5, high: 1}}
"""


def test_point_of_care_reproduces_a_seven_day_fresh_vein_to_vein() -> None:
    """Published: Galapagos GLPG5101, median 7 days, fresh, at the point of care (ASH 2025)."""
    every_day = compile_scenario(scenario_from_text(POINT_OF_CARE.format(days=EVERY_DAY), "poc.yaml"))
    times = np.concatenate([v2v(simulate(every_day, seed)) for seed in range(5)])
    assert 6.5 <= float(np.median(times)) <= 7.5
    weekdays = compile_scenario(scenario_from_text(POINT_OF_CARE.format(days="[mon, tue, wed, thu, fri]"), "p"))
    weekday_times = np.concatenate([v2v(simulate(weekdays, seed)) for seed in range(5)])
    # infusions (bed admissions) due at a weekend wait for Monday: measured +0.33 days on average
    assert float(np.mean(weekday_times)) > float(np.mean(times)) + 0.15


def summary(out: RunOutput) -> tuple[float, float, float]:
    counted = out.counted() & (out.outcome != Outcome.IN_PROGRESS)
    treated = counted & (out.outcome == Outcome.TREATED)
    return (
        float(np.mean(out.infusion[treated] - out.apheresis[treated])),
        float(np.mean(out.outcome[counted] == Outcome.LOST_WAITING)),
        float(treated.sum()),
    )


def test_engine_agrees_with_the_simpy_model() -> None:
    """Regional example (weekends, courier days, overflow routing, dropout, remanufacture): Welch t-tests on the
    replication means of vein-to-vein time, share lost and patients treated, 12 seeds each."""
    compiled = compile_scenario(load_scenario(ROOT / "examples" / "regional.yaml"))
    engine = np.array([summary(simulate(compiled, seed)) for seed in range(12)])
    simpy = np.array([summary(simulate_simpy(compiled, 500 + seed)) for seed in range(12)])
    for column in range(3):
        p = stats.ttest_ind(engine[:, column], simpy[:, column], equal_var=False).pvalue
        assert p > 0.001, (column, engine[:, column].mean(), simpy[:, column].mean(), p)
        assert engine[:, column].mean() == pytest.approx(simpy[:, column].mean(), rel=0.05)


def test_an_overloaded_network_is_flagged_and_still_simulated() -> None:
    text = (
        (ROOT / "examples" / "regional.yaml")
        .read_text()
        .replace("h-guangzhou-nanfang: {patients_per_year: 80}", "h-guangzhou-nanfang: {patients_per_year: 600}")
    )
    scenario = scenario_from_text(text, "overloaded.yaml")
    problems = scenario.capacity_problems()
    assert any(
        p.startswith("demand exceeds capacity at hub-south-guangzhou: its manufacturing units") for p in problems
    )
    assert any(p.startswith("demand exceeds capacity at h-guangzhou-nanfang: its infusion beds") for p in problems)
    out = simulate(compile_scenario(scenario), 1)
    calm = simulate(compile_scenario(load_scenario(ROOT / "examples" / "regional.yaml")), 1)
    guangzhou = out.hospitals.index("h-guangzhou-nanfang")
    mine = out.counted() & (out.hospital == guangzhou) & (out.outcome != Outcome.IN_PROGRESS)
    calm_mine = calm.counted() & (calm.hospital == guangzhou) & (calm.outcome != Outcome.IN_PROGRESS)
    lost = float(np.mean(out.outcome[mine] == Outcome.LOST_WAITING))
    assert lost > 2 * float(np.mean(calm.outcome[calm_mine] == Outcome.LOST_WAITING))
    hub = out.resource_node.index("hub-south-guangzhou")
    assert out.queue[hub, -30:].mean() > out.queue[hub, 150:180].mean()  # the backlog keeps growing
