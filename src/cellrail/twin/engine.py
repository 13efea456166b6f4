"""The engine: one replication of a compiled scenario, run by the compiled kernel (``cellrail.twin.kernel``), and
turned into a :class:`RunOutput`.

The semantics are documented in docs/validation.md.
"""

from __future__ import annotations

import numpy as np

from cellrail.twin.compile import Compiled, compile_scenario
from cellrail.twin.kernel import _kernel
from cellrail.twin.output import RunOutput


def simulate(compiled: Compiled, seed: int) -> RunOutput:
    """One replication. Same compiled scenario and seed -> bit-identical output."""
    c = compiled
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer from 0 to 2**63 - 1, not {seed}")
    out = _kernel(
        np.int64(seed), c.horizon, np.int64(c.days), c.hosp_key, c.hosp_rate, c.hosp_amp, c.hosp_peak,
        c.sched_start, c.sched_time, c.hosp_aph, c.hosp_inf, c.cand_start, c.cand_site, c.cand_out_start,
        c.cand_back_start, c.out_legs, c.back_legs, c.leg_days, c.leg_mask, c.leg_cost, c.res_kind, c.res_cap,
        c.res_mask, c.res_site, c.res_dist, c.res_par, c.res_mean, c.site_start, c.site_res, c.proc_dist,
        c.proc_par, c.cryo, c.oos, c.re_oos, np.int64(c.max_attempts), c.hazard, np.int64(c.scope),
        c.bridging_share, c.bridging_hr, np.int64(c.routing), np.int64(c.overflow_queue),
    )  # fmt: skip
    hosp, number, arr, aph, site, m_start, release, infusion, ended, attempts, outcome, bridged, cost, bed, sb, sq = out
    return RunOutput(
        seed=seed,
        horizon_days=c.horizon,
        warmup_days=c.warmup,
        cooldown_days=c.cooldown,
        hospitals=c.hospitals,
        sites=c.sites,
        hospital=hosp.astype(np.int32),
        arrival=arr,
        apheresis=aph,
        site=site.astype(np.int32),
        manufacture_start=m_start,
        release=release,
        infusion=infusion,
        ended=ended,
        attempts=attempts.astype(np.int32),
        outcome=outcome.astype(np.int8),
        bridged=bridged,
        transport_cost=cost,
        bed_days=bed,
        resource_node=c.resource_node,
        resource_kind=c.res_kind.astype(np.int8),
        capacity=c.res_cap.astype(np.int32),
        busy=sb,
        queue=sq,
        number=number.astype(np.int32),
    )


WARM_UP_SCENARIO = """\
network: {id: warm-up, name: Warm-up}
nodes:
  - id: h-a
    name: Hospital A
    kind: hospital
    fin: A1001
    location: {city: Basel, country: CH, latitude: 47.56, longitude: 7.59}
    capabilities: {apheresis_chairs: 1, infusion_beds: 2}
  - id: hub
    name: Hub
    kind: regional_hub
    fin: A1002
    location: {city: Basel, country: CH, latitude: 47.56, longitude: 7.59}
    capabilities:
      qc_lab: true
      manufacturing: [{platform: P, units: 2, run_days: 7}]
lanes:
  - {from: h-a, to: hub, transport_hours: 3}
demand:
  horizon_days: 60
  warmup_days: 0
  cooldown_days: 0
  hospitals: {h-a: {patients_per_year: 50}}
"""


def warm_up() -> float:
    """Compile (or load from Numba's cache) the kernel on a tiny scenario; returns the seconds it took."""
    import time

    from cellrail.twin.scenario import scenario_from_text

    started = time.perf_counter()
    simulate(compile_scenario(scenario_from_text(WARM_UP_SCENARIO, "<warm-up>")), 0)
    return time.perf_counter() - started
