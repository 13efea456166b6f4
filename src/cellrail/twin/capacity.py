"""Offered load against capacity, per resource, before simulation: where demand exceeds what a node can do.

An overloaded network is still simulated (queues grow, patients are lost while waiting); this check says so in
plain words, so a report can state it instead of leaving readers to infer it from the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cellrail.twin.scenario import Scenario


@dataclass(frozen=True)
class Load:
    node: str
    resource: str  # "apheresis chairs", "manufacturing units", "infusion beds"
    offered: float  # server-days asked for per day
    capacity: float  # server-days available per day

    @property
    def utilisation(self) -> float:
        return self.offered / self.capacity if self.capacity > 0 else float("inf")

    def sentence(self) -> str:
        return (
            f"demand exceeds capacity at {self.node}: its {self.resource} would be {self.utilisation:.0%} busy "
            f"({self.offered:.2f} of {self.capacity:.2f} per day); queues and losses will grow over the horizon"
        )


def expected_runs(oos: float, re_oos: float, max_attempts: int) -> float:
    """Manufacturing runs per patient: 1 + P(first out of spec) x (1 + p + p^2 ... up to max_attempts runs)."""
    runs, reach = 1.0, oos
    for _ in range(max_attempts - 1):
        runs += reach
        reach *= re_oos
    return runs


def offered_loads(scenario: Scenario) -> list[Load]:
    """Every hospital's chairs and beds and every site's units, with demand routed to primary sites."""
    network, process = scenario.network, scenario.process
    loads: list[Load] = []
    per_site: dict[str, float] = {}
    runs = expected_runs(process.oos_probability, process.remanufacture_oos_probability, process.max_attempts)
    for node in network.hospitals():
        rate = scenario.patients_per_day(node.id)
        caps = node.capabilities
        open_share = len(set(node.operating_days)) / 7
        loads.append(
            Load(
                node.id,
                "apheresis chairs",
                rate / caps.collections_per_chair_per_day,
                caps.apheresis_chairs * open_share,
            )
        )
        loads.append(Load(node.id, "infusion beds", rate * process.infusion.bed_stay.expected, caps.infusion_beds))
        candidates = scenario.routes.by_hospital.get(node.id, ())
        if candidates and rate > 0:
            site = network.node(candidates[0].site)
            platforms = [p for p in site.capabilities.manufacturing if p.units > 0]
            mean_run = sum(scenario.run_time(p.platform, p.run_days).expected * p.units for p in platforms) / sum(
                p.units for p in platforms
            )
            per_site[site.id] = per_site.get(site.id, 0.0) + rate * runs * mean_run
    for site in network.manufacturing_nodes():
        loads.append(
            Load(site.id, "manufacturing units", per_site.get(site.id, 0.0), site.capabilities.manufacturing_units)
        )
    return loads
