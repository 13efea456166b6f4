"""Scenario -> plain NumPy arrays: the only thing the compiled kernel sees (no Python objects inside the loop).

Resources are rows: each hospital's apheresis chairs and infusion beds, and each platform of each site. Calendars
are 7-bit masks (bit 0 = Monday; simulated day 0 is a Monday). Distributions are a code plus three parameters.
Hospitals are keyed by a hash of their node id, so a hospital draws the same random numbers in any scenario
that contains it (common random numbers), whatever the other nodes are.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cellrail.twin.output import ResourceKind
from cellrail.twin.scenario import DISTRIBUTIONS, Distribution, Scenario

DIST_CODE = {name: code for code, name in enumerate(DISTRIBUTIONS)}
ROUTING_CODE = {"primary": 0, "primary_overflow": 1, "earliest_start": 2}
SCOPE_CODE = {"journey": 0, "manufacturing_queue": 1}

F8 = NDArray[np.float64]
I8 = NDArray[np.int64]


@dataclass(frozen=True)
class Compiled:
    """Arrays for the kernel plus the names that map rows back to node ids."""

    hospitals: tuple[str, ...]
    sites: tuple[str, ...]
    resource_node: tuple[str, ...]
    horizon: float
    warmup: float
    cooldown: float
    # hospitals (H)
    hosp_key: NDArray[np.uint64]
    hosp_rate: F8  # patients per day (mean)
    hosp_amp: F8
    hosp_peak: F8
    sched_start: I8  # H + 1 offsets into sched_time
    sched_time: F8
    hosp_aph: I8  # resource row of its chairs
    hosp_inf: I8  # resource row of its beds
    # candidate sites per hospital (primary first): offsets cand_start (H + 1)
    cand_start: I8
    cand_site: I8
    cand_out_start: I8  # offsets into the leg arrays, length C + 1 each (legs of candidate c: start[c]..start[c+1])
    cand_back_start: I8
    out_legs: I8  # leg indices
    back_legs: I8
    leg_days: F8  # transport time in days
    leg_mask: I8  # courier weekdays
    leg_cost: F8  # per shipment
    # resources (R)
    res_kind: I8
    res_cap: I8
    res_mask: I8
    res_site: I8  # site index of a manufacturing row, else -1
    res_dist: I8
    res_par: F8  # (R, 3)
    res_mean: F8
    site_start: I8  # S + 1 offsets into site_res
    site_res: I8
    # process: distributions (code, parameters) for workup, QC, cryo hold; scalars
    proc_dist: I8  # [workup, qc, cryo]
    proc_par: F8  # (3, 3)
    cryo: bool
    oos: float
    re_oos: float
    max_attempts: int
    hazard: float
    scope: int
    bridging_share: float
    bridging_hr: float
    routing: int
    overflow_queue: int

    @property
    def days(self) -> int:
        return math.ceil(self.horizon)


def hospital_key(node_id: str) -> int:
    """A stable 64-bit key of a hospital's random streams (the same in every scenario and process)."""
    return int.from_bytes(hashlib.blake2b(node_id.encode(), digest_size=8).digest(), "little")


def _mask(days: tuple[int, ...]) -> int:
    return sum(1 << d for d in set(days))


def _dist(d: Distribution) -> tuple[int, tuple[float, float, float]]:
    return DIST_CODE[d.dist], d.parameters()


