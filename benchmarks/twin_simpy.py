"""The twin's process written the plain SimPy way: one process per patient, ``simpy.Resource`` per resource.

It is the baseline of ``benchmarks/twin_engine.py`` and the second implementation that the agreement test
(tests/test_twin_validation.py) compares the engine with. It reads the same compiled arrays (routes, capacities,
calendars, distributions) but shares none of the engine's code: its own event loop (SimPy's), its own random
numbers (a NumPy Generator, so the agreement is statistical, never draw for draw), its own queues.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from cellrail.twin.compile import Compiled
from cellrail.twin.output import RunOutput

MORNING = 8.0 / 24.0
TREATED, LOST, FAILED, IN_PROGRESS = 0, 1, 2, 3


def _next_open(t: float, mask: int) -> float:
    day = math.floor(t)
    if (mask >> (day % 7)) & 1:
        return t
    for ahead in range(1, 8):
        if (mask >> ((day + ahead) % 7)) & 1:
            return day + ahead + MORNING
    return math.inf


class SimPyTwin:
    """One replication of a compiled scenario in SimPy."""

    def __init__(self, c: Compiled, seed: int) -> None:
        self.c = c
        self.env = simpy.Environment()
        self.rng = np.random.default_rng(seed)
        self.res = [simpy.Resource(self.env, capacity=int(cap)) for cap in c.res_cap]
        self.rows: list[dict[str, Any]] = []

    # ---- sampling (NumPy's generators; the same distributions as the engine) ----
    def draw(self, code: int, p: Any) -> float:
        g = self.rng
        if code == 0:
            return float(p[0])
        if code == 1:
            return float(g.exponential(p[0]))
        if code == 2:
            return float(p[0] * math.exp(p[1] * g.standard_normal()))
        if code == 3:
            if p[1] < 1e-6:
                return float(p[0])
            shape = 1.0 / (p[1] * p[1])
            return float(g.gamma(shape, p[0] / shape))
        if code == 4:
            return float(p[0]) if p[2] <= p[0] else float(g.triangular(p[0], p[1], p[2]))
        return float(g.uniform(p[0], p[1]))

    def travel(self, t: float, legs: Any) -> tuple[float, float]:
        cost = 0.0
        for leg in legs:
            t = _next_open(t, int(self.c.leg_mask[leg])) + float(self.c.leg_days[leg])
            cost += float(self.c.leg_cost[leg])
        return t, cost

    def waiting(self, r: int) -> int:
        return len(self.res[r].queue)

    def wait_estimate(self, r: int) -> float:
        c = self.c
        ahead = self.waiting(r) + self.res[r].count - int(c.res_cap[r]) + 1
        return 0.0 if ahead <= 0 else ahead * float(c.res_mean[r]) / int(c.res_cap[r])

    def platform(self, s: int) -> int:
        c = self.c
        rows = [int(c.site_res[i]) for i in range(c.site_start[s], c.site_start[s + 1])]
        return min(rows, key=lambda r: (self.wait_estimate(r), rows.index(r)))

    def choose(self, h: int, t: float) -> int:
        c = self.c
        first, last = int(c.cand_start[h]), int(c.cand_start[h + 1])
        if last - first == 1 or c.routing == 0:
            return first
        if c.routing == 1:
            s = int(c.cand_site[first])
            rows = range(c.site_start[s], c.site_start[s + 1])
            if sum(self.waiting(int(c.site_res[i])) for i in rows) < c.overflow_queue:
                return first
        best, best_start = first, math.inf
        for k in range(first, last):
            there, _ = self.travel(t, c.out_legs[c.cand_out_start[k] : c.cand_out_start[k + 1]])
            s = int(c.cand_site[k])
            for i in range(c.site_start[s], c.site_start[s + 1]):
                r = int(c.site_res[i])
                start = _next_open(there, int(c.res_mask[r])) + self.wait_estimate(r)
                if start < best_start:
                    best, best_start = k, start
        return best

    # ---- the patient ----
    def patient(self, h: int, row: dict[str, Any]) -> Generator[simpy.Event, Any, None]:
        c, env = self.c, self.env
        row["bridged"] = bool(self.rng.random() < c.bridging_share)
        rate = c.hazard * (c.bridging_hr if row["bridged"] else 1.0)
        patience = self.rng.exponential(1.0 / rate) if rate > 0 else math.inf
        deadline = env.now + patience if c.scope == 0 else math.inf
        row["deadline"] = deadline
        yield env.timeout(self.draw(int(c.proc_dist[0]), c.proc_par[0]))
        if env.now >= deadline:
            return self.lose(row, deadline)
        r = int(c.hosp_aph[h])
        if not (yield from self.use(r, row, deadline, patience)):
            return None
        yield env.timeout(self.draw(int(c.res_dist[r]), c.res_par[r]))
        self.res[r].release(row.pop("request"))
        row["apheresis"] = env.now
        if env.now >= deadline:
            return self.lose(row, deadline)
        k = self.choose(h, env.now)
        there, cost = self.travel(env.now, c.out_legs[c.cand_out_start[k] : c.cand_out_start[k + 1]])
        row["cost"] += cost
        yield env.timeout(there - env.now)
        s = int(c.cand_site[k])
        while True:
            if env.now >= deadline:
                return self.lose(row, deadline)
            r = self.platform(s)
            if not (yield from self.use(r, row, deadline, patience, manufacturing=True)):
                return None
            if row["attempts"] == 0:
                row["manufacture_start"] = env.now
            row["attempts"] += 1
            row["site"] = s
            yield env.timeout(self.draw(int(c.res_dist[r]), c.res_par[r]))
            self.res[r].release(row.pop("request"))
            yield env.timeout(self.draw(int(c.proc_dist[1]), c.proc_par[1]))
            if env.now >= deadline:
                return self.lose(row, deadline)
            chance = c.oos if row["attempts"] == 1 else c.re_oos
            if self.rng.random() >= chance:
                break
            if row["attempts"] >= c.max_attempts:
                row["outcome"], row["ended"] = FAILED, env.now
                return None
        row["release"] = env.now
        out = env.now + (self.draw(int(c.proc_dist[2]), c.proc_par[2]) if c.cryo else 0.0)
        back, cost = self.travel(out, c.back_legs[c.cand_back_start[k] : c.cand_back_start[k + 1]])
        row["cost"] += cost
        yield env.timeout(back - env.now)
        if env.now >= deadline:
            return self.lose(row, deadline)
        r = int(c.hosp_inf[h])
        if not (yield from self.use(r, row, deadline, patience)):
            return None
        row["infusion"] = row["ended"] = env.now
        row["outcome"] = TREATED
        stay = self.draw(int(c.res_dist[r]), c.res_par[r])
        row["bed"] = stay
        yield env.timeout(stay)
        self.res[r].release(row.pop("request"))
        return None

    def use(
        self, r: int, row: dict[str, Any], deadline: float, patience: float, manufacturing: bool = False
    ) -> Generator[simpy.Event, Any, bool]:
        """Queue for resource ``r`` (FIFO), racing the patient's deadline; then wait for the node to open."""
        env = self.env
        request = self.res[r].request()
        limit = deadline
        if self.c.scope == 1 and manufacturing:
            limit = env.now + patience
        if math.isinf(limit):
            yield request
        else:
            result = yield request | env.timeout(max(limit - env.now, 0.0))
            if request not in result:
                request.cancel()
                self.lose(row, limit)
                return False
        opens = _next_open(env.now, int(self.c.res_mask[r]))
        if opens > env.now:
            yield env.timeout(opens - env.now)
            if env.now >= deadline:  # lost before the node opened: the place goes to the next patient
                self.res[r].release(request)
                self.lose(row, deadline)
                return False
        row["request"] = request
        return True

    def lose(self, row: dict[str, Any], at: float) -> None:
        row["outcome"], row["ended"] = LOST, at

    def arrivals(self) -> list[tuple[float, int]]:
        c, g = self.c, self.rng
        found: list[tuple[float, int]] = []
        for h in range(len(c.hospitals)):
            top = float(c.hosp_rate[h] * (1 + c.hosp_amp[h]))
            t = 0.0
            while top > 0:
                t += g.exponential(1 / top)
                if t > c.horizon:
                    break
                here = c.hosp_rate[h] * (1 + c.hosp_amp[h] * math.cos(2 * math.pi * (t - c.hosp_peak[h]) / 365))
                if g.random() * top <= here:
                    found.append((t, h))
            found += [(float(x), h) for x in c.sched_time[c.sched_start[h] : c.sched_start[h + 1]] if x <= c.horizon]
        return sorted(found)

    def feeder(self, arrivals: list[tuple[float, int]]) -> Generator[simpy.Event, Any, None]:
        for t, h in arrivals:
            yield self.env.timeout(t - self.env.now)
            row: dict[str, Any] = {"hospital": h, "arrival": t, "attempts": 0, "cost": 0.0, "site": -1, "bed": 0.0}
            self.rows.append(row)
            self.env.process(self.patient(h, row))

    def run(self) -> RunOutput:
        self.env.process(self.feeder(self.arrivals()))
        self.env.run(until=self.c.horizon)
        c, rows = self.c, self.rows
        nan = math.nan

        def col(name: str, default: float = nan) -> np.ndarray[Any, Any]:
            return np.array([r.get(name, default) for r in rows], dtype=np.float64)

        outcome = np.array([r.get("outcome", IN_PROGRESS) for r in rows], dtype=np.int8)
        ended = col("ended")
        # a deadline that passed while the patient was in a run or in transit is a loss at the deadline
        late = (outcome == IN_PROGRESS) & (col("deadline", math.inf) <= c.horizon)
        outcome[late] = LOST
        ended[late] = col("deadline")[late]
        empty = np.zeros((len(c.res_cap), c.days))
        return RunOutput(
            seed=0,
            horizon_days=c.horizon,
            warmup_days=c.warmup,
            cooldown_days=c.cooldown,
            hospitals=c.hospitals,
            sites=c.sites,
            hospital=np.array([r["hospital"] for r in rows], dtype=np.int32),
            arrival=col("arrival"),
            apheresis=col("apheresis"),
            site=np.array([r["site"] for r in rows], dtype=np.int32),
            manufacture_start=col("manufacture_start"),
            release=col("release"),
            infusion=col("infusion"),
            ended=ended,
            attempts=np.array([r["attempts"] for r in rows], dtype=np.int32),
            outcome=outcome,
            bridged=np.array([r.get("bridged", False) for r in rows], dtype=np.bool_),
            transport_cost=col("cost"),
            bed_days=col("bed", 0.0),
            resource_node=c.resource_node,
            resource_kind=c.res_kind.astype(np.int8),
            capacity=c.res_cap.astype(np.int32),
            busy=empty,  # not sampled: the comparison uses per-patient figures
            queue=empty.copy(),
        )


def simulate_simpy(compiled: Compiled, seed: int) -> RunOutput:
    return SimPyTwin(compiled, seed).run()
