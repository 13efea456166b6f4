"""Many independent replications of one scenario, on local cores or a Ray cluster, with the same answer either way.

Replication k always runs with the seed derived from ``(seed, k)`` by numpy's SeedSequence, whatever the engine,
the number of workers or the chunking, and results are gathered in replication order. So a run can be repeated
exactly, moved from a laptop to a cluster, and two scenarios can share their random numbers (see compare.py).

Workers return compact summaries (metrics.Summary, a few kilobytes) plus sums of the daily resource series;
only replication 0 is kept whole, for per-patient tables and charts. It runs first, in the calling process,
and its duration decides whether the rest is worth a process pool (unless ``workers`` is given).
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from cellrail.kernel.errors import InvalidInput
from cellrail.twin.metrics import Summary, cost_rates, summarize
from cellrail.twin.output import RunOutput

if TYPE_CHECKING:
    from cellrail.twin.compile import Compiled
    from cellrail.twin.scenario import Scenario

Engine = Literal["local", "ray"]
Progress = Callable[[int, int], None]  # (replications done, replications in all)
FloatArray = NDArray[np.float64]
_CHUNKS_PER_WORKER = 4  # enough to balance uneven replications, few enough to amortize each task's overhead
_IN_PROCESS_SECONDS = 4.0  # below this estimated run time, starting worker processes is not worth it
Tick = Callable[[int, "Chunk"], None]


@dataclass(frozen=True)
class Chunk:
    """What a worker sends back for some consecutive replications."""

    summaries: list[Summary]
    # (R, D) sums over the chunk's replications in fixed point (units of 1 / FIXED_POINT): the daily series are time
    # averages (fractions), and integer sums are exact, so the result does not depend on how replications were chunked
    busy_sum: NDArray[np.int64]
    queue_sum: NDArray[np.int64]
    first: RunOutput | None  # the chunk's first replication whole, when asked for (replication 0)
    seconds: float


@dataclass(frozen=True)
class Replications:
    """All replications of one scenario: their summaries in order, replication 0 whole, mean daily series."""

    seed: int
    seeds: tuple[int, ...]
    summaries: tuple[Summary, ...]
    first: RunOutput
    busy_mean: FloatArray  # (R, D) mean over replications of the time-average servers in use on each day
    queue_mean: FloatArray  # (R, D) mean over replications of the time-average patients waiting on each day
    currency: str
    engine: str
    workers: int
    elapsed_seconds: float

    @property
    def replications(self) -> int:
        return len(self.summaries)

    def values(self, metric: str) -> FloatArray:
        """One network-wide metric, one value per replication (in replication order)."""
        return np.array([s.metrics[metric] for s in self.summaries], dtype=np.float64)

    def hospital_values(self, metric: str) -> FloatArray:
        """(replications, hospitals) values of one per-hospital metric."""
        return np.stack([s.by_hospital[metric] for s in self.summaries])


def replication_seeds(seed: int, replications: int) -> list[int]:
    """Seed of replication k: an independent stream spawned from ``seed`` (63 bits, fits a signed int64)."""
    if seed < 0:
        raise InvalidInput.one("seed", "must be zero or a positive integer")
    return [
        int(np.random.SeedSequence(seed, spawn_key=(k,)).generate_state(1, np.uint64)[0] >> np.uint64(1))
        for k in range(replications)
    ]


# One compiled scenario per worker process and run, so each task after the first skips compilation.
_COMPILED: dict[str, Compiled] = {}


def _compiled(token: str, scenario: Scenario) -> Compiled:
    from cellrail.twin.compile import compile_scenario

    if token not in _COMPILED:
        _COMPILED.clear()
        _COMPILED[token] = compile_scenario(scenario)
    return _COMPILED[token]


FIXED_POINT = 2**20  # ~1e-6 resolution; room for 1e4 servers x 1e5 replications in an int64


def _fixed(series: FloatArray) -> NDArray[np.int64]:
    return np.rint(series * FIXED_POINT).astype(np.int64)


def run_chunk(token: str, scenario: Scenario, seeds: Sequence[int], keep_first: bool) -> Chunk:
    """Run some replications in this process (a pool worker, a Ray task or the caller itself)."""
    from cellrail.twin.engine import simulate

    started = time.perf_counter()
    compiled = _compiled(token, scenario)
    summaries: list[Summary] = []
    busy_sum: NDArray[np.int64] | None = None
    queue_sum: NDArray[np.int64] | None = None
    first: RunOutput | None = None
    rates = cost_rates(scenario.costs, compiled.sites)  # once per chunk: Scenario.costs is rebuilt on each access
    for index, seed in enumerate(seeds):
        output = simulate(compiled, int(seed))
        summaries.append(summarize(output, rates))
        if busy_sum is None or queue_sum is None:
            busy_sum, queue_sum = _fixed(output.busy), _fixed(output.queue)
        else:
            busy_sum += _fixed(output.busy)
            queue_sum += _fixed(output.queue)
        if keep_first and index == 0:
            first = output
    assert busy_sum is not None
    assert queue_sum is not None
    return Chunk(summaries, busy_sum, queue_sum, first, time.perf_counter() - started)


def _chunks(seeds: Sequence[int], workers: int) -> list[list[int]]:
    size = max(1, math.ceil(len(seeds) / (workers * _CHUNKS_PER_WORKER)))
    return [list(seeds[i : i + size]) for i in range(0, len(seeds), size)]


def _warm_worker() -> None:
    from cellrail.twin.engine import warm_up

    warm_up()


def _run_local(token: str, scenario: Scenario, chunks: list[list[int]], workers: int, tick: Tick) -> None:
    if workers == 1:
        for index, chunk in enumerate(chunks):
            tick(index, run_chunk(token, scenario, chunk, False))
        return
    # forkserver: workers start from a clean process (no inherited threads of Rich or Ray) that has imported the
    # engine once; Numba's on-disk cache spares each worker the compilation. (Scripts that call this need the
    # usual ``if __name__ == "__main__":`` guard.)
    context = get_context("forkserver")
    context.set_forkserver_preload(["cellrail.twin.engine", "cellrail.twin.metrics"])
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_warm_worker) as pool:
        pending: dict[Future[Chunk], int] = {
            pool.submit(run_chunk, token, scenario, chunk, False): index for index, chunk in enumerate(chunks)
        }
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                tick(pending.pop(future), future.result())


def _ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError:
        raise InvalidInput.one("engine", "Ray is not installed: pip install 'cellrail[ray]'") from None
    if not ray.is_initialized():
        ray.init()  # joins the cluster named by RAY_ADDRESS if set, else starts a local Ray instance
    return ray


def _ray_cpus() -> int:
    return max(1, int(_ray().cluster_resources().get("CPU", 1)))


def _run_ray(token: str, scenario: Scenario, chunks: list[list[int]], workers: int, tick: Tick) -> None:
    """At most ``workers`` tasks in flight: a new chunk is sent when one comes back (so --workers throttles)."""
    ray = _ray()
    task = ray.remote(run_chunk)
    shared = ray.put(scenario)
    waiting = list(enumerate(chunks))
    waiting.reverse()
    pending: dict[Any, int] = {}
    while waiting or pending:
        while waiting and len(pending) < workers:
            index, chunk = waiting.pop()
            pending[task.remote(token, shared, chunk, False)] = index
        finished, _ = ray.wait(list(pending), num_returns=1)
        for ref in finished:
            tick(pending.pop(ref), ray.get(ref))


def run_replications(
    scenario: Scenario,
    replications: int,
    seed: int,
    engine: Engine = "local",
    workers: int | None = None,
    progress: Progress | None = None,
) -> Replications:
    """Run ``replications`` replications of ``scenario`` (a twin Scenario) and summarize each one.

    ``engine='local'`` spreads chunks of replications over ``workers`` processes (default: every core, but only
    when the run is estimated, from replication 0, to take over ``_IN_PROCESS_SECONDS``; shorter runs stay in this
    process; ``workers=1`` always runs here); ``engine='ray'`` sends them as Ray tasks with at most ``workers`` in
    flight (default: the cluster's CPU count). Same seed, same results.
    """
    if replications < 1:
        raise InvalidInput.one("replications", "must be at least 1")
    if engine not in ("local", "ray"):
        raise InvalidInput.one("engine", f"unknown engine '{engine}'; use 'local' or 'ray'")
    if workers is not None and workers < 1:
        raise InvalidInput.one("workers", "must be at least 1")
    started = time.perf_counter()
    seeds = replication_seeds(seed, replications)
    token = uuid.uuid4().hex
    # Replication 0 runs here, whole (its patients fill the per-patient table), and times the rest.
    if workers is None and engine == "local":
        from cellrail.twin.engine import warm_up

        warm_up()  # load the compiled kernel first, so that the timing below is of a replication only
    head = run_chunk(token, scenario, seeds[:1], True)
    rest = seeds[1:]
    count = workers or (_ray_cpus() if engine == "ray" else os.cpu_count() or 1)  # ray: the whole cluster's CPUs
    if workers is None and engine == "local" and head.seconds * len(rest) < _IN_PROCESS_SECONDS:
        count = 1  # a pool would cost more to start than these replications take
    count = max(1, min(count, len(rest)))
    chunks = _chunks(rest, count)
    results: list[Chunk | None] = [None] * len(chunks)
    done = 1
    if progress is not None:
        progress(done, replications)

    def tick(index: int, chunk: Chunk) -> None:
        nonlocal done
        results[index] = chunk
        done += len(chunk.summaries)
        if progress is not None:
            progress(done, replications)

    if chunks and engine == "ray":
        _run_ray(token, scenario, chunks, count, tick)
    elif chunks:
        _run_local(token, scenario, chunks, count, tick)
    parts = [head, *(chunk for chunk in results if chunk is not None)]
    assert head.first is not None
    busy = np.sum([part.busy_sum for part in parts], axis=0)
    queue = np.sum([part.queue_sum for part in parts], axis=0)
    return Replications(
        seed=seed,
        seeds=tuple(seeds),
        summaries=tuple(summary for part in parts for summary in part.summaries),
        first=head.first,
        busy_mean=busy / FIXED_POINT / replications,
        queue_mean=queue / FIXED_POINT / replications,
        currency=str(scenario.costs.currency),
        engine=engine,
        workers=count,
        elapsed_seconds=time.perf_counter() - started,
    )
