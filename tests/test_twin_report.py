"""Reports: CSV files that hold the replications' numbers, and an offline page with charts and warnings."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from cellrail.twin.compare import compare
from cellrail.twin.replicate import run_replications
from cellrail.twin.report import Run, write_comparison, write_run
from cellrail.twin.scenario import Scenario, scenario_from_text
from cellrail.twin.statistics import mean_ci

OVERLOADED = """\
network: {id: small, name: Small overloaded network}
nodes:
  - id: h-a
    name: Hospital A
    kind: hospital
    fin: A1001
    location: {city: Basel, country: CH, latitude: 47.56, longitude: 7.59}
    capabilities: {apheresis_chairs: 2, infusion_beds: 6}
  - id: h-b
    name: Hospital B
    kind: hospital
    fin: A1003
    location: {city: Bern, country: CH, latitude: 46.95, longitude: 7.45}
    capabilities: {apheresis_chairs: 2, infusion_beds: 6}
  - id: hub
    name: Hub
    kind: regional_hub
    fin: A1002
    location: {city: Olten, country: CH, latitude: 47.35, longitude: 7.9}
    capabilities:
      qc_lab: true
      manufacturing: [{platform: P, units: UNITS, run_days: 10}]
lanes:
  - {from: h-a, to: hub, transport_hours: 3}
  - {from: h-b, to: hub, transport_hours: 2}
demand:
  horizon_days: 240
  warmup_days: 60
  hospitals:
    h-a: {patients_per_year: 60}
    h-b: {patients_per_year: 40}
"""


def scenario(units: int) -> Scenario:
    return scenario_from_text(OVERLOADED.replace("UNITS", str(units)), f"hub-{units}-units.yaml")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_run_report_files_hold_the_numbers_and_warn_of_overload(tmp_path: Path) -> None:
    small = scenario(1)  # 100 patients a year x 10-day runs = 2.7 units asked of 1
    assert small.capacity_problems()
    result = run_replications(small, 6, 3, workers=1)
    page = write_run(Run("hub-1-units.yaml", small, result), tmp_path)
    html = page.read_text(encoding="utf-8")
    # offline: plotly.js inline, no external script or stylesheet
    assert not re.search(r"<script[^>]+src=", html)
    assert "<link" not in html
    assert html.count('class="plotly-graph-div"') == 6  # v2v, outcomes x2, resources x2, cost
    assert "demand exceeds capacity at hub" in html
    assert "hub-1-units.yaml · 6 replications · seed 3 · horizon 240 d (warm-up 60 d, cool-down 90 d)" in html
    for heading in ("Vein-to-vein time per hospital", "Patients treated and lost", "Cost per treated patient"):
        assert heading in html
    replications = _rows(tmp_path / "replications.csv")
    assert [int(r["seed"]) for r in replications] == list(result.seeds)
    assert [float(r["v2v_median"]) for r in replications] == pytest.approx(result.values("v2v_median").tolist())
    summary = {r["metric"]: r for r in _rows(tmp_path / "summary.csv")}
    mean, low, high, _ = mean_ci(result.values("cost_per_treated"))
    assert float(summary["cost_per_treated"]["mean"]) == pytest.approx(mean)
    assert (float(summary["cost_per_treated"]["ci95_low"]), float(summary["cost_per_treated"]["ci95_high"])) == (
        pytest.approx(low),
        pytest.approx(high),
    )
    hospitals = _rows(tmp_path / "hospitals.csv")
    assert [h["hospital"] for h in hospitals] == ["h-a", "h-b"]
    assert float(hospitals[0]["treated_share_mean"]) == pytest.approx(
        float(np.nanmean(result.hospital_values("treated_share")[:, 0]))
    )
    patients = _rows(tmp_path / "patients_replication0.csv")
    assert len(patients) == result.first.patients
    treated = [p for p in patients if p["outcome"] == "treated" and p["counted"] == "True"]
    assert np.median([float(p["vein_to_vein"]) for p in treated]) == pytest.approx(
        result.summaries[0].metrics["v2v_median"]
    )
    daily = _rows(tmp_path / "resources_daily.csv")
    hub = [d for d in daily if d["node"] == "hub" and d["kind"] == "manufacturing"]
    assert len(hub) == result.busy_mean.shape[1]
    assert max(float(d["queue_mean"]) for d in hub) > 5  # the queue grows at the overloaded hub


def test_comparison_report_has_the_difference_table(tmp_path: Path) -> None:
    a, b = scenario(1), scenario(4)  # four units instead of one
    comparison = compare(a, b, 6, 11, workers=1)
    page = write_comparison(Run("hub-1-units.yaml", a, comparison.a), Run("hub-4-units.yaml", b, comparison.b),
                            comparison, tmp_path)  # fmt: skip
    html = page.read_text(encoding="utf-8")
    assert "95 % CI of B − A" in html
    assert "A = hub-1-units.yaml, B = hub-4-units.yaml · 6 paired replications · seed 11" in html
    assert "demand exceeds capacity at hub" in html  # A's problem is still stated
    assert html.count('class="plotly-graph-div"') == 6
    v2v = comparison.difference("v2v_median")
    assert v2v.significant
    assert v2v.difference < 0  # more units: shorter waits
    assert v2v.verdict() in html
    rows = {r["metric"]: r for r in _rows(tmp_path / "differences.csv")}
    assert float(rows["v2v_median"]["difference_b_minus_a"]) == pytest.approx(v2v.difference)
    assert rows["v2v_median"]["significant"] == "True"
    assert rows["patients"]["verdict"] == "patients counted: identical in every replication (B − A = 0)"
    assert (tmp_path / "a" / "replications.csv").exists()
    assert (tmp_path / "b" / "patients_replication0.csv").exists()
