"""Paired comparison: the interval formula, its coverage, the CRN gain, and the verdicts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cellrail.twin.compare import compare, paired_difference
from cellrail.twin.scenario import load_scenario


def test_interval_matches_the_textbook_formula() -> None:
    a = np.array([10.0, 12.0, 11.0, 15.0])
    b = np.array([12.0, 13.0, 14.0, 16.0])
    d = paired_difference("v2v_median", a, b)
    # differences 2, 1, 3, 1: mean 1.75, sd 0.9574, t(0.975, 3) = 3.1824
    half = 3.182446305284263 * 0.9574271077563381 / 2
    assert d.n == 4
    assert (d.mean_a, d.mean_b, d.difference) == pytest.approx((12.0, 13.75, 1.75))
    assert (d.low, d.high) == pytest.approx((1.75 - half, 1.75 + half))
    assert d.significant
    assert d.verdict() == (
        "vein-to-vein median: B is higher, B − A = +1.8 days (95 % CI +0.2 days to +3.3 days), significant"
    )


def test_interval_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    """Synthetic CRN: A and B share each replication's 'luck' (a common term) and differ by exactly -2 days."""
    rng = np.random.default_rng(42)
    trials, n, covered = 2000, 10, 0
    widths_paired, widths_unpaired = [], []
    for _ in range(trials):
        luck = rng.normal(30.0, 5.0, n)  # what both scenarios share: the same patients
        a = luck + rng.normal(0.0, 0.5, n)
        b = luck - 2.0 + rng.normal(0.0, 0.5, n)
        d = paired_difference("v2v_median", a, b)
        covered += d.low <= -2.0 <= d.high
        widths_paired.append(d.half_width)
        widths_unpaired.append(d.unpaired_half_width)
    coverage = covered / trials
    # 95 % nominal; with 2000 trials the binomial standard error is 0.5 points
    assert 0.93 <= coverage <= 0.97
    # shared luck: sd of a difference ~0.71 versus ~5 for each arm, so pairing narrows the interval ~7-fold
    assert np.median(widths_unpaired) / np.median(widths_paired) > 5


def test_no_difference_is_not_significant_and_nan_pairs_are_dropped() -> None:
    a = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    b = np.array([1.5, 1.5, 3.0, 4.5, 4.5])
    d = paired_difference("treated_share", a, b)
    assert d.n == 4  # the pair with a NaN is left out
    assert d.difference == pytest.approx(0.0)
    assert not d.significant
    assert d.verdict().startswith("share treated: no significant difference, B − A = 0.0 points (95 % CI −")
    same = paired_difference("cost_per_treated", np.ones(5), np.ones(5))
    assert (same.low, same.high, same.significant) == (0.0, 0.0, False)
    single = paired_difference("v2v_p90", np.array([1.0]), np.array([2.0]))
    assert single.n == 1
    assert math.isnan(single.low)
    assert "not enough replications" in single.verdict()


def test_welch_half_width_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 12), rng.normal(1, 2, 12)
    d = paired_difference("v2v_mean", a, b)
    welch = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert d.unpaired_half_width == pytest.approx((welch.high - welch.low) / 2)


def test_common_random_numbers_with_the_engine() -> None:
    """A scenario against itself: zero difference everywhere. Centralized vs regional: the same patients in both,
    and pairing narrows the intervals of the shares (the same patients are lost or not in both networks)."""
    examples = Path(__file__).resolve().parents[1] / "examples"
    regional = load_scenario(examples / "regional.yaml")
    centralized = load_scenario(examples / "centralized.yaml")
    same = compare(regional, regional, 5, 2, workers=1)
    assert all(d.difference == 0 or math.isnan(d.difference) for d in same.differences)
    assert not any(d.significant for d in same.differences)
    result = compare(centralized, regional, 12, 2, workers=1)
    assert result.a.seeds == result.b.seeds
    assert np.array_equal(result.a.values("patients"), result.b.values("patients"))  # same referrals
    treated = result.difference("treated_share")
    assert treated.n == 12
    assert treated.unpaired_half_width > 1.3 * treated.half_width
    assert result.difference("v2v_median").significant
    assert result.difference("v2v_median").difference < 0  # regional manufacturing is closer to the patients


def test_a_lower_b_reads_as_a_signed_difference() -> None:
    """Regression: "B is lower by 9.0 days (95 % CI −9.0 to −9.0)" mixed a magnitude with a signed interval."""
    a = np.array([30.0, 31.0, 32.0, 33.0])
    d = paired_difference("v2v_median", a, a - np.array([9.0, 9.01, 8.99, 9.0]))
    assert d.verdict() == (
        "vein-to-vein median: B is lower, B − A = −9.0 days (95 % CI −9.0 days to −9.0 days), significant"
    )


def test_one_number_format_and_one_t_interval_for_every_table() -> None:
    from cellrail.twin.statistics import format_value, mean_ci, t_half_width

    assert [
        format_value(v, u) for v, u in [(0.934, "share"), (66172.2, "currency"), (1.0412, "runs"), (14.44, "days")]
    ] == [
        "93.4%",
        "66,172",
        "1.041",
        "14.4",
    ]
    assert format_value(float("nan"), "days") == "–"
    mean, low, high, n = mean_ci(np.array([1.0, 2.0, 3.0, np.nan]))
    assert mean - low == pytest.approx(high - mean)
    assert (mean, n) == (2.0, 3)
    assert high - mean == pytest.approx(t_half_width(1.0, 3)) == pytest.approx(4.302652729911275 / 3**0.5)
