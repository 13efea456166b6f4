"""Replication throughput of `cellrail twin run`: in one process, over a local process pool, on Ray.

    python benchmarks/twin_replications.py [--network FILE] [--replications N] [--workers W] [--ray]

(a) in-process (workers=1): replications per second including each replication's summary (metrics), against
    the bare engine (`simulate` alone, same seeds) as the baseline; ratio = share of the bare speed kept.
(b) local process pool with W workers (default: every core), the same replications; baseline (a), ratio =
    speed-up. Includes starting the pool (fork server, workers load Numba's cached kernel).
(c) with --ray: Ray tasks on a local Ray instance (started here, num_cpus = W); baseline (a). Includes Ray's start.
Every way must give identical figures (checked). The process is not pinned: (b) and (c) are about using cores.
Exit status 1 if the results differ or target (a) is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numba
import numpy as np
from rich.console import Console

from cellrail.twin.compile import compile_scenario
from cellrail.twin.engine import simulate, warm_up
from cellrail.twin.replicate import Replications, replication_seeds, run_replications
from cellrail.twin.scenario import load_scenario
from machine import cpu_model
from reporting import Figure, report

ROOT = Path(__file__).resolve().parents[1]
IN_PROCESS_TARGET = 100.0  # replications/s of the regional example, summaries included, on one core


def _fingerprint(run: Replications) -> bytes:
    values = np.array([[s.metrics[k] for k in sorted(s.metrics)] for s in run.summaries])
    return values.tobytes() + run.busy_mean.tobytes() + run.queue_mean.tobytes()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--network", type=Path, default=ROOT / "examples" / "regional.yaml")
    parser.add_argument("--replications", type=int, default=2000, help="replications per way (default 2,000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="pool size / Ray CPUs")
    parser.add_argument("--ray", action="store_true", help="also time Ray tasks on a local Ray instance")
    args = parser.parse_args(argv)
    console = Console()
    scenario = load_scenario(args.network)
    warm = warm_up()
    n = args.replications

    compiled = compile_scenario(scenario)
    started = time.perf_counter()
    for seed in replication_seeds(1, n):
        simulate(compiled, seed)
    bare_rate = n / (time.perf_counter() - started)

    alone = run_replications(scenario, n, 1, workers=1)
    alone_rate = n / alone.elapsed_seconds
    pooled = run_replications(scenario, n, 1, workers=args.workers)
    pooled_rate = n / pooled.elapsed_seconds
    figures = [
        Figure("(a) replications/s in one process", alone_rate, "rep/s", "bare engine", bare_rate, IN_PROCESS_TARGET),
        Figure(f"(b) replications/s, pool of {args.workers}", pooled_rate, "rep/s", "(a) in one process", alone_rate,
               None),
    ]  # fmt: skip
    same_pool = _fingerprint(alone) == _fingerprint(pooled)
    same_ray = True
    if args.ray:
        import ray

        ray_started = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        on_ray = run_replications(scenario, n, 1, engine="ray", workers=args.workers)
        ray_rate = n / (time.perf_counter() - ray_started)
        ray.shutdown()
        figures.append(
            Figure(f"(c) replications/s, Ray, {args.workers} CPUs", ray_rate, "rep/s", "(a) in one process",
                   alone_rate, None)
        )  # fmt: skip
        same_ray = _fingerprint(on_ray) == _fingerprint(alone)
    header = [
        f"CellRail twin replications benchmark: Python {platform.python_version()}, NumPy {np.__version__}, "
        f"Numba {numba.__version__}, {cpu_model()}, nproc {os.cpu_count()}, not pinned",
        f"{n:,} replications of {args.network.name} ({scenario.horizon_days:g} simulated days, "
        f"{alone.first.patients:,} referrals in replication 0), seed 1",
    ]
    notes = [
        f"JIT warm-up {warm:.2f} s, excluded. (a) includes summarizing every replication (metrics.summarize); "
        "(b) and (c) include starting the pool or Ray.",
        f"Identical figures in every way: {'yes' if same_pool and same_ray else 'NO'}"
        f"{'' if same_pool else ' (the pool differs)'}{'' if same_ray else ' (Ray differs)'}.",
    ]
    report(console, "Twin replication throughput", figures, header, notes)
    return 0 if same_pool and same_ray and all(f.met for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
