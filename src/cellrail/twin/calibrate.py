"""Fit the twin's process durations to what the rail actually recorded, so a scenario starts from observed reality.

Each order's journey (rebuilt from the custody ledger alone, see rail/journey.py) gives the time between
milestones: collection to arrival at the manufacturer, each manufacturing run, each QC decision, release to
receipt at the hospital, receipt to infusion. For each stage we fit a lognormal and a gamma distribution by
maximum likelihood and keep the one with the lower AIC (both have two parameters, so this is the higher
likelihood); a stage whose durations are all equal becomes ``fixed``. The fits replace the matching entries of the
scenario's ``process`` section; everything else in the file is kept as written (comments included), except the
comments inside the ``process`` section, which is rewritten.

Pure: journeys in, fits and YAML text out. Reading the ledger is in twin/services.py.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray
from scipy import stats

from cellrail.kernel.errors import InvalidInput, Problem
from cellrail.rail.journey import Journey
from cellrail.rail.orders import TERMINAL
from cellrail.rail.orders import OrderState as S

FloatArray = NDArray[np.float64]
_DAY = 86400.0
_RELATIVE_SPREAD_FIXED = 1e-9  # durations that differ by less than this (relative) are one fixed value


@dataclass(frozen=True)
class Stage:
    """A stage the ledger can time: from one milestone to the first of ``ends`` that follows it."""

    key: str
    start: S
    ends: tuple[S, ...]
    meaning: str
    process: tuple[str, ...] | None  # where the fit goes in the ``process`` section; None: reported only
    by_node: bool = False  # one fit per node where the stage starts (manufacturing runs: per platform)


STAGES: tuple[Stage, ...] = (
    # Reported only: enrolment -> collection is work-up + wait for a chair + the collection itself, and the engine
    # adds its own chair queue and session after ``process.workup``. The ledger does not record when the patient
    # was ready for apheresis (the booking's ``earliest`` is not kept), so the work-up cannot be separated from the
    # chair wait; writing this fit into process.workup would count the wait and the session twice.
    Stage(
        "decision_to_collection",
        S.ENROLLED,
        (S.COLLECTED,),
        "decision to treat to end of collection: work-up + chair wait + session (the engine adds the last two)",
        None,
    ),
    Stage(
        "transport_to_maker",
        S.SHIPPED_TO_MANUFACTURING,
        (S.RECEIVED_AT_MANUFACTURING,),
        "fresh apheresis in transit to the maker (the network's lanes set it)",
        None,
    ),
    Stage(
        "manufacturing",
        S.MANUFACTURING,
        (S.QC_PENDING,),
        "one manufacturing run, start to end",
        ("manufacturing", "run_time"),
        by_node=True,
    ),
    Stage(
        "qc_release",
        S.QC_PENDING,
        (S.RELEASED, S.REJECTED),
        "QC testing, end of run to release or rejection",
        ("qc_release",),
    ),
    Stage(
        "release_to_shipment",
        S.RELEASED,
        (S.SHIPPED_TO_SITE,),
        "hold between release and shipment",
        ("cryopreservation", "hold"),
    ),
    Stage(
        "transport_to_hospital",
        S.SHIPPED_TO_SITE,
        (S.RECEIVED_AT_SITE,),
        "product in transit to the hospital (the network's lanes set it)",
        None,
    ),
    Stage("receipt_to_infusion", S.RECEIVED_AT_SITE, (S.INFUSED,), "receipt of the product to infusion", None),
    Stage("vein_to_vein", S.COLLECTED, (S.INFUSED,), "end of collection to infusion (the outcome, for checking)", None),
)


def stage_durations(
    journeys: Iterable[Journey], stages: Sequence[Stage] = STAGES, platform_of_order: Mapping[str, str] | None = None
) -> dict[str, list[float]]:
    """Days spent in each stage, every occurrence (a remanufactured order has two runs and two QC decisions).

    Keys are the stage keys; stages timed per platform (manufacturing runs) are keyed ``key#platform`` when the
    order's booking named the platform (``platform_of_order``), else ``key@node`` (the maker).
    """
    booked = platform_of_order or {}
    found: dict[str, list[float]] = {stage.key: [] for stage in stages if not stage.by_node}
    for journey in journeys:
        milestones = journey.milestones
        for stage in stages:
            for i, start in enumerate(milestones):
                if start.state is not stage.start:
                    continue
                end = next((m for m in milestones[i + 1 :] if m.state in stage.ends or m.state is stage.start), None)
                if end is None or end.state not in stage.ends:
                    continue
                key = stage.key
                if stage.by_node:
                    platform = booked.get(journey.order)
                    key = f"{stage.key}#{platform}" if platform else f"{stage.key}@{start.node}"
                found.setdefault(key, []).append((end.at - start.at).total_seconds() / _DAY)
    return found


@dataclass(frozen=True)
class Fit:
    """The distribution kept for one stage, and what it was chosen from."""

    stage: str  # e.g. "qc_release", "manufacturing: CliniMACS Prodigy", "transport_to_maker"
    n: int
    observed_median: float
    form: dict[str, Any]  # the scenario's YAML form, e.g. {dist: lognormal, median: 12.1, sigma: 0.2}
    fitted_median: float
    aic: dict[str, float]  # candidate -> AIC (empty for fixed)
    target: tuple[str, ...] | None = None  # path in the ``process`` section; None: reported only
    dropped: int = 0  # non-positive durations left out of the fit
    withheld: str = ""  # why a fit with a target was not written (e.g. too few observations)

    @property
    def dist(self) -> str:
        return str(self.form["dist"])


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def fit_durations(stage: str, values: Sequence[float], target: tuple[str, ...] | None = None) -> Fit | None:
    """Lognormal or gamma by maximum likelihood and AIC; fixed if all equal; None without data."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return None
    median = float(np.median(x))
    positive = x[x > 0]
    dropped = int(x.size - positive.size)
    if positive.size < 2 or float(np.ptp(positive)) <= _RELATIVE_SPREAD_FIXED * float(np.median(positive)):
        value = float(np.median(positive)) if positive.size else median
        return Fit(stage, int(x.size), median, {"dist": "fixed", "value": _round(value)}, value, {}, target, dropped)
    logs = np.log(positive)
    mu, sigma = float(logs.mean()), float(logs.std(ddof=0))
    lognormal_ll = float(stats.lognorm.logpdf(positive, s=sigma, scale=math.exp(mu)).sum())
    shape, _, scale = stats.gamma.fit(positive, floc=0)
    gamma_ll = float(stats.gamma.logpdf(positive, shape, loc=0, scale=scale).sum())
    aic = {"lognormal": 4 - 2 * lognormal_ll, "gamma": 4 - 2 * gamma_ll}
    if aic["lognormal"] <= aic["gamma"]:
        form: dict[str, Any] = {"dist": "lognormal", "median": _round(math.exp(mu)), "sigma": _round(sigma)}
        fitted = math.exp(mu)
    else:
        form = {"dist": "gamma", "mean": _round(shape * scale), "cv": _round(1 / math.sqrt(shape))}
        fitted = float(stats.gamma.median(shape, scale=scale))
    return Fit(stage, int(x.size), median, form, fitted, aic, target, dropped)


