"""Metrics on a hand-built replication, every figure computed by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellrail.twin.metrics import METRIC_NAMES, CostRates, percentile, summarize, vein_to_vein
from cellrail.twin.output import Outcome, ResourceKind, RunOutput

NAN = float("nan")
RATES = CostRates(currency="EUR", run_cost=(1000.0,), bed_day=100.0, bridging=2000.0, fixed_per_year=3650.0)


def hand_built_output(seed: int = 7) -> RunOutput:
    """Seven patients at two hospitals, one site; warm-up 10 days of a 100-day horizon.

    0: h0, referred in the warm-up (not counted; its huge transport cost must not show)
    1: h0, treated, vein-to-vein 35 - 15 = 20, decision-to-infusion 23
    2: h0, treated after a remanufacture, v2v 30, d2i 32, bridged
    3: h1, treated, v2v 10, d2i 11
    4: h1, lost while waiting
    5: h1, still in progress at the horizon
    6: h0, manufacturing failure after two runs
    """
    o = Outcome
    days = 100
    busy = np.zeros((2, days))
    queue = np.zeros((2, days))
    busy[:, :10] = 99.0  # warm-up: must be ignored
    queue[:, :10] = 99.0
    busy[0, 10:] = np.tile([1.0, 2.0], 45)  # manufacturing, 2 units: utilisation 1.5 / 2 = 0.75
    queue[0, 10:] = np.tile([0.0, 4.0], 45)  # mean 2, max 4
    busy[1, 10:] = np.tile([0.0, 1.0], 45)  # apheresis, 1 chair: utilisation 0.5
    return RunOutput(
        seed=seed,
        horizon_days=100.0,
        warmup_days=10.0,
        hospitals=("h0", "h1"),
        sites=("hub",),
        hospital=np.array([0, 0, 0, 1, 1, 1, 0], dtype=np.int32),
        arrival=np.array([5, 12, 20, 30, 40, 90, 50], dtype=np.float64),
        apheresis=np.array([7, 15, 22, 31, 42, 92, 52], dtype=np.float64),
        site=np.array([0, 0, 0, 0, 0, 0, 0], dtype=np.int32),
        manufacture_start=np.array([8, 16, 23, 32, 43, 93, 53], dtype=np.float64),
        release=np.array([20, 30, 48, 39, NAN, NAN, NAN], dtype=np.float64),
        infusion=np.array([25, 35, 52, 41, NAN, NAN, NAN], dtype=np.float64),
        ended=np.array([25, 35, 52, 41, 45, NAN, 80], dtype=np.float64),
        attempts=np.array([1, 1, 2, 1, 1, 1, 2], dtype=np.int32),
        outcome=np.array(
            [o.TREATED, o.TREATED, o.TREATED, o.TREATED, o.LOST_WAITING, o.IN_PROGRESS, o.MANUFACTURING_FAILURE],
            dtype=np.int8,
        ),
        bridged=np.array([True, False, True, False, False, False, False]),
        transport_cost=np.array([1e6, 100, 200, 50, 50, 0, 100], dtype=np.float64),
        bed_days=np.array([100, 5, 7, 3, 0, 0, 0], dtype=np.float64),
        resource_node=("hub", "h0"),
        resource_kind=np.array([ResourceKind.MANUFACTURING, ResourceKind.APHERESIS], dtype=np.int8),
        capacity=np.array([2, 1], dtype=np.int32),
        busy=busy,
        queue=queue,
    )


def test_shares_and_times_of_counted_patients() -> None:
    m = summarize(hand_built_output(), RATES).metrics
    assert m["patients"] == 6  # patient 0 arrived in the warm-up
    assert m["treated_share"] == pytest.approx(3 / 6)
    assert m["lost_share"] == pytest.approx(1 / 6)
    assert m["failure_share"] == pytest.approx(1 / 6)
    assert m["in_progress_share"] == pytest.approx(1 / 6)
    assert m["bridged_share"] == pytest.approx(1 / 6)
    # vein-to-vein of treated counted patients: 20, 30, 10 -> median 20; p90 at rank 0.9 * 2 = 1.8: 20 + 0.8 * 10
    assert m["v2v_median"] == pytest.approx(20.0)
    assert m["v2v_p90"] == pytest.approx(28.0)
    assert m["v2v_mean"] == pytest.approx(20.0)
    # decision-to-infusion: 23, 32, 11 -> median 23, p90 23 + 0.8 * 9
    assert m["d2i_median"] == pytest.approx(23.0)
    assert m["d2i_p90"] == pytest.approx(30.2)
    assert m["attempts_mean"] == pytest.approx(8 / 6)
    assert tuple(m) == METRIC_NAMES


def test_cost_per_treated_patient_and_its_parts() -> None:
    m = summarize(hand_built_output(), RATES).metrics
    # runs 1+2+1+1+1+2 = 8 x 1000; transport 500; fixed 3650/yr over 90 days = 900; bed-days 15 x 100;
    # one bridged patient 2000: 12,900 over 3 treated patients.
    assert m["cost_manufacturing"] == pytest.approx(8000 / 3)
    assert m["cost_transport"] == pytest.approx(500 / 3)
    assert m["cost_fixed"] == pytest.approx(900 / 3)
    assert m["cost_bed_days"] == pytest.approx(1500 / 3)
    assert m["cost_bridging"] == pytest.approx(2000 / 3)
    assert m["cost_per_treated"] == pytest.approx(4300.0)


def test_resources_after_the_warm_up() -> None:
    s = summarize(hand_built_output(), RATES)
    assert s.utilisation.tolist() == pytest.approx([0.75, 0.5])
    assert s.mean_queue.tolist() == pytest.approx([2.0, 0.0])
    assert s.max_queue.tolist() == pytest.approx([4.0, 0.0])
    assert s.metrics["utilisation_manufacturing"] == pytest.approx(0.75)
    assert s.metrics["utilisation_apheresis"] == pytest.approx(0.5)
    assert math.isnan(s.metrics["utilisation_infusion"])  # no infusion beds tracked in this output
    assert s.metrics["queue_manufacturing"] == pytest.approx(2.0)


def test_per_hospital_figures() -> None:
    s = summarize(hand_built_output(), RATES)
    assert s.hospitals == ("h0", "h1")
    h = s.by_hospital
    assert h["patients"].tolist() == [3, 3]  # h0: 1, 2, 6; h1: 3, 4, 5
    assert h["treated_share"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert h["v2v_median"].tolist() == pytest.approx([25.0, 10.0])
    assert h["v2v_p90"].tolist() == pytest.approx([29.0, 10.0])
    assert h["lost_share"].tolist() == pytest.approx([0.0, 1 / 3])
    assert h["in_progress_share"].tolist() == pytest.approx([0.0, 1 / 3])
    assert sorted(vein_to_vein(hand_built_output()).tolist()) == [10.0, 20.0, 30.0]


def test_no_patient_treated_gives_nan_not_an_error() -> None:
    out = hand_built_output()
    empty = RunOutput(**{**out.__dict__, "outcome": np.full(7, Outcome.LOST_WAITING, dtype=np.int8)})
    m = summarize(empty, RATES).metrics
    assert m["treated_share"] == 0.0
    assert math.isnan(m["v2v_median"])
    assert math.isnan(m["cost_per_treated"])
    assert math.isnan(percentile(np.array([]), 50))


@st.composite
def random_outputs(draw: st.DrawFn) -> RunOutput:
    """Any consistent replication: outcomes, times in order, a few resources."""
    n = draw(st.integers(0, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    outcome = rng.integers(0, 4, n).astype(np.int8)
    arrival = rng.uniform(0, 300, n)
    apheresis = arrival + rng.uniform(0, 10, n)
    infusion = np.where(outcome == Outcome.TREATED, apheresis + rng.uniform(5, 40, n), np.nan)
    days = 300
    capacity = np.array([2, 3, 1], dtype=np.int32)
    busy = rng.integers(0, 4, (3, days)).clip(0, capacity[:, None]).astype(np.float64)
    return RunOutput(
        seed=1,
        horizon_days=float(days),
        warmup_days=float(draw(st.sampled_from([0, 30, 100]))),
        hospitals=("h0", "h1", "h2"),
        sites=("s0", "s1"),
        hospital=rng.integers(0, 3, n).astype(np.int32),
        arrival=arrival,
        apheresis=apheresis,
        site=rng.integers(-1, 2, n).astype(np.int32),
        manufacture_start=apheresis + 1,
        release=infusion - 1,
        infusion=infusion,
        ended=np.where(outcome == Outcome.IN_PROGRESS, np.nan, apheresis + 50),
        attempts=rng.integers(1, 3, n).astype(np.int32),
        outcome=outcome,
        bridged=rng.random(n) < 0.4,
        transport_cost=rng.uniform(0, 3000, n),
        bed_days=rng.uniform(0, 10, n),
        resource_node=("h0", "s0", "h1"),
        resource_kind=np.array([0, 1, 2], dtype=np.int8),
        capacity=capacity,
        busy=busy,
        queue=rng.integers(0, 5, (3, days)).astype(np.float64),
    )


@settings(max_examples=60, deadline=None)
@given(random_outputs())
def test_invariants_of_any_replication(output: RunOutput) -> None:
    s = summarize(output, CostRates("USD", (1000.0, 2000.0), 300.0, 5000.0, 1e5))
    m = s.metrics
    counted = output.counted()
    assert m["patients"] == counted.sum()
    if counted.any():
        shares = m["treated_share"] + m["lost_share"] + m["failure_share"] + m["in_progress_share"]
        assert shares == pytest.approx(1.0)
        assert np.nansum(s.by_hospital["patients"]) == m["patients"]
    if m["treated_share"] > 0:
        parts = sum(
            m[p] for p in ("cost_manufacturing", "cost_transport", "cost_fixed", "cost_bed_days", "cost_bridging")
        )
        assert parts == pytest.approx(m["cost_per_treated"])
        v2v = vein_to_vein(output)
        assert v2v.min() <= m["v2v_median"] <= m["v2v_p90"] <= v2v.max()
        assert m["v2v_median"] == np.percentile(v2v, 50)  # same interpolation as numpy, bit for bit
        assert m["d2i_p90"] == np.percentile(
            (output.infusion - output.arrival)[counted & ~np.isnan(output.infusion)], 90
        )
    else:
        assert math.isnan(m["cost_per_treated"])
    assert all(0 <= u <= 1 for u in s.utilisation)


def test_referrals_in_the_cool_down_are_simulated_but_not_counted() -> None:
    """Regression: patients referred too late to finish used to sit in the denominators (censoring mixed into the
    shares). With a 15-day cool-down of the 100-day horizon, patient 5 (referred on day 90) is not counted; the
    fixed costs cover the counted referral window of 100 - 10 - 15 = 75 days."""
    out = RunOutput(**{**hand_built_output().__dict__, "cooldown_days": 15.0})
    assert out.counted().tolist() == [False, True, True, True, True, False, True]
    assert out.counted_window_days == 75.0
    m = summarize(out, RATES).metrics
    assert m["patients"] == 5
    assert m["in_progress_share"] == 0.0
    assert m["treated_share"] == pytest.approx(3 / 5)
    assert m["cost_fixed"] == pytest.approx(3650.0 * 75 / 365 / 3)


def test_every_counted_patient_of_the_examples_finishes_before_the_horizon() -> None:
    """With the default cool-down the in-progress share is a check that should be ~0, not a bias."""
    from pathlib import Path

    from cellrail.twin.compile import compile_scenario
    from cellrail.twin.engine import simulate
    from cellrail.twin.scenario import load_scenario

    root = Path(__file__).resolve().parents[1]
    for name in ("regional.yaml", "centralized.yaml"):
        compiled = compile_scenario(load_scenario(root / "examples" / name))
        for seed in range(3):
            out = simulate(compiled, seed)
            assert not np.any(out.outcome[out.counted()] == Outcome.IN_PROGRESS), (name, seed)
            late = out.arrival > out.horizon_days - out.cooldown_days
            assert late.any()
            assert np.any(out.outcome[late] == Outcome.IN_PROGRESS)


def test_node_fixed_costs_are_charged_by_the_share_of_capacity_used() -> None:
    """Regression: a central factory's whole fixed cost was charged to a network using a fraction of it. The hub
    runs 1.5 of its 2 units on average (0.75), so it carries 75 % of its 3,650 a year; a node without manufacturing
    units (h0) is charged in full. Counted window 90 days, 3 patients treated."""
    rates = CostRates("EUR", (1000.0,), 100.0, 2000.0, fixed_by_node=(("hub", 3650.0), ("h0", 365.0)))
    m = summarize(hand_built_output(), rates).metrics
    assert m["cost_fixed"] == pytest.approx((3650.0 * 0.75 + 365.0) * 90 / 365 / 3)
    parts = sum(m[p] for p in ("cost_manufacturing", "cost_transport", "cost_fixed", "cost_bed_days", "cost_bridging"))
    assert m["cost_per_treated"] == pytest.approx(parts)


def test_the_examples_say_which_cost_parts_rest_on_assumptions() -> None:
    from pathlib import Path

    from cellrail.twin.scenario import load_scenario

    regional = load_scenario(Path(__file__).resolve().parents[1] / "examples" / "regional.yaml")
    assert set(regional.assumed_cost_parts()) == {"cost_transport", "cost_fixed", "cost_bed_days", "cost_bridging"}
