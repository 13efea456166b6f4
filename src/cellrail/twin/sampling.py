"""Counter-based random numbers and duration sampling for the compiled kernel.

Every draw is a pure function of (seed, hospital key, patient number, draw slot): splitmix64 hashes the counter,
so there is no generator state to share and a patient's draws do not depend on any other patient or on the order
of events. That is what makes common random numbers hold across scenarios (see docs/validation.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_INV53 = 1.0 / 9007199254740992.0

FIXED, EXPONENTIAL, LOGNORMAL, GAMMA, TRIANGULAR, UNIFORM = 0, 1, 2, 3, 4, 5


@njit(cache=True)
def splitmix64(x: Any) -> Any:  # pragma: no cover - compiled
    z = x + GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True)
def mix(key: Any, counter: int) -> Any:  # pragma: no cover - compiled
    """A new key for stream ``counter`` under ``key``."""
    return splitmix64(key ^ splitmix64(np.uint64(counter) * GOLDEN + _ONE))


@njit(cache=True)
def uniform01(key: Any, slot: int) -> float:  # pragma: no cover - compiled
    """A uniform number in (0, 1), never 0 or 1, for draw ``slot`` of stream ``key``."""
    z = splitmix64(key ^ (np.uint64(slot) + _ONE) * GOLDEN)
    return (float(z >> _S11) + 0.5) * _INV53


@njit(cache=True)
def normal_quantile(p: float) -> float:  # pragma: no cover - compiled
    """Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9)."""
    a1, a2, a3 = -3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02
    a4, a5, a6 = 1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00
    b1, b2, b3 = -5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02
    b4, b5 = 6.680131188771972e01, -1.328068155288572e01
    c1, c2, c3 = -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00
    c4, c5, c6 = -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00
    d1, d2, d3, d4 = 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00
    low = 0.02425
    if p < low:
        q = math.sqrt(-2.0 * math.log(p))
        return (((((c1 * q + c2) * q + c3) * q + c4) * q + c5) * q + c6) / (
            (((d1 * q + d2) * q + d3) * q + d4) * q + 1.0
        )
    if p > 1.0 - low:
        q = math.sqrt(-2.0 * math.log(1.0 - p))
        return -(((((c1 * q + c2) * q + c3) * q + c4) * q + c5) * q + c6) / (
            (((d1 * q + d2) * q + d3) * q + d4) * q + 1.0
        )
    q = p - 0.5
    r = q * q
    return (
        (((((a1 * r + a2) * r + a3) * r + a4) * r + a5) * r + a6)
        * q
        / (((((b1 * r + b2) * r + b3) * r + b4) * r + b5) * r + 1.0)
    )


@njit(cache=True)
def _gamma_unit(shape: float, key: Any) -> float:  # pragma: no cover - compiled
    """Gamma(shape, 1) by Marsaglia-Tsang from the counter stream ``key`` (boosted for shape < 1)."""
    boost = 1.0
    if shape < 1.0:
        boost = uniform01(key, 1_000_000) ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    for i in range(1000):
        z = normal_quantile(uniform01(key, 2 * i))
        v = 1.0 + c * z
        if v <= 0.0:
            continue
        v = v * v * v
        if math.log(uniform01(key, 2 * i + 1)) < 0.5 * z * z + d - d * v + d * math.log(v):
            return d * v * boost
    return d * boost  # not reached in practice (acceptance > 95 % per try)


@njit(cache=True)
def sample(code: int, p0: float, p1: float, p2: float, key: Any, slot: int) -> float:  # pragma: no cover
    """A duration (days) of distribution ``code`` with parameters p0..p2, from draw ``slot`` of ``key``."""
    if code == FIXED:
        return p0
    if code == GAMMA:
        if p1 < 1e-6:  # a cv this small is a fixed duration (and 1 / cv^2 would overflow)
            return p0
        shape = 1.0 / (p1 * p1)
        return _gamma_unit(shape, mix(key, slot)) * p0 / shape
    u = uniform01(key, slot)
    if code == EXPONENTIAL:
        return -p0 * math.log(u)
    if code == LOGNORMAL:
        return p0 * math.exp(p1 * normal_quantile(u))
    if code == TRIANGULAR:
        low, mode, high = p0, p1, p2
        if high <= low:
            return low
        cut = (mode - low) / (high - low)
        if u < cut:
            return low + math.sqrt(u * (high - low) * (mode - low))
        return high - math.sqrt((1.0 - u) * (high - low) * (high - mode))
    return p0 + u * (p1 - p0)  # UNIFORM
