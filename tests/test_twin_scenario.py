"""Twin scenarios: the example files load, defaults carry their sources, and every bad input is refused before any
simulation with a problem that names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cellrail.kernel.errors import InvalidInput
from cellrail.twin.capacity import expected_runs, offered_loads
from cellrail.twin.scenario import DISTRIBUTIONS, Distribution, load_scenario, scenario_from_text

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = ROOT / "src" / "cellrail" / "twin" / "data" / "defaults.yaml"

NETWORK = """\
network: {id: t, name: Test}
nodes:
  - id: h-a
    name: Hospital A
    kind: hospital
    fin: A1001
    location: {city: Basel, country: CH, latitude: 47.5, longitude: 7.6}
    capabilities: {apheresis_chairs: 1, infusion_beds: 4}
  - id: hub
    name: Hub
    kind: regional_hub
    fin: A1002
    location: {city: Basel, country: CH, latitude: 47.5, longitude: 7.6}
    capabilities:
      qc_lab: true
      manufacturing: [{platform: Prodigy, units: 4, run_days: 13}]
lanes:
  - {from: h-a, to: hub, transport_hours: 3}
"""
DEMAND = """\
demand:
  hospitals:
    h-a: {patients_per_year: 50}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        scenario_from_text(text, "net.yaml")
    return [str(p) for p in caught.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_examples_load_with_the_same_hospitals_and_demand() -> None:
    central = load_scenario(ROOT / "examples" / "centralized.yaml")
    regional = load_scenario(ROOT / "examples" / "regional.yaml")
    assert central.hospitals == regional.hospitals
    assert len(central.hospitals) == 8
    assert central.demand == regional.demand
    assert central.sites == ("cf-shanghai",)
    assert regional.sites == ("hub-east-suzhou", "hub-north-beijing", "hub-south-guangzhou", "h-wuhan-tongji",
                              "h-chengdu-wchsu")  # fmt: skip
    assert central.process.cryopreservation.enabled
    assert not regional.process.cryopreservation.enabled
    assert (central.horizon_days, central.warmup_days) == (730, 180)
    assert central.capacity_problems() == []
    assert regional.capacity_problems() == []
    # point-of-care hospitals use their own units first, then the Guangzhou hub
    assert [c.site for c in regional.routes.by_hospital["h-wuhan-tongji"]] == ["h-wuhan-tongji", "hub-south-guangzhou"]


def test_costs_contract_resolves_node_kinds_and_platform_overrides() -> None:
    text = NETWORK + DEMAND + "process:\n  costs: {run_cost: {Prodigy: 30000}, node_fixed_per_year: {hub: 5}}\n"
    costs = scenario_from_text(text, "net.yaml").costs
    assert costs.currency == "USD"
    assert costs.run_cost("hub") == 30000
    assert costs.manufacturing_run == 19788
    assert costs.node_fixed_per_year == {"h-a": 0.0, "hub": 5.0}
    regional = load_scenario(ROOT / "examples" / "regional.yaml").costs
    assert regional.node_fixed_per_year["h-wuhan-tongji"] == 1_500_000  # hospital 0 + point of care
    assert regional.node_fixed_per_year["hub-east-suzhou"] == 4_000_000


def test_every_default_has_a_source() -> None:
    def walk(node: object, path: str) -> None:
        assert isinstance(node, dict), path
        if "value" in node:
            assert set(node) == {"value", "source"}, path
            assert str(node["source"]).strip(), path
            return
        for key, child in node.items():
            walk(child, f"{path}.{key}")

    walk(yaml.safe_load(DEFAULTS.read_text()), "")


def test_unknown_distribution_names_file_line_field_and_the_allowed_forms() -> None:
    text = NETWORK + DEMAND + "process:\n  qc_release: {dist: weibull, mean: 3}\n"
    [problem] = problems_of(text)
    line = line_of(text, "weibull")
    assert problem.startswith(f"net.yaml:{line}: process.qc_release.dist: unknown distribution 'weibull'")
    assert ", ".join(DISTRIBUTIONS) in problem


@pytest.mark.parametrize(
    ("process", "field", "words"),
    [
        ("qc_release: {dist: fixed, value: -1}", "process.qc_release", "value must be a finite number >= 0"),
        ("qc_release: {dist: gamma, mean: 7}", "process.qc_release", "'gamma' takes exactly: mean, cv"),
        ("qc_release: {dist: triangular, low: 3, mode: 2, high: 4}", "process.qc_release", "low <= mode <= high"),
        ("qc_release: {dist: exponential, mean: 0}", "process.qc_release", "mean must be > 0"),
        ("oos_probability: 1.5", "process.oos_probability", "less than or equal to 1"),
        ("dropout: {bridging_share: -0.1}", "process.dropout.bridging_share", "greater than or equal to 0"),
        ("max_attempts: 0", "process.max_attempts", "greater than or equal to 1"),
        ("routing: {rule: nearest}", "process.routing.rule", "'primary'"),
        ("manufacturing: {run_time: {Cocoon: {dist: fixed, value: 7}}}", "process.manufacturing.run_time.Cocoon",
         "no platform named 'Cocoon'"),
        ("costs: {node_fixed_per_year: {moon-base: 1}}", "process.costs.node_fixed_per_year.moon-base",
         "neither a node id nor a node kind"),
        ("transport: {cost_per_shipment: {teleport: 1}}", "process.transport.cost_per_shipment", "unknown cold chain"),
    ],
)  # fmt: skip
def test_impossible_process_values_are_refused(process: str, field: str, words: str) -> None:
    text = NETWORK + DEMAND + "process:\n  " + process + "\n"
    found = problems_of(text)
    line = len(text.splitlines())
    assert any(p.startswith(f"net.yaml:{line}: {field}") and words in p for p in found), found


def test_demand_problems_name_the_hospital_line() -> None:
    text = NETWORK + "demand:\n  horizon_days: 100\n  warmup_days: 100\n  hospitals:\n    hub: {patients_per_year: 5}\n"
    text += "    h-x: {patients_per_year: -2}\n"
    found = problems_of(text)
    assert (
        f"net.yaml:{line_of(text, 'warmup_days')}: demand.warmup_days: warmup_days (100.0) must be shorter" in found[0]
    )
    assert any(p.startswith(f"net.yaml:{line_of(text, 'h-x')}: demand.hospitals.h-x.patients_per_year") for p in found)
    text = NETWORK + "demand:\n  hospitals:\n    hub: {patients_per_year: 5}\n    h-x: {patients_per_year: 2}\n"
    found = problems_of(text)
    assert (
        f"net.yaml:{line_of(text, 'hub: {')}: demand.hospitals.hub: 'hub' is a regional_hub; only hospitals refer"
        in found
    )
    assert f"net.yaml:{line_of(text, 'h-x')}: demand.hospitals.h-x: unknown node 'h-x'" in found
    assert problems_of(NETWORK) == ["net.yaml:1: demand: demand.hospitals is missing: the referrals per hospital"]


def test_a_hospital_that_only_reaches_another_hospitals_point_of_care_is_unserved() -> None:
    text = """\
network: {id: t, name: Test}
nodes:
  - id: h-poc
    name: Point of care
    kind: hospital
    fin: A1001
    location: {city: Basel, country: CH, latitude: 47.5, longitude: 7.6}
    capabilities:
      apheresis_chairs: 1
      infusion_beds: 2
      qc_lab: true
      manufacturing: [{platform: Cocoon, units: 2, run_days: 7}]
  - id: h-b
    name: Hospital B
    kind: hospital
    fin: A1002
    location: {city: Bern, country: CH, latitude: 46.9, longitude: 7.4}
    capabilities: {apheresis_chairs: 1, infusion_beds: 2}
lanes:
  - {from: h-b, to: h-poc, transport_hours: 2}
demand:
  hospitals:
    h-poc: {patients_per_year: 10}
    h-b: {patients_per_year: 10}
"""
    [problem] = problems_of(text)
    assert problem.startswith(f"net.yaml:{line_of(text, 'h-b: {')}: demand.hospitals.h-b: hospital 'h-b' has demand")
    assert "no manufacturing site it can use" in problem


def test_network_and_twin_problems_come_together_with_the_network_first() -> None:
    text = NETWORK.replace("transport_hours: 3", "transport_hours: -3") + DEMAND
    found = problems_of(text)
    assert found[0].startswith(f"net.yaml:{line_of(text, 'transport_hours')}: lanes[0].transport_hours")


def test_unreadable_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_scenario(tmp_path / "missing.yaml")
    assert "cannot read the file" in str(caught.value)


def test_overload_is_flagged_in_plain_words() -> None:
    text = NETWORK.replace("units: 4", "units: 1") + DEMAND
    scenario = scenario_from_text(text, "net.yaml")
    [sentence] = scenario.capacity_problems()
    # 50/365 patients a day x 1.04 runs x 13 days on one unit = 185 %
    assert sentence.startswith("demand exceeds capacity at hub: its manufacturing units would be 185% busy")
    loads = {(load.node, load.resource): load for load in offered_loads(scenario)}
    assert loads["h-a", "infusion beds"].offered == pytest.approx(50 / 365 * 7)


def test_expected_runs_counts_remanufactures() -> None:
    assert expected_runs(0.04, 0.5, 1) == 1.0
    assert expected_runs(0.04, 0.5, 2) == pytest.approx(1.04)
    assert expected_runs(0.04, 0.5, 3) == pytest.approx(1.06)


@pytest.mark.parametrize(
    ("form", "mean"),
    [
        ({"dist": "fixed", "value": 13}, 13.0),
        ({"dist": "exponential", "mean": 2}, 2.0),
        ({"dist": "lognormal", "median": 13, "sigma": 0.2}, 13 * 1.0202013400267558),
        ({"dist": "gamma", "mean": 7, "cv": 0.3}, 7.0),
        ({"dist": "triangular", "low": 1, "mode": 2, "high": 4}, 7 / 3),
        ({"dist": "uniform", "low": 1, "high": 2}, 1.5),
    ],
)
def test_distribution_forms(form: dict[str, object], mean: float) -> None:
    d = Distribution.model_validate(form)
    assert d.expected == pytest.approx(mean)
    assert len(d.parameters()) == 3


def test_a_hospital_without_any_route_is_refused_with_the_network_problem() -> None:
    text = NETWORK.replace("lanes:\n  - {from: h-a, to: hub, transport_hours: 3}\n", "lanes: []\n") + DEMAND
    found = problems_of(text)
    assert (
        f"net.yaml:{line_of(text, 'id: h-a')}: nodes[0].id: hospital 'h-a' has no lane route to and from any "
        in (found[0])
    )


def test_a_cool_down_that_leaves_no_counted_window_is_refused() -> None:
    text = NETWORK + "demand:\n  horizon_days: 200\n  warmup_days: 100\n  cooldown_days: 100\n"
    text += "  hospitals:\n    h-a: {patients_per_year: 5}\n"
    found = problems_of(text)
    assert any("warmup_days + cooldown_days (100 + 100) must be shorter than horizon_days (200)" in p for p in found)
    bad = NETWORK + "demand:\n  cooldown_days: -1\n  hospitals:\n    h-a: {patients_per_year: 5}\n"
    found = problems_of(bad)
    assert any(p.startswith(f"net.yaml:{line_of(bad, 'cooldown_days')}: demand.cooldown_days") for p in found)


def test_the_default_cool_down_is_sourced_and_lets_the_examples_finish() -> None:
    text = (ROOT / "src/cellrail/twin/data/defaults.yaml").read_text(encoding="utf-8")
    cooldown = yaml.safe_load(text)["demand"]["cooldown_days"]
    assert cooldown["value"] == 90
    assert "p99" in cooldown["source"]
    assert load_scenario(ROOT / "examples" / "regional.yaml").cooldown_days == 90