def compile_scenario(scenario: Scenario) -> Compiled:
    network, process, demand = scenario.network, scenario.process, scenario.demand
    hospitals = scenario.hospitals
    sites = scenario.sites
    site_index = {s: i for i, s in enumerate(sites)}
    kinds: list[int] = []
    caps: list[int] = []
    masks: list[int] = []
    res_site: list[int] = []
    dists: list[int] = []
    pars: list[tuple[float, float, float]] = []
    means: list[float] = []
    names: list[str] = []

    def add(node: str, kind: ResourceKind, cap: int, mask: int, site: int, d: Distribution) -> int:
        code, par = _dist(d)
        kinds.append(int(kind))
        caps.append(cap)
        masks.append(mask)
        res_site.append(site)
        dists.append(code)
        pars.append(par)
        means.append(d.expected)
        names.append(node)
        return len(kinds) - 1

    hosp_aph, hosp_inf = [], []
    rate, amp, peak, sched_start, sched = [], [], [], [0], []
    for h in hospitals:
        node = network.node(h)
        caps_h = node.capabilities
        mask = _mask(tuple(d.number for d in node.operating_days))
        session = Distribution(dist="fixed", value=1.0 / caps_h.collections_per_chair_per_day)
        hosp_aph.append(add(h, ResourceKind.APHERESIS, caps_h.apheresis_chairs, mask, -1, session))
        hosp_inf.append(add(h, ResourceKind.INFUSION, caps_h.infusion_beds, mask, -1, process.infusion.bed_stay))
        spec = demand.hospitals.get(h)
        season = (spec.seasonality if spec is not None else None) or demand.seasonality
        rate.append(scenario.patients_per_day(h))
        amp.append(season.amplitude)
        peak.append(season.peak_day)
        sched += list(spec.scheduled) if spec is not None else []
        sched_start.append(len(sched))
    site_start, site_res = [0], []
    for s in sites:
        node = network.node(s)
        mask = _mask(tuple(d.number for d in node.operating_days))
        for p in node.capabilities.manufacturing:
            if p.units > 0:
                site_res.append(
                    add(
                        s,
                        ResourceKind.MANUFACTURING,
                        p.units,
                        mask,
                        site_index[s],
                        scenario.run_time(p.platform, p.run_days),
                    )
                )
        site_start.append(len(site_res))
    costs = process.transport.cost_per_shipment
    leg_days: list[float] = []
    leg_mask: list[int] = []
    leg_cost: list[float] = []
    cand_start, cand_site, out_start, back_start = [0], [], [0], [0]
    out_legs: list[int] = []
    back_legs: list[int] = []
    for h in hospitals:
        for cand in scenario.routes.by_hospital.get(h, ()):
            cand_site.append(site_index[cand.site])
            for legs, target, starts in ((cand.out, out_legs, out_start), (cand.back, back_legs, back_start)):
                for leg in legs:
                    target.append(len(leg_days))
                    leg_days.append(leg.hours / 24.0)
                    leg_mask.append(_mask(leg.weekdays))
                    leg_cost.append(costs.get(leg.cold_chain, 0.0))
                starts.append(len(target))
        cand_start.append(len(cand_site))
    proc = [_dist(process.workup), _dist(process.qc_release), _dist(process.cryopreservation.hold)]
    i8 = np.int64
    return Compiled(
        hospitals=hospitals,
        sites=sites,
        resource_node=tuple(names),
        horizon=float(demand.horizon_days),
        warmup=float(demand.warmup_days),
        cooldown=float(demand.cooldown_days),
        hosp_key=np.array([hospital_key(h) for h in hospitals], dtype=np.uint64),
        hosp_rate=np.array(rate, dtype=np.float64),
        hosp_amp=np.array(amp, dtype=np.float64),
        hosp_peak=np.array(peak, dtype=np.float64),
        sched_start=np.array(sched_start, dtype=i8),
        sched_time=np.array(sched, dtype=np.float64),
        hosp_aph=np.array(hosp_aph, dtype=i8),
        hosp_inf=np.array(hosp_inf, dtype=i8),
        cand_start=np.array(cand_start, dtype=i8),
        cand_site=np.array(cand_site, dtype=i8),
        cand_out_start=np.array(out_start, dtype=i8),
        cand_back_start=np.array(back_start, dtype=i8),
        out_legs=np.array(out_legs, dtype=i8),
        back_legs=np.array(back_legs, dtype=i8),
        leg_days=np.array(leg_days, dtype=np.float64),
        leg_mask=np.array(leg_mask, dtype=i8),
        leg_cost=np.array(leg_cost, dtype=np.float64),
        res_kind=np.array(kinds, dtype=i8),
        res_cap=np.array(caps, dtype=i8),
        res_mask=np.array(masks, dtype=i8),
        res_site=np.array(res_site, dtype=i8),
        res_dist=np.array(dists, dtype=i8),
        res_par=np.array(pars, dtype=np.float64).reshape(len(kinds), 3),
        res_mean=np.array(means, dtype=np.float64),
        site_start=np.array(site_start, dtype=i8),
        site_res=np.array(site_res, dtype=i8),
        proc_dist=np.array([c for c, _ in proc], dtype=i8),
        proc_par=np.array([p for _, p in proc], dtype=np.float64),
        cryo=process.cryopreservation.enabled,
        oos=process.oos_probability,
        re_oos=process.remanufacture_oos_probability,
        max_attempts=process.max_attempts,
        hazard=process.dropout.hazard_per_day,
        scope=SCOPE_CODE[process.dropout.scope],
        bridging_share=process.dropout.bridging_share,
        bridging_hr=process.dropout.bridging_hazard_ratio,
        routing=ROUTING_CODE[process.routing.rule],
        overflow_queue=process.routing.overflow_queue,
    )
