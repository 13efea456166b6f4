"""What one replication means to a planner: times, shares of patients, use of capacity and cost per treated patient.

Pure functions of a :class:`RunOutput` (and the scenario's cost rates); no I/O. Conventions, stated once here and
repeated in docs/twin.md:

- Only patients :meth:`RunOutput.counted` (referred in [warm-up, horizon - cool-down]) enter patient statistics.
  Patients referred during the warm-up load the network but are not counted, so the start-up of an empty network
  does not flatter the figures; patients referred during the cool-down are simulated but not counted, so that every
  counted patient has had time to finish (otherwise censoring would sit in the denominators of the shares and of
  the cost per treated patient, and bias against the slower network).
- Shares (treated, lost while waiting, manufacturing failure, in progress) are of counted patients and sum to 1.
- Times (vein-to-vein: end of apheresis to infusion; decision-to-infusion: referral accepted to infusion) are of
  counted patients who were infused. The in-progress share (counted patients still on their way at the horizon)
  is a diagnostic that should be ~0; if it is not, the cool-down is shorter than the journeys and must be raised.
- Percentiles use linear interpolation between order statistics (numpy's default); NaN when no patient qualifies.
- Cost per treated patient: everything spent on counted patients (all their manufacturing runs, shipments,
  bed-days and bridging, whether or not they were treated) plus the nodes' fixed costs over the counted referral
  window (horizon minus warm-up minus cool-down), divided by the number of counted patients treated. Each node's
  fixed cost is multiplied by the share of its manufacturing capacity the network used (time-average busy units /
  units after the warm-up); a node without manufacturing units is charged in full. Each run is priced at the site
  of the patient's last run (remanufacture is almost always at the same site).
- Utilisation of a resource: servers in use / servers, time-averaged over the days after the warm-up (the kernel
  integrates busy servers and waiting patients over time, so short services such as a half-day collection count
  in full). Queue: time-average number of patients waiting for the resource.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from cellrail.twin.output import Outcome, ResourceKind, RunOutput

if TYPE_CHECKING:
    from cellrail.twin.scenario import ScenarioCosts

FloatArray = NDArray[np.float64]

# Network-wide figures of one replication, in the order reports show them: (name, label, unit).
METRICS: tuple[tuple[str, str, str], ...] = (
    ("patients", "patients counted", "patients"),
    ("treated_share", "share treated", "share"),
    ("lost_share", "share lost while waiting", "share"),
    ("failure_share", "share manufacturing failure", "share"),
    ("in_progress_share", "share still in progress (censored)", "share"),
    ("bridged_share", "share bridged", "share"),
    ("v2v_median", "vein-to-vein median", "days"),
    ("v2v_p90", "vein-to-vein p90", "days"),
    ("v2v_mean", "vein-to-vein mean", "days"),
    ("d2i_median", "decision-to-infusion median", "days"),
    ("d2i_p90", "decision-to-infusion p90", "days"),
    ("attempts_mean", "manufacturing runs per patient", "runs"),
    ("utilisation_apheresis", "apheresis chair utilisation", "share"),
    ("utilisation_manufacturing", "manufacturing utilisation", "share"),
    ("utilisation_infusion", "infusion bed utilisation", "share"),
    ("queue_manufacturing", "patients waiting for manufacturing (daily mean)", "patients"),
    ("cost_per_treated", "cost per treated patient", "currency"),
    ("cost_manufacturing", "  of which manufacturing runs", "currency"),
    ("cost_transport", "  of which transport", "currency"),
    ("cost_fixed", "  of which node fixed costs", "currency"),
    ("cost_bed_days", "  of which bed-days", "currency"),
    ("cost_bridging", "  of which bridging", "currency"),
)
METRIC_NAMES: tuple[str, ...] = tuple(name for name, _, _ in METRICS)
LABELS: dict[str, str] = {name: label for name, label, _ in METRICS}
UNITS: dict[str, str] = {name: unit for name, _, unit in METRICS}

# Per-hospital figures of one replication (one value per hospital each).
HOSPITAL_METRICS: tuple[str, ...] = (
    "patients",
    "treated_share",
    "lost_share",
    "failure_share",
    "in_progress_share",
    "v2v_median",
    "v2v_p90",
    "d2i_median",
)
# plain ints: comparing arrays with IntEnum members goes through Enum attribute lookups, per call
_TREATED, _LOST, _FAILED = int(Outcome.TREATED), int(Outcome.LOST_WAITING), int(Outcome.MANUFACTURING_FAILURE)
_IN_PROGRESS = int(Outcome.IN_PROGRESS)
COST_PARTS: tuple[str, ...] = ("cost_manufacturing", "cost_transport", "cost_fixed", "cost_bed_days", "cost_bridging")
_KIND_METRIC = {
    ResourceKind.APHERESIS: "utilisation_apheresis",
    ResourceKind.MANUFACTURING: "utilisation_manufacturing",
    ResourceKind.INFUSION: "utilisation_infusion",
}


@dataclass(frozen=True)
class CostRates:
    """The prices metrics need, in one currency: per manufacturing run at each site (by ``RunOutput.sites``
    index), per bed-day, per bridged patient, fixed costs per year charged in full (``fixed_per_year``), and fixed
    costs per year of nodes (``fixed_by_node``), charged by the share of their manufacturing capacity used."""

    currency: str
    run_cost: tuple[float, ...]
    bed_day: float
    bridging: float
    fixed_per_year: float = 0.0
    fixed_by_node: tuple[tuple[str, float], ...] = ()


def cost_rates(costs: ScenarioCosts, sites: Sequence[str]) -> CostRates:
    """The scenario's cost rates as the metrics need them (computed once per scenario, not per replication)."""
    fixed: Mapping[str, float] = costs.node_fixed_per_year
    return CostRates(
        currency=costs.currency,
        run_cost=tuple(float(costs.run_cost(site)) for site in sites),
        bed_day=float(costs.bed_day),
        bridging=float(costs.bridging),
        fixed_by_node=tuple((node, float(cost)) for node, cost in fixed.items() if cost),
    )


