"""The simulated figures of the table "Published vein-to-vein times" in docs/validation.md, measured the way the
table states them (not a speed benchmark: it prints figures to compare with published ones).

    .venv/bin/python benchmarks/twin_validation_figures.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_twin_validation import EVERY_DAY, POINT_OF_CARE  # noqa: E402

from cellrail.twin.compile import compile_scenario  # noqa: E402
from cellrail.twin.engine import simulate, warm_up  # noqa: E402
from cellrail.twin.output import Outcome, RunOutput  # noqa: E402
from cellrail.twin.scenario import load_scenario, scenario_from_text  # noqa: E402

FloatArray = NDArray[np.float64]


def _treated(out: RunOutput) -> NDArray[np.bool_]:
    return np.asarray(out.counted() & (out.outcome == Outcome.TREATED))


def _runs(text_or_path: str | Path, seeds: int) -> list[RunOutput]:
    scenario = load_scenario(text_or_path) if isinstance(text_or_path, Path) else scenario_from_text(text_or_path)
    compiled = compile_scenario(scenario)
    return [simulate(compiled, seed) for seed in range(seeds)]


def _v2v(runs: list[RunOutput]) -> FloatArray:
    return np.concatenate([(o.infusion - o.apheresis)[_treated(o)] for o in runs])


def _describe(name: str, times: FloatArray) -> None:
    p10, q1, median, q3, p90 = np.percentile(times, [10, 25, 50, 75, 90])
    print(
        f"{name}: median {median:.1f} d, IQR {q1:.1f}-{q3:.1f}, P10-P90 {p10:.1f}-{p90:.1f}, mean {times.mean():.2f}, "
        f"{times.size:,} treated, {np.mean(times <= 7):.0%} within 7 days"
    )


def main() -> None:
    warm_up()
    central = _runs(ROOT / "examples" / "centralized.yaml", 20)
    _describe("centralized, 20 replications", _v2v(central))
    release = np.concatenate([(o.release - o.apheresis)[_treated(o)] for o in central])
    print(f"centralized, apheresis -> release: median {np.median(release):.1f} d")
    counted = np.concatenate([o.outcome[o.counted()] for o in central])
    print(f"centralized, lost while waiting: {np.mean(counted == Outcome.LOST_WAITING):.1%} of counted patients")
    _describe("point of care, every day, 5 replications", _v2v(_runs(POINT_OF_CARE.format(days=EVERY_DAY), 5)))
    weekdays = POINT_OF_CARE.format(days="[mon, tue, wed, thu, fri]")
    _describe("point of care, Monday-Friday, 5 replications", _v2v(_runs(weekdays, 5)))
    _describe("regional, 20 replications", _v2v(_runs(ROOT / "examples" / "regional.yaml", 20)))


if __name__ == "__main__":
    main()
