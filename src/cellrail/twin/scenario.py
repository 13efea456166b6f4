"""A twin scenario: the network file plus its ``demand:`` and ``process:`` sections, checked before any simulation.

The network file is the same one the rail uses; the twin reads two extra sections that the rail keeps verbatim.
Every value left out comes from ``data/defaults.yaml``, where each default stands next to its literature source.
All problems (the network's and the twin's) are reported at once, each naming file, line and field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from cellrail.kernel.errors import InvalidInput, Problem
from cellrail.kernel.yaml_source import YamlDocument, parse_yaml
from cellrail.rail.network import Network, Node, NodeKind, network_problems
from cellrail.twin.routing import Routes, plan_routes

DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "fixed": ("value",),
    "exponential": ("mean",),
    "lognormal": ("median", "sigma"),
    "gamma": ("mean", "cv"),
    "triangular": ("low", "mode", "high"),
    "uniform": ("low", "high"),
}
_PARAMETERS = ("value", "mean", "median", "sigma", "cv", "low", "mode", "high")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Distribution(_Strict):
    """A duration in days, written as one of six forms (parameters by name, nothing else allowed):

    ``{dist: fixed, value: 13}``, ``{dist: exponential, mean: 2}``, ``{dist: lognormal, median: 13, sigma: 0.2}``,
    ``{dist: gamma, mean: 7, cv: 0.3}``, ``{dist: triangular, low: 1, mode: 2, high: 4}``,
    ``{dist: uniform, low: 1, high: 2}``. The engine samples each by inverting its distribution function from one
    uniform number (gamma: by Marsaglia-Tsang from one counter stream), so common random numbers carry over when a
    what-if changes the distribution.
    """

    dist: str
    value: float | None = None
    mean: float | None = None
    median: float | None = None
    sigma: float | None = None
    cv: float | None = None
    low: float | None = None
    mode: float | None = None
    high: float | None = None

    @field_validator("dist")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution '{value}'; allowed: {', '.join(DISTRIBUTIONS)}")
        return value

    @model_validator(mode="after")
    def _parameters(self) -> Distribution:
        wanted = DISTRIBUTIONS[self.dist]
        given = {name for name in _PARAMETERS if getattr(self, name) is not None}
        missing = [name for name in wanted if name not in given]
        extra = sorted(given - set(wanted))
        form = ", ".join(f"{name}" for name in wanted)
        if missing or extra:
            raise ValueError(
                f"'{self.dist}' takes exactly: {form} (missing: {missing or '-'}, not allowed: {extra or '-'})"
            )
        for name in wanted:
            number = float(getattr(self, name))
            if not math.isfinite(number) or number < 0:
                raise ValueError(f"{name} must be a finite number >= 0 days, not {number}")
        if self.dist in ("exponential", "gamma") and (self.mean or 0.0) <= 0:
            raise ValueError("mean must be > 0")
        if self.dist == "lognormal" and (self.median or 0.0) <= 0:
            raise ValueError("median must be > 0")
        if self.dist == "triangular" and not (self.low or 0.0) <= (self.mode or 0.0) <= (self.high or 0.0):
            raise ValueError(f"triangular needs low <= mode <= high, got {self.low}, {self.mode}, {self.high}")
        if self.dist == "uniform" and (self.low or 0.0) > (self.high or 0.0):
            raise ValueError(f"uniform needs low <= high, got {self.low}, {self.high}")
        return self

    @property
    def expected(self) -> float:
        """The mean duration (days), for capacity checks and routing estimates."""
        match self.dist:
            case "fixed":
                return float(self.value or 0.0)
            case "exponential" | "gamma":
                return float(self.mean or 0.0)
            case "lognormal":
                return float((self.median or 0.0) * math.exp((self.sigma or 0.0) ** 2 / 2))
            case "triangular":
                return float(((self.low or 0.0) + (self.mode or 0.0) + (self.high or 0.0)) / 3)
            case _:
                return float(((self.low or 0.0) + (self.high or 0.0)) / 2)

    def parameters(self) -> tuple[float, float, float]:
        """The parameters in the order of :data:`DISTRIBUTIONS`, padded with zeros (the engine's layout)."""
        values = [float(getattr(self, name)) for name in DISTRIBUTIONS[self.dist]]
        values += [0.0] * (3 - len(values))
        return values[0], values[1], values[2]


class Seasonality(_Strict):
    """Arrival rate x (1 + amplitude * cos(2 pi (day - peak_day) / 365))."""

    amplitude: float = Field(0.0, ge=0, le=1)
    peak_day: float = Field(0.0, ge=0, lt=366)


class HospitalDemand(_Strict):
    patients_per_year: float = Field(0.0, ge=0, le=1_000_000, description="Poisson referrals (decisions to treat)")
    seasonality: Seasonality | None = None
    scheduled: tuple[float, ...] = Field((), description="Extra referrals at these days (for hand-made scenarios)")

    @field_validator("scheduled")
    @classmethod
    def _days(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not math.isfinite(v) or v < 0 for v in value):
            raise ValueError("scheduled referral days must be finite and >= 0")
        return tuple(sorted(value))


class Demand(_Strict):
    """When referrals are simulated and which of them are counted: those in [warm-up, horizon - cool-down].

    The cool-down keeps patients referred too close to the horizon (who could not finish their journey) out of
    the statistics: they are still simulated, but counting them would mix censoring into the shares.
    """

    horizon_days: float = Field(gt=0, le=1_000_000)
    warmup_days: float = Field(ge=0)
    cooldown_days: float = Field(ge=0, le=1_000_000)
    seasonality: Seasonality
    hospitals: dict[str, HospitalDemand] = Field(min_length=1, description="Hospital node id -> its demand")

    @field_validator("warmup_days")
    @classmethod
    def _warmup(cls, value: float, info: ValidationInfo) -> float:
        horizon = info.data.get("horizon_days")
        if horizon is not None and value >= horizon:
            raise ValueError(f"warmup_days ({value}) must be shorter than horizon_days ({horizon})")
        return value

    @model_validator(mode="after")
    def _counted_window(self) -> Demand:
        if self.warmup_days + self.cooldown_days >= self.horizon_days:
            raise ValueError(
                f"warmup_days + cooldown_days ({self.warmup_days:g} + {self.cooldown_days:g}) must be shorter than "
                f"horizon_days ({self.horizon_days:g}): no referral would be counted"
            )
        return self


class Manufacturing(_Strict):
    run_cv: float = Field(ge=0, le=3)
    run_time: dict[str, Distribution] = Field(description="Platform name -> run-length distribution")


class Cryopreservation(_Strict):
    enabled: bool
    hold: Distribution


class Infusion(_Strict):
    bed_stay: Distribution


class Dropout(_Strict):
    hazard_per_day: float = Field(ge=0, le=10)
    scope: Literal["journey", "manufacturing_queue"] = "journey"
    bridging_share: float = Field(ge=0, le=1)
    bridging_hazard_ratio: float = Field(ge=0, le=10)


class Routing(_Strict):
    rule: Literal["primary", "primary_overflow", "earliest_start"]
    overflow_queue: int = Field(ge=0, le=1_000_000)


class Transport(_Strict):
    cost_per_shipment: dict[str, float]

    @field_validator("cost_per_shipment")
    @classmethod
    def _known_chains(cls, value: dict[str, float]) -> dict[str, float]:
        known = ("fresh_2_8c", "cryo_vapour_ln2", "controlled_ambient")
        for chain, cost in value.items():
            if chain not in known:
                raise ValueError(f"unknown cold chain '{chain}'; allowed: {', '.join(known)}")
            if not math.isfinite(cost) or cost < 0:
                raise ValueError(f"cost of '{chain}' must be >= 0")
        return value


class Costs(_Strict):
    """The cost rates (the contract with the metrics): per run started, bed-day, bridged patient, node-year."""

    currency: str = Field(min_length=1)
    manufacturing_run: float = Field(ge=0)
    run_cost_by_platform: dict[str, float] = Field(alias="run_cost")
    bed_day: float = Field(ge=0)
    bridging: float = Field(ge=0)
    fixed_by_kind_or_node: dict[str, float] = Field(alias="node_fixed_per_year")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Process(_Strict):
    workup: Distribution
    manufacturing: Manufacturing
    qc_release: Distribution
    oos_probability: float = Field(ge=0, le=1)
    remanufacture_oos_probability: float = Field(ge=0, le=1)
    max_attempts: int = Field(ge=1, le=10)
    cryopreservation: Cryopreservation
    infusion: Infusion
    dropout: Dropout
    routing: Routing
    transport: Transport
    costs: Costs


class _TwinSections(BaseModel):
    """The two sections, validated at their place in the file (so errors carry their line)."""

    model_config = ConfigDict(extra="ignore")
    demand: Demand
    process: Process


@dataclass(frozen=True)
class ScenarioCosts:
    """What the metrics need to price a replication (see ``cellrail.twin.metrics``)."""

    currency: str
    manufacturing_run: float
    bed_day: float
    bridging: float
    node_fixed_per_year: dict[str, float]
    run_cost_by_site: dict[str, float]

    def run_cost(self, site_id: str) -> float:
        return self.run_cost_by_site.get(site_id, self.manufacturing_run)


@dataclass(frozen=True)
class Scenario:
    """A validated network with its demand and process: everything the compiler and the metrics need."""

    file: str
    network: Network
    demand: Demand
    process: Process
    routes: Routes

    @property
    def hospitals(self) -> tuple[str, ...]:
        return tuple(n.id for n in self.network.hospitals())

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(n.id for n in self.network.manufacturing_nodes())

    @property
    def horizon_days(self) -> float:
        return self.demand.horizon_days

    @property
    def warmup_days(self) -> float:
        return self.demand.warmup_days

    @property
    def cooldown_days(self) -> float:
        return self.demand.cooldown_days

    @property
    def costs(self) -> ScenarioCosts:
        c = self.process.costs
        fixed = {node.id: _fixed_cost(node, c.fixed_by_kind_or_node) for node in self.network.nodes}
        by_site = {}
        for node in self.network.manufacturing_nodes():
            platforms = node.capabilities.manufacturing
            rates = [c.run_cost_by_platform.get(p.platform, c.manufacturing_run) for p in platforms if p.units > 0]
            units = [p.units for p in platforms if p.units > 0]
            by_site[node.id] = sum(r * u for r, u in zip(rates, units, strict=True)) / max(sum(units), 1)
        return ScenarioCosts(c.currency, c.manufacturing_run, c.bed_day, c.bridging, fixed, by_site)

    def assumed_cost_parts(self) -> tuple[str, ...]:
        """The cost parts (metrics.COST_PARTS names) whose rates are still the defaults' assumptions (no published
        figure behind them), so that reports can say which part of a cost difference rests on assumptions."""
        defaults = _defaults()["process"]
        used = {
            "cost_transport": (self.process.transport.cost_per_shipment, defaults["transport"]["cost_per_shipment"]),
            "cost_fixed": (self.process.costs.fixed_by_kind_or_node, defaults["costs"]["node_fixed_per_year"]),
            "cost_bed_days": (self.process.costs.bed_day, defaults["costs"]["bed_day"]),
            "cost_bridging": (self.process.costs.bridging, defaults["costs"]["bridging"]),
        }
        return tuple(part for part, (value, default) in used.items() if value == default)

    def patients_per_day(self, hospital: str) -> float:
        spec = self.demand.hospitals.get(hospital)
        return 0.0 if spec is None else spec.patients_per_year / 365.0

    def run_time(self, platform: str, run_days: float) -> Distribution:
        """The run-length distribution of a platform: the override by name, else gamma(run_days, run_cv)."""
        override = self.process.manufacturing.run_time.get(platform)
        if override is not None:
            return override
        cv = self.process.manufacturing.run_cv
        if cv == 0:
            return Distribution(dist="fixed", value=run_days)
        return Distribution(dist="gamma", mean=run_days, cv=cv)

    def capacity_problems(self) -> list[str]:
        """Plain-language list of resources whose offered load is at or above capacity (they are still simulated).

        Offered load assumes every hospital sends to its primary site and counts the expected remanufactures;
        it ignores dropout, so it is an upper bound on what the resource will really see.
        """
        from cellrail.twin.capacity import offered_loads

        return [load.sentence() for load in offered_loads(self) if load.utilisation >= 1.0]


def _fixed_cost(node: Node, table: dict[str, float]) -> float:
    if node.id in table:
        return table[node.id]
    cost = table.get(node.kind.value, 0.0)
    if node.kind is NodeKind.HOSPITAL and node.manufactures:
        cost += table.get("point_of_care", 0.0)
    return cost


@cache
def _defaults() -> dict[str, Any]:
    text = resources.files("cellrail.twin").joinpath("data/defaults.yaml").read_text(encoding="utf-8")
    return dict(_strip_sources(yaml.safe_load(text)))


def _strip_sources(data: Any) -> Any:
    if isinstance(data, dict):
        if set(data) == {"value", "source"}:
            return data["value"]
        return {key: _strip_sources(value) for key, value in data.items()}
    return data


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge; a distribution (a mapping with ``dist``) replaces the default instead of merging into it."""
    merged = {key: (_merge({}, v) if isinstance(v, dict) else v) for key, v in base.items()}
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and "dist" not in value:
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def scenario_from_text(text: str, file: str = "<scenario>") -> Scenario:
    """Parse and check a network file with its twin sections; raises InvalidInput listing every problem."""
    document = parse_yaml(text, file)
    if not isinstance(document.data, dict):
        raise InvalidInput([Problem("", "a network file is a mapping (network:, nodes:, lanes:, ...)", file, 1)])
    problems: list[Problem] = []
    network: Network | None = None
    try:
        network = document.validate(Network)
        problems += network_problems(network, document)
    except InvalidInput as error:
        problems += error.problems
    for section in ("demand", "process"):
        if section in document.data and not isinstance(document.data[section], dict | None):
            problems.append(document.problem((section,), f"'{section}' must be a mapping"))
    if problems:
        raise InvalidInput(problems)
    defaults = _defaults()
    demand = document.data.get("demand") or {}
    if "hospitals" not in demand:
        problems.append(document.problem(("demand",), "demand.hospitals is missing: the referrals per hospital"))
        raise InvalidInput(problems)
    merged = {
        "demand": _merge(defaults["demand"], demand),
        "process": _merge(defaults["process"], document.data.get("process") or {}),
    }
    sections = YamlDocument(data=merged, file=file, lines=document.lines).validate(_TwinSections)
    assert network is not None
    problems += _twin_problems(network, sections, document)
    if problems:
        raise InvalidInput(problems)
    routes = plan_routes(network, tuple(sections.demand.hospitals))
    problems += [document.problem(("demand", "hospitals", h), message) for h, message in routes.unserved.items()]
    if problems:
        raise InvalidInput(problems)
    return Scenario(file, network, sections.demand, sections.process, routes)


def load_scenario(path: str | Path) -> Scenario:
    """Read a network file with its ``demand:`` and ``process:`` sections (see docs/validation.md).

    The one place this module touches a file: a thin reader kept here for the CLI, the tests and scripts; all
    checking is in the pure :func:`scenario_from_text`. (The defaults are package data, read via importlib.)"""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput([Problem("", f"cannot read the file: {error}", str(path))]) from None
    return scenario_from_text(text, str(path))


def _twin_problems(network: Network, sections: _TwinSections, document: YamlDocument) -> list[Problem]:
    problems: list[Problem] = []
    nodes = {n.id: n for n in network.nodes}
    for hospital in sections.demand.hospitals:
        node = nodes.get(hospital)
        if node is None:
            problems.append(document.problem(("demand", "hospitals", hospital), f"unknown node '{hospital}'"))
        elif node.kind is not NodeKind.HOSPITAL:
            problems.append(
                document.problem(
                    ("demand", "hospitals", hospital), f"'{hospital}' is a {node.kind.value}; only hospitals refer"
                )
            )
    platforms = {p.platform for n in network.nodes for p in n.capabilities.manufacturing}
    for name in sections.process.manufacturing.run_time:
        if name not in platforms:
            problems.append(
                document.problem(
                    ("process", "manufacturing", "run_time", name),
                    f"no platform named '{name}' in the network (known: {', '.join(sorted(platforms))})",
                )
            )
    for name in sections.process.costs.run_cost_by_platform:
        if name not in platforms:
            problems.append(
                document.problem(("process", "costs", "run_cost", name), f"no platform named '{name}' in the network")
            )
    kinds = {k.value for k in NodeKind} | {"point_of_care"}
    for key, cost in sections.process.costs.fixed_by_kind_or_node.items():
        if key not in kinds and key not in nodes:
            problems.append(
                document.problem(
                    ("process", "costs", "node_fixed_per_year", key),
                    f"'{key}' is neither a node id nor a node kind ({', '.join(sorted(kinds))})",
                )
            )
        if not math.isfinite(cost) or cost < 0:
            problems.append(
                document.problem(("process", "costs", "node_fixed_per_year", key), "a fixed cost must be >= 0")
            )
    for index, node in enumerate(network.nodes):
        if not node.operating_days and (node.manufactures or node.kind is NodeKind.HOSPITAL):
            problems.append(
                document.problem(("nodes", index, "operating_days"), f"node '{node.id}' never opens: no operating day")
            )
    return problems