def fit_stages(
    durations: Mapping[str, Sequence[float]],
    platform_of: Mapping[str, str | None],
    stages: Sequence[Stage] = STAGES,
) -> list[Fit]:
    """One fit per stage; manufacturing runs pooled per platform: the one the order's booking named, else the maker
    node's only platform (``platform_of``: node -> platform, None when it runs several: then reported only)."""
    fits: list[Fit] = []
    for stage in stages:
        if not stage.by_node:
            fit = fit_durations(stage.key, durations.get(stage.key, ()), stage.process)
            if fit is not None:
                fits.append(fit)
            continue
        pooled: dict[str, list[float]] = {}
        for key, values in sorted(durations.items()):
            if key.startswith(f"{stage.key}#"):
                platform: str | None = key.split("#", 1)[1]
                name = f"{stage.key}: {platform}"
            elif key.startswith(f"{stage.key}@"):
                node = key.split("@", 1)[1]
                platform = platform_of.get(node)
                name = f"{stage.key}: {platform}" if platform else f"{stage.key} at {node} (several platforms)"
            else:
                continue
            pooled.setdefault(name, []).extend(values)
        for name, values in pooled.items():
            platform = name.split(": ", 1)[1] if ": " in name else None
            where = (*stage.process, platform) if stage.process and platform else None
            fit = fit_durations(name, values, where)
            if fit is not None:
                fits.append(fit)
    return fits


