"""The few statistics and number formats shared by the terminal, the reports and the comparison, defined once.

Pure functions, no I/O. Kept out of ``metrics`` so that replication workers, which only need ``metrics``, do not
import scipy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def t_half_width(sd: float, n: int, confidence: float = CONFIDENCE) -> float:
    """Half-width of Student's t interval of a mean: t(0.5 + confidence / 2, n - 1) x sd / sqrt(n)."""
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)


def mean_ci(values: np.ndarray[Any, np.dtype[np.float64]]) -> tuple[float, float, float, int]:
    """Mean and 95 % t interval over replications (NaN values left out): (mean, low, high, n)."""
    x = values[np.isfinite(values)]
    if x.size == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan, 1
    half = t_half_width(float(x.std(ddof=1)), int(x.size))
    return mean, mean - half, mean + half, int(x.size)


def format_value(value: float, unit: str) -> str:
    """A figure as tables show it: shares in %, currency to the unit, runs to 3 decimals, the rest to 1."""
    if not math.isfinite(value):
        return "–"
    if unit == "share":
        return f"{value:.1%}"
    if unit == "currency":
        return f"{value:,.0f}"
    if unit == "runs":
        return f"{value:.3f}"
    return f"{value:,.1f}"
