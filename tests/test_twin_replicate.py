"""Replications: the same seed gives the same figures in-process, over a process pool and on Ray."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cellrail.kernel.errors import InvalidInput
from cellrail.twin.compile import compile_scenario
from cellrail.twin.engine import simulate
from cellrail.twin.metrics import cost_rates, summarize
from cellrail.twin.replicate import Replications, replication_seeds, run_replications
from cellrail.twin.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[1]
REPLICATIONS = 10


@pytest.fixture(scope="module")
def regional() -> Scenario:
    return load_scenario(ROOT / "examples" / "regional.yaml")


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """One local Ray instance for the session (the issue's "Ray's local mode": a Ray instance on this machine)."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def _fingerprint(run: Replications) -> tuple[bytes, ...]:
    metrics = np.array([[s.metrics[k] for k in sorted(s.metrics)] for s in run.summaries])
    per_hospital = np.stack([s.by_hospital["v2v_median"] for s in run.summaries])
    return (
        metrics.tobytes(),
        per_hospital.tobytes(),
        run.busy_mean.tobytes(),
        run.queue_mean.tobytes(),
        run.first.infusion.tobytes(),
    )


def test_seeds_are_spawned_from_the_run_seed() -> None:
    seeds = replication_seeds(42, 5)
    assert seeds == replication_seeds(42, 8)[:5]  # more replications do not change the first ones
    assert len(set(seeds)) == 5
    assert all(0 <= s < 2**63 for s in seeds)
    assert seeds != replication_seeds(43, 5)
    expected = int(np.random.SeedSequence(42, spawn_key=(3,)).generate_state(1, np.uint64)[0]) >> 1
    assert seeds[3] == expected


def test_same_seed_same_results_in_process_pool_and_ray(regional: Scenario, local_ray: None) -> None:
    calls: list[tuple[int, int]] = []
    alone = run_replications(regional, REPLICATIONS, 7, workers=1, progress=lambda d, t: calls.append((d, t)))
    pooled = run_replications(regional, REPLICATIONS, 7, workers=2)
    on_ray = run_replications(regional, REPLICATIONS, 7, engine="ray", workers=2)
    assert (alone.workers, pooled.workers, on_ray.engine) == (1, 2, "ray")
    assert _fingerprint(alone) == _fingerprint(pooled) == _fingerprint(on_ray)
    assert calls[-1] == (REPLICATIONS, REPLICATIONS)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    # Replication k is exactly one engine run with seed k, summarized
    compiled = compile_scenario(regional)
    for k in (0, 4):
        output = simulate(compiled, alone.seeds[k])
        direct = summarize(output, cost_rates(regional.costs, output.sites)).metrics
        assert alone.summaries[k].metrics == pytest.approx(direct, nan_ok=True)
    # The mean daily series is the plain mean of every replication's series (summed in fixed point, 2**-20 steps,
    # so that chunking cannot change the bits)
    total = sum(simulate(compiled, s).queue for s in alone.seeds)
    assert alone.queue_mean == pytest.approx(total / REPLICATIONS, abs=1e-6)
    other = run_replications(regional, REPLICATIONS, 8, workers=1)
    assert _fingerprint(other) != _fingerprint(alone)


def test_values_per_metric_and_hospital(regional: Scenario) -> None:
    run = run_replications(regional, 4, 1, workers=1)
    assert run.values("v2v_median").shape == (4,)
    assert run.hospital_values("treated_share").shape == (4, len(regional.hospitals))
    assert run.replications == 4
    assert run.currency == regional.costs.currency
    treated = run.values("treated_share")
    assert np.all((treated > 0.5) & (treated <= 1.0))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"replications": 0}, "replications"),
        ({"engine": "dask"}, "engine"),
        ({"workers": 0}, "workers"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_name_their_field(regional: Scenario, kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"replications": 2, "seed": 1, **kwargs}
    with pytest.raises(InvalidInput) as error:
        run_replications(regional, **arguments)  # type: ignore[arg-type]
    assert error.value.problems[0].field == field


@pytest.mark.slow
def test_throughput_benchmark_runs() -> None:
    """benchmarks/twin_replications.py at a tiny size (speed is not judged here; the identity check is)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "twin_replications.py"), "--replications", "20", "--workers", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode in (0, 1), output
    assert "(a) replications/s in one process" in output
    assert "(b) replications/s, pool of 2" in output
    assert "Identical figures in every way: yes." in output


def test_ray_keeps_at_most_workers_tasks_in_flight(regional: Scenario, local_ray: None) -> None:
    """Regression: every chunk used to be submitted at once, whatever --workers said. With one task in flight the
    chunks come back strictly in order, and the figures are still those of the local run."""
    from cellrail.twin.replicate import _chunks, _run_ray, replication_seeds

    chunks = _chunks(replication_seeds(3, 9), 2)
    assert len(chunks) == 5
    order: list[int] = []
    _run_ray("throttle", regional, chunks, 1, lambda index, chunk: order.append(index))
    assert order == list(range(len(chunks)))
    on_ray = run_replications(regional, 9, 3, engine="ray", workers=1)
    assert _fingerprint(on_ray) == _fingerprint(run_replications(regional, 9, 3, workers=1))