def withhold_small(fits: Sequence[Fit], min_n: int) -> list[Fit]:
    """Fits from fewer than ``min_n`` durations are reported but not written: a handful of orders would replace a
    sourced default with noise."""
    return [
        replace(fit, target=None, withheld=f"n < {min_n}") if fit.target is not None and fit.n < min_n else fit
        for fit in fits
    ]


def open_stages(journeys: Iterable[Journey], stages: Sequence[Stage] = STAGES) -> dict[str, int]:
    """Stages entered but not yet left by orders still in progress (right-censored): they are not in the fits,
    which therefore lean towards short durations when many are open."""
    found: dict[str, int] = {}
    for journey in journeys:
        milestones = journey.milestones
        if not milestones or milestones[-1].state in TERMINAL:
            continue
        for stage in stages:
            for i, start in enumerate(milestones):
                if start.state is stage.start and not any(m.state in stage.ends for m in milestones[i + 1 :]):
                    found[stage.key] = found.get(stage.key, 0) + 1
    return found


@dataclass(frozen=True)
class CalibrationNote:
    database: str  # shown without password
    orders: int
    on: date


def calibrated_yaml(text: str, file: str, fits: Sequence[Fit], note: CalibrationNote) -> str:
    """The scenario text with its ``process`` section updated by ``fits`` and a ``calibrated_from`` note.

    The other top-level sections are kept byte for byte (comments included); the ``process`` section is
    re-emitted from its parsed content, so comments inside it are lost.
    """
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise InvalidInput([Problem("", "a scenario file must be a mapping of sections", file, 1)])
    process = copy.deepcopy(data.get("process") or {})
    if not isinstance(process, dict):
        raise InvalidInput([Problem("process", "must be a mapping of parameters", file, None)])
    for fit in fits:
        if fit.target is not None:
            _put(process, fit.target, fit.form, file)
    block = yaml.dump({"process": process}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    written = [f"{fit.stage} (n={fit.n}, {fit.dist})" for fit in fits if fit.target is not None]
    header = (
        f"# calibrated_from: {note.database}, {note.orders} orders, on {note.on.isoformat()}\n"
        f"#   fitted by cellrail twin calibrate: {'; '.join(written) or 'nothing'}\n"
    )
    return _replace_section(text, "process", header + block)


class _Dumper(yaml.SafeDumper):
    """Block style for sections, flow style for a distribution (``{dist: gamma, mean: 7, cv: 0.3}``)."""


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style="dist" in data)


_Dumper.add_representer(dict, _represent_dict)


def _put(section: dict[str, Any], path: tuple[str, ...], value: Any, file: str) -> None:
    node = section
    for index, key in enumerate(path[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            where = "process." + ".".join(path[: index + 1])
            raise InvalidInput([Problem(where, "must be a mapping to take a calibrated value", file, None)])
        node = child
    node[path[-1]] = value


def _replace_section(text: str, key: str, block: str) -> str:
    """Put ``block`` in place of the top-level ``key:`` section (or at the end if there is none)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(rf"{re.escape(key)}\s*:", line)), None)
    if start is None:
        joiner = "" if text.endswith("\n") or not text else "\n"
        return f"{text}{joiner}\n{block}"
    end = start + 1
    while end < len(lines) and not re.match(r"[^\s#]", lines[end]):
        end += 1
    # comment lines just above the next section belong to it: leave them after the new block
    while end - 1 > start and lines[end - 1].startswith("#"):
        end -= 1
    # an earlier calibration note belongs to the section it described
    while start > 0 and lines[start - 1].startswith(("# calibrated_from:", "#   fitted by cellrail")):
        start -= 1
    return "".join(lines[:start]) + block + "".join(lines[end:])
