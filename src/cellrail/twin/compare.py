"""Is scenario B better than scenario A, or is the difference noise? Paired comparison with common random numbers.

Both scenarios run replication k with the same seed, and the engine draws each hospital's patients (arrivals,
their disease course, their dropout) from streams keyed by hospital and seed, so replication k of A and of B see
the same patients. The difference B − A of replication k then reflects the network, not the luck of the draw,
and its spread across replications is much smaller than the spread of either scenario: that is the variance
reduction of common random numbers (CRN). The confidence interval is Student's t on the n paired differences:

    mean(d) ± t(0.975, n − 1) · sd(d) / √n,   d_k = B_k − A_k

For contrast, each row also gives the half-width an unpaired (Welch) interval would have had from the same runs;
the ratio of the two is how much CRN saved (a ratio of 3 means 9 times fewer replications for the same precision).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from cellrail.twin.metrics import LABELS, METRIC_NAMES, UNITS
from cellrail.twin.replicate import Engine, Progress, Replications, run_replications
from cellrail.twin.scenario import Scenario
from cellrail.twin.statistics import CONFIDENCE, t_half_width

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Difference:
    """B − A for one metric over the paired replications where both are defined."""

    metric: str
    n: int
    mean_a: float
    mean_b: float
    difference: float
    low: float  # 95 % paired confidence interval of the mean difference
    high: float
    unpaired_half_width: float  # Welch half-width from the same runs, for contrast

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    @property
    def significant(self) -> bool:
        """The interval excludes zero (a difference of exactly zero in every pair is not significant)."""
        return bool(self.n >= 2 and (self.low > 0 or self.high < 0))

    @property
    def variance_reduction(self) -> float:
        """How many times narrower the paired interval is than the unpaired one (NaN when undefined)."""
        if self.half_width > 0 and math.isfinite(self.unpaired_half_width):
            return self.unpaired_half_width / self.half_width
        return float("nan")

    def verdict(self, currency: str = "") -> str:
        """One sentence a planner can read aloud (``currency`` names the unit of cost figures)."""
        label, unit = LABELS.get(self.metric, self.metric).strip(), UNITS.get(self.metric, "")
        if unit == "currency" and currency:
            unit = f"currency {currency}"
        if self.n < 2:
            return f"{label}: not enough replications with a value to compare"
        if self.low == self.high == self.difference == 0:
            return f"{label}: identical in every replication (B − A = 0)"
        change = f"B − A = {_signed(self.difference, unit)} (95 % CI {_signed(self.low, unit)} to " + (
            f"{_signed(self.high, unit)})"
        )
        if not self.significant:
            return f"{label}: no significant difference, {change}"
        return f"{label}: B is {'higher' if self.difference > 0 else 'lower'}, {change}, significant"


def _signed(value: float, unit: str) -> str:
    """A difference with its sign always shown (+, − or none for 0), so B − A reads the right way round."""
    text = _fmt(abs(value), unit)
    rounded = _fmt(0.0, unit)
    return text if text == rounded else ("+" if value > 0 else "−") + text


def _fmt(value: float, unit: str) -> str:
    """The verdict's words for a figure ("2.6 points", "9.0 days", "64 USD"); tables use statistics.format_value."""
    if unit == "share":
        return f"{value * 100:.1f} points"
    if unit == "days":
        return f"{value:.1f} days"
    if unit.startswith("currency"):
        return f"{value:,.0f}{unit.removeprefix('currency')}"
    return f"{value:.2f}"


def paired_difference(metric: str, a: FloatArray, b: FloatArray, confidence: float = CONFIDENCE) -> Difference:
    """The paired t interval of mean(B − A), over the replications where both values are finite."""
    if a.shape != b.shape:
        raise ValueError("paired samples must have the same length")
    both = np.isfinite(a) & np.isfinite(b)
    a, b = a[both], b[both]
    n = int(a.size)
    nan = float("nan")
    if n == 0:
        return Difference(metric, 0, nan, nan, nan, nan, nan, nan)
    d = b - a
    mean = float(d.mean())
    if n < 2:
        return Difference(metric, n, float(a.mean()), float(b.mean()), mean, nan, nan, nan)
    half = t_half_width(float(d.std(ddof=1)), n, confidence)
    return Difference(
        metric, n, float(a.mean()), float(b.mean()), mean, mean - half, mean + half, _welch_half_width(a, b, confidence)
    )


def _welch_half_width(a: FloatArray, b: FloatArray, confidence: float) -> float:
    va, vb = float(a.var(ddof=1)) / a.size, float(b.var(ddof=1)) / b.size
    if va + vb == 0:
        return 0.0
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return float(stats.t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(va + vb)


@dataclass(frozen=True)
class Comparison:
    """Two scenarios run on the same seeds, and B − A for every network-wide metric."""

    a: Replications
    b: Replications
    differences: tuple[Difference, ...]

    def difference(self, metric: str) -> Difference:
        return next(d for d in self.differences if d.metric == metric)


def differences(a: Replications, b: Replications, metrics: Sequence[str] = METRIC_NAMES) -> tuple[Difference, ...]:
    """Paired differences of two runs made with the same seeds."""
    if a.seeds != b.seeds:
        raise ValueError("the two runs must use the same replication seeds (common random numbers)")
    return tuple(paired_difference(m, a.values(m), b.values(m)) for m in metrics)


def compare(
    scenario_a: Scenario,
    scenario_b: Scenario,
    replications: int,
    seed: int,
    engine: Engine = "local",
    workers: int | None = None,
    progress: Progress | None = None,
) -> Comparison:
    """Run A and B with common random numbers and compare them metric by metric (B − A)."""

    def half(offset: int) -> Progress | None:
        if progress is None:
            return None
        return lambda done, total: progress(offset + done, 2 * total)

    run_a = run_replications(scenario_a, replications, seed, engine, workers, half(0))
    run_b = run_replications(scenario_b, replications, seed, engine, workers, half(replications))
    return Comparison(run_a, run_b, differences(run_a, run_b))
