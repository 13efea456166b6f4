"""Which manufacturing sites a hospital can use, and by which legs the cells travel there and back.

Rules (documented in docs/validation.md): a hospital that manufactures uses its own site (no transport) and
its point-of-care units serve only its own patients; every other site it may use is a regional hub or central
factory reachable by lanes both ways, relayed only through hubs and factories (never through another hospital).
Each route is the path with the fewest transport hours (Dijkstra); the engine applies the courier days of every leg.
The primary site is the hospital's own, else the nearest.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from cellrail.rail.network import Lane, Network, NodeKind


@dataclass(frozen=True)
class Leg:
    origin: str
    destination: str
    hours: float
    weekdays: tuple[int, ...]  # Monday = 0
    cold_chain: str


@dataclass(frozen=True)
class Candidate:
    site: str
    out: tuple[Leg, ...]  # hospital -> site
    back: tuple[Leg, ...]  # site -> hospital

    @property
    def hours(self) -> float:
        return sum(leg.hours for leg in self.out)


@dataclass(frozen=True)
class Routes:
    by_hospital: dict[str, tuple[Candidate, ...]]  # primary first
    unserved: dict[str, str]  # hospital with demand -> why no site can serve it


def _leg(origin: str, destination: str, lane: Lane) -> Leg:
    return Leg(origin, destination, lane.transport_hours, tuple(d.number for d in lane.days), lane.cold_chain.value)


def _shortest(network: Network, origin: str, destination: str) -> tuple[Leg, ...] | None:
    hospitals = {n.id for n in network.hospitals()}
    adjacency: dict[str, list[Leg]] = {}
    for a, b, lane in network.legs():
        adjacency.setdefault(a, []).append(_leg(a, b, lane))
    best: dict[str, float] = {origin: 0.0}
    path: dict[str, tuple[Leg, ...]] = {origin: ()}
    queue: list[tuple[float, str]] = [(0.0, origin)]
    while queue:
        hours, here = heapq.heappop(queue)
        if here == destination:
            return path[here]
        if hours > best[here] or (here != origin and here in hospitals):
            continue  # cells do not transit through another hospital
        for leg in adjacency.get(here, []):
            total = hours + leg.hours
            if total < best.get(leg.destination, float("inf")):
                best[leg.destination] = total
                path[leg.destination] = (*path[here], leg)
                heapq.heappush(queue, (total, leg.destination))
    return None


def plan_routes(network: Network, with_demand: tuple[str, ...]) -> Routes:
    """Candidates of every hospital; hospitals with demand and no candidate are listed in ``unserved``."""
    shared = [n for n in network.manufacturing_nodes() if n.kind is not NodeKind.HOSPITAL]
    by_hospital: dict[str, tuple[Candidate, ...]] = {}
    unserved: dict[str, str] = {}
    for hospital in network.hospitals():
        own = [Candidate(hospital.id, (), ())] if hospital.manufactures else []
        others = []
        for site in shared:
            out = _shortest(network, hospital.id, site.id)
            back = _shortest(network, site.id, hospital.id)
            if out is not None and back is not None:
                others.append(Candidate(site.id, out, back))
        others.sort(key=lambda c: (c.hours, c.site))
        candidates = tuple(own + others)
        by_hospital[hospital.id] = candidates
        if not candidates and hospital.id in with_demand:
            unserved[hospital.id] = (
                f"hospital '{hospital.id}' has demand but no manufacturing site it can use: it does not manufacture "
                "and no lane route leads to a regional hub or central factory and back"
            )
    return Routes(by_hospital, unserved)