@dataclass(frozen=True)
class Summary:
    """One replication reduced to what reports and comparisons need (a few kilobytes, cheap to ship back)."""

    seed: int
    metrics: dict[str, float]  # METRIC_NAMES -> value (NaN when undefined, e.g. no patient treated)
    hospitals: tuple[str, ...]
    by_hospital: dict[str, FloatArray]  # HOSPITAL_METRICS -> one value per hospital
    resource_node: tuple[str, ...]
    resource_kind: tuple[int, ...]
    capacity: tuple[int, ...]
    utilisation: FloatArray  # per resource, after the warm-up
    mean_queue: FloatArray  # per resource, after the warm-up
    max_queue: FloatArray  # per resource, after the warm-up


def percentile(values: FloatArray, q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation (numpy's default method); NaN for no values."""
    return _percentiles(values, (q,))[0]


def _percentiles(values: FloatArray, qs: tuple[float, ...]) -> list[float]:
    """Several percentiles from one sort (np.percentile's overhead dominated the summaries)."""
    if not values.size:
        return [float("nan")] * len(qs)
    ordered = np.sort(values)
    last = ordered.size - 1
    found = []
    for q in qs:
        rank = q / 100.0 * last
        low = math.floor(rank)
        high = min(low + 1, last)
        a, b, t = float(ordered[low]), float(ordered[high]), rank - low
        found.append(a + (b - a) * t if t < 0.5 else b - (b - a) * (1.0 - t))  # numpy's _lerp, same rounding
    return found


def _share(mask: NDArray[np.bool_], total: int) -> float:
    return float(mask.sum()) / total if total else float("nan")


def _patient_figures(output: RunOutput, chosen: NDArray[np.bool_]) -> dict[str, float]:
    """Patient statistics over the patients selected by ``chosen`` (already restricted to counted ones)."""
    n = int(chosen.sum())
    outcome = output.outcome[chosen]
    treated = outcome == _TREATED
    v2v = (output.infusion[chosen] - output.apheresis[chosen])[treated]
    d2i = (output.infusion[chosen] - output.arrival[chosen])[treated]
    v2v_median, v2v_p90 = _percentiles(v2v, (50, 90))
    d2i_median, d2i_p90 = _percentiles(d2i, (50, 90))
    return {
        "patients": float(n),
        "treated_share": _share(treated, n),
        "lost_share": _share(outcome == _LOST, n),
        "failure_share": _share(outcome == _FAILED, n),
        "in_progress_share": _share(outcome == _IN_PROGRESS, n),
        "bridged_share": _share(output.bridged[chosen], n),
        "v2v_median": v2v_median,
        "v2v_p90": v2v_p90,
        "v2v_mean": float(v2v.mean()) if v2v.size else float("nan"),
        "d2i_median": d2i_median,
        "d2i_p90": d2i_p90,
        "attempts_mean": float(output.attempts[chosen].mean()) if n else float("nan"),
    }


def counted_days(output: RunOutput) -> slice:
    """Columns of the daily series after the warm-up: column d is the time average over [d, d + 1)."""
    return slice(int(np.ceil(output.warmup_days)), None)


def fixed_cost_share(output: RunOutput, node: str, utilisation: FloatArray) -> float:
    """The share of a node's fixed cost this network carries: the share of its manufacturing capacity it used
    (units busy / units available, time average after the warm-up). A node without manufacturing units (a plain
    hospital) is charged in full. Why: a central factory serves many networks; charging all of it to one that
    uses 16 % of it would make the cost comparison a statement about the factory's size, not the network."""
    rows = [
        i
        for i, (name, kind) in enumerate(zip(output.resource_node, output.resource_kind, strict=True))
        if name == node and kind == ResourceKind.MANUFACTURING and output.capacity[i] > 0
    ]
    if not rows:
        return 1.0
    units = output.capacity[rows].astype(np.float64)
    used = np.nan_to_num(utilisation[rows]) * units
    return float(used.sum() / units.sum())


def _costs(
    output: RunOutput, counted: NDArray[np.bool_], rates: CostRates, utilisation: FloatArray
) -> dict[str, float]:
    run_cost = np.asarray(rates.run_cost, dtype=np.float64)
    site = output.site[counted]
    runs = output.attempts[counted].astype(np.float64)
    priced = site >= 0
    manufacturing = float((runs[priced] * run_cost[site[priced]]).sum()) if run_cost.size else 0.0
    window_years = output.counted_window_days / 365.0
    parts = {
        "cost_manufacturing": manufacturing,
        "cost_transport": float(output.transport_cost[counted].sum()),
        "cost_fixed": window_years
        * (
            rates.fixed_per_year
            + sum(cost * fixed_cost_share(output, node, utilisation) for node, cost in rates.fixed_by_node)
        ),
        "cost_bed_days": float(output.bed_days[counted].sum()) * rates.bed_day,
        "cost_bridging": float(output.bridged[counted].sum()) * rates.bridging,
    }
    treated = int((output.outcome[counted] == Outcome.TREATED).sum())
    per_treated = {k: (v / treated if treated else float("nan")) for k, v in parts.items()}
    per_treated["cost_per_treated"] = sum(parts.values()) / treated if treated else float("nan")
    return per_treated


def resource_figures(output: RunOutput) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per resource after the warm-up: mean utilisation (NaN for zero capacity), mean and max queue."""
    days = counted_days(output)
    busy, queue = output.busy[:, days], output.queue[:, days]
    capacity = output.capacity.astype(np.float64)
    if busy.shape[1] == 0:
        nan = np.full(capacity.shape, np.nan)
        return nan, nan.copy(), nan.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        utilisation = np.where(capacity > 0, busy.mean(axis=1) / capacity, np.nan)
    return utilisation, queue.mean(axis=1), queue.max(axis=1)


def summarize(output: RunOutput, rates: CostRates) -> Summary:
    """Reduce one replication to its figures (see the module docstring for every convention)."""
    counted = output.counted()
    metrics = _patient_figures(output, counted)
    utilisation, mean_queue, max_queue = resource_figures(output)
    metrics.update(_costs(output, counted, rates, utilisation))
    days = counted_days(output)
    busy = output.busy[:, days]
    for kind, name in _KIND_METRIC.items():
        rows = output.resource_kind == kind
        servers = float(output.capacity[rows].sum()) * busy.shape[1]
        metrics[name] = float(busy[rows].sum()) / servers if servers else float("nan")
    making = output.resource_kind == ResourceKind.MANUFACTURING
    metrics["queue_manufacturing"] = (
        float(output.queue[making][:, days].sum(axis=0).mean()) if busy.shape[1] else float("nan")
    )
    per_hospital: dict[str, list[float]] = {name: [] for name in HOSPITAL_METRICS}
    for index in range(len(output.hospitals)):
        figures = _patient_figures(output, counted & (output.hospital == index))
        for name in HOSPITAL_METRICS:
            per_hospital[name].append(figures[name])
    return Summary(
        seed=output.seed,
        metrics={name: metrics[name] for name in METRIC_NAMES},
        hospitals=output.hospitals,
        by_hospital={name: np.asarray(values, dtype=np.float64) for name, values in per_hospital.items()},
        resource_node=output.resource_node,
        resource_kind=tuple(int(k) for k in output.resource_kind),
        capacity=tuple(int(c) for c in output.capacity),
        utilisation=utilisation,
        mean_queue=mean_queue,
        max_queue=max_queue,
    )


def vein_to_vein(output: RunOutput) -> FloatArray:
    """Vein-to-vein days of every counted, treated patient (for distribution charts)."""
    chosen = output.counted() & (output.outcome == Outcome.TREATED)
    return np.asarray(output.infusion[chosen] - output.apheresis[chosen], dtype=np.float64)
