"""The twin's engine against a plain SimPy model of the same process: agreement, then speed.

    python benchmarks/twin_engine.py [--network FILE] [--seeds N] [--nodes N] [--patients N] [--reps N]
                                     [--simpy-reps N] [--dir DIR]

(0) JIT warm-up: the first call compiles the kernel (or loads it from Numba's cache); reported apart.
(1) agreement: the same network (default examples/regional.yaml) in the engine and in benchmarks/twin_simpy.py
    (one SimPy process per patient, NumPy random numbers), N seeds each (default 30). Welch t-tests on the
    replication means of vein-to-vein time, share lost while waiting, share failed and patients treated; they
    agree if every p-value is above 0.01.
(a) the same work (those N replications) timed in both: replications per second, SimPy as the baseline; target
    50 x SimPy.
(b) one simulated year of a generated network (default 100 nodes: 80 hospitals of which 8 manufacture at the
    point of care, 18 regional hubs, 2 central factories) with 50,000 referrals a year, milliseconds per
    replication (median of --reps), target < 100 ms; SimPy on the same network (--simpy-reps replications) as
    the baseline.

The process is pinned to one core. Exit status 1 if a target is missed or the two models disagree.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numba
import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import stats

from cellrail.twin.compile import Compiled, compile_scenario
from cellrail.twin.engine import simulate, warm_up
from cellrail.twin.output import Outcome, RunOutput
from cellrail.twin.scenario import load_scenario, scenario_from_text
from machine import cpu_model, pin_to_one_core
from reporting import Figure, report
from twin_simpy import simulate_simpy

ROOT = Path(__file__).resolve().parents[1]
SPEED_UP_TARGET = 50.0
LARGE_TARGET_MS = 100.0
CPU_SECONDS: list[float] = []  # process time of every timed replication, in order (the machine may be shared)
WEEK = "[mon, tue, wed, thu, fri]"


def summary(out: RunOutput) -> tuple[float, float, float, float]:
    """Mean vein-to-vein (days), share lost, share failed, patients treated (counted, finished patients)."""
    counted = out.counted() & (out.outcome != Outcome.IN_PROGRESS)
    treated = counted & (out.outcome == Outcome.TREATED)
    v2v = float(np.mean(out.infusion[treated] - out.apheresis[treated])) if treated.any() else float("nan")
    finished = max(int(counted.sum()), 1)
    lost = float(np.sum(counted & (out.outcome == Outcome.LOST_WAITING)) / finished)
    failed = float(np.sum(counted & (out.outcome == Outcome.MANUFACTURING_FAILURE)) / finished)
    return v2v, lost, failed, float(treated.sum())


def generated_network(nodes: int, patients: int) -> str:
    """A network of ``nodes`` nodes (80 % hospitals, a tenth of them point of care; 90 % of the rest hubs, the
    others central factories), sized so ``patients`` referrals a year fit with room to spare."""
    hospitals = max(1, nodes * 4 // 5)
    poc = hospitals // 10
    makers = max(1, nodes - hospitals)
    factories = max(1, makers // 10)
    hubs = max(1, makers - factories)
    per_hospital = patients / hospitals
    per_day = per_hospital / 365
    chairs = max(1, int(per_day / (2 * 5 / 7) * 2) + 1)
    beds = max(2, int(per_day * 7 * 1.6) + 2)
    served = (hospitals - poc) / hubs
    hub_units = max(2, int(served * per_day * 1.04 * 12 * 1.3) + 2)
    poc_units = max(2, int(per_day * 1.04 * 7 * 1.4) + 2)
    lines = ["network: {id: generated, name: Generated benchmark network}", "nodes:"]
    place = "location: {city: X, country: CN, latitude: 30, longitude: 110}"
    fin = iter(range(1, 10_000))
    for i in range(hospitals):
        make = (
            f", qc_lab: true, manufacturing: [{{platform: Cocoon, units: {poc_units}, run_days: 7}}]" if i < poc else ""
        )
        lines += [
            f"  - {{id: h-{i:03d}, name: Hospital {i}, kind: hospital, fin: B{next(fin):04d}, {place},",
            f"     operating_days: {WEEK},",
            f"     capabilities: {{apheresis_chairs: {chairs}, collections_per_chair_per_day: 2, infusion_beds: {beds}"
            f"{make}}}}}",
        ]  # fmt: skip
    for j in range(hubs):
        lines += [
            f"  - {{id: hub-{j:03d}, name: Hub {j}, kind: regional_hub, fin: B{next(fin):04d}, {place},",
            "     operating_days: [mon, tue, wed, thu, fri, sat],",
            f"     capabilities: {{qc_lab: true, manufacturing: [{{platform: Prodigy, units: {hub_units}, "
            "run_days: 12}]}}",
        ]  # fmt: skip
    factory_units = max(4, hub_units * 3)
    for k in range(factories):
        lines += [
            f"  - {{id: cf-{k:03d}, name: Factory {k}, kind: central_factory, fin: B{next(fin):04d}, {place},",
            f"     capabilities: {{qc_lab: true, manufacturing: [{{platform: GMP suite, units: {factory_units}, "
            "run_days: 12}]}}",
        ]  # fmt: skip
    lines.append("lanes:")
    for i in range(poc, hospitals):
        hub = (i - poc) * hubs // max(1, hospitals - poc)
        lines.append(f"  - {{from: h-{i:03d}, to: hub-{hub:03d}, transport_hours: {2 + i % 5}}}")
        lines.append(f"  - {{from: h-{i:03d}, to: cf-{i % factories:03d}, transport_hours: {10 + i % 9}}}")
    for i in range(poc):
        lines.append(f"  - {{from: h-{i:03d}, to: hub-{i % hubs:03d}, transport_hours: 6}}")
    lines += ["demand:", "  horizon_days: 365", "  warmup_days: 0", "  hospitals:"]
    lines += [f"    h-{i:03d}: {{patients_per_year: {per_hospital}}}" for i in range(hospitals)]
    lines += ["process:", "  routing: {rule: primary_overflow, overflow_queue: 6}"]
    return "\n".join(lines) + "\n"


Summary = tuple[float, float, float, float]


def timed(
    run: Callable[[Compiled, int], RunOutput], compiled: Compiled, seeds: Sequence[int]
) -> tuple[list[float], list[Summary]]:
    seconds: list[float] = []
    summaries: list[Summary] = []
    for seed in seeds:
        started, cpu = time.perf_counter(), time.process_time()
        out = run(compiled, seed)
        seconds.append(time.perf_counter() - started)
        CPU_SECONDS.append(time.process_time() - cpu)
        summaries.append(summary(out))
    return seconds, summaries


def agreement(engine: list[tuple[float, ...]], simpy: list[tuple[float, ...]]) -> list[tuple[str, float, float, float]]:
    rows = []
    names = ("mean vein-to-vein (days)", "share lost while waiting", "share manufacturing failure", "patients treated")
    for index, name in enumerate(names):
        a = np.array([s[index] for s in engine])
        b = np.array([s[index] for s in simpy])
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue) if a.std() + b.std() > 0 else 1.0
        rows.append((name, float(a.mean()), float(b.mean()), p))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--network", type=Path, default=ROOT / "examples" / "regional.yaml")
    parser.add_argument("--seeds", type=int, default=30, help="replications per model for agreement (default 30)")
    parser.add_argument("--nodes", type=int, default=100, help="nodes of the generated network (default 100)")
    parser.add_argument("--patients", type=int, default=50_000, help="referrals a year in it (default 50,000)")
    parser.add_argument("--reps", type=int, default=10, help="engine replications of the generated network (10)")
    parser.add_argument("--simpy-reps", type=int, default=2, help="SimPy replications of it (default 2)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the generated network (optional)")
    args = parser.parse_args(argv)
    pinned = pin_to_one_core()
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 150))

    warm = warm_up()
    console.print(f"(0) JIT warm-up (compile or load from Numba's cache): {warm:.2f} s")
    compiled = compile_scenario(load_scenario(args.network))
    seeds = list(range(args.seeds))
    console.print(f"(1) {args.network.name}: {args.seeds} replications in the engine and in SimPy ...")
    engine_s, engine_sum = timed(simulate, compiled, seeds)
    simpy_s, simpy_sum = timed(simulate_simpy, compiled, [10_000 + s for s in seeds])
    rows = agreement(engine_sum, simpy_sum)
    table = Table(title=f"Agreement, {args.network.name}, {args.seeds} seeds each (Welch t-test)")
    for column in ("figure (replication mean)", "engine", "SimPy", "p-value", "agree"):
        table.add_column(column, justify="left" if column.startswith("figure") else "right")
    for name, a, b, p in rows:
        table.add_row(name, f"{a:,.4f}", f"{b:,.4f}", f"{p:.3f}", "yes" if p > 0.01 else "NO")
    console.print(table)
    agree = all(p > 0.01 for *_, p in rows)

    console.print(f"(2) generated network: {args.nodes} nodes, {args.patients:,} referrals a year ...")
    text = generated_network(args.nodes, args.patients)
    if args.dir is not None:
        (args.dir / "twin-generated.yaml").write_text(text)
    big = compile_scenario(scenario_from_text(text, "<generated>"))
    simulate(big, 0)  # first call with these array shapes
    CPU_SECONDS.clear()
    big_s, big_sum = timed(simulate, big, list(range(args.reps)))
    big_cpu = list(CPU_SECONDS)
    simpy_big_s, _ = timed(simulate_simpy, big, list(range(args.simpy_reps)))
    patients = int(simulate(big, 0).patients)

    engine_rate = len(engine_s) / sum(engine_s)
    simpy_rate = len(simpy_s) / sum(simpy_s)
    figures = [
        Figure(
            f"(a) replications/s, {args.network.name}, same work",
            engine_rate,
            "rep/s",
            "SimPy, one process per patient",
            simpy_rate,
            SPEED_UP_TARGET * simpy_rate,
        ),
        Figure(
            f"(b) ms per replication, {args.nodes}-node network, 1 year",
            statistics.median(big_s) * 1e3,
            "ms",
            "SimPy, same network",
            statistics.median(simpy_big_s) * 1e3,
            LARGE_TARGET_MS,
            higher_is_better=False,
        ),
    ]
    header = [
        f"CellRail twin engine benchmark: Python {platform.python_version()}, NumPy {np.__version__}, "
        f"Numba {numba.__version__}, {cpu_model()}, nproc {os.cpu_count()}, {pinned}",
    ]
    treated = statistics.mean(s[3] for s in big_sum)
    notes = [
        f"JIT warm-up {warm:.2f} s, excluded above (a new process loads the cached kernel; the first run compiles).",
        f"(a) {args.seeds} replications of {args.network.name}: engine {statistics.mean(engine_s) * 1e3:.2f} ms, "
        f"SimPy {statistics.mean(simpy_s) * 1e3:.1f} ms per replication; target: {SPEED_UP_TARGET:.0f} x SimPy.",
        f"(b) {patients:,} referrals in a simulated year, {treated:,.0f} treated on average; engine median of "
        f"{args.reps}, SimPy median of {args.simpy_reps}; ratio = speed-up over SimPy. Engine fastest "
        f"{min(big_s) * 1e3:.1f} ms; CPU time (process_time) median {statistics.median(big_cpu) * 1e3:.1f} ms.",
        f"Models agree on every figure (p > 0.01): {'yes' if agree else 'NO'}.",
    ]
    report(console, "Twin engine (Numba) vs SimPy, one core", figures, header, notes)
    return 0 if agree and all(f.met for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
