"""The network registry: nodes with their capabilities, and the lanes that carry cells between them.

A network is written as YAML (see ``examples/``) and validated in two steps: the shape by Pydantic, then the
rules that need the whole network (unknown nodes in lanes, hospitals no manufacturing node can reach), so the
operator gets every problem at once with its file, line and field.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cellrail.kernel.errors import InvalidInput, Problem
from cellrail.kernel.identifiers import FIN_PATTERN
from cellrail.kernel.yaml_source import YamlDocument, parse_yaml

NodeId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="Short slug, e.g. 'h-shanghai'")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class NodeKind(StrEnum):
    HOSPITAL = "hospital"
    REGIONAL_HUB = "regional_hub"
    CENTRAL_FACTORY = "central_factory"


class ColdChain(StrEnum):
    """How cells travel on a lane."""

    FRESH_2_8C = "fresh_2_8c"
    CRYO_VAPOUR_LN2 = "cryo_vapour_ln2"
    CONTROLLED_AMBIENT = "controlled_ambient"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        return list(Weekday).index(self)


WORKING_WEEK = (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)


class Location(_Strict):
    city: str = Field(min_length=1)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class ManufacturingPlatform(_Strict):
    """A closed, automated platform (e.g. CliniMACS Prodigy, Cocoon): units in parallel, days per run."""

    platform: str = Field(min_length=1)
    units: int = Field(ge=0, le=10_000, description="Instruments that can run a batch at the same time")
    run_days: float = Field(gt=0, le=60, description="Days one manufacturing run holds a unit")


class Capabilities(_Strict):
    apheresis_chairs: int = Field(0, ge=0, le=1_000)
    collections_per_chair_per_day: int = Field(1, ge=1, le=4)
    manufacturing: tuple[ManufacturingPlatform, ...] = ()
    qc_lab: bool = False
    cryostorage_positions: int = Field(0, ge=0, le=10_000_000)
    infusion_beds: int = Field(0, ge=0, le=10_000)

    @property
    def manufacturing_units(self) -> int:
        return sum(p.units for p in self.manufacturing)


class Node(_Strict):
    id: NodeId
    name: str = Field(min_length=1)
    kind: NodeKind
    fin: str = Field(description="ISBT 128 Facility Identification Number that issues this node's DINs")
    timezone: str = "UTC"
    location: Location
    operating_days: tuple[Weekday, ...] = WORKING_WEEK
    capabilities: Capabilities = Capabilities()
    public_key: str | None = Field(
        None,
        description="Ed25519 verifier key of the site's checkpoints (C2SP note format, from `cellrail keys init`)",
    )

    @field_validator("fin")
    @classmethod
    def _fin(cls, value: str) -> str:
        if not FIN_PATTERN.match(value):
            raise ValueError(f"'{value}' is not an ISBT 128 FIN (5 characters, e.g. A9999)")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value not in available_timezones() and value != "UTC":
            raise ValueError(f"'{value}' is not an IANA time zone (e.g. Asia/Shanghai)")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def manufactures(self) -> bool:
        """A node can take a product only if it can both make it and test it for release."""
        return self.capabilities.manufacturing_units > 0 and self.capabilities.qc_lab


class Lane(_Strict):
    origin: NodeId = Field(alias="from")
    destination: NodeId = Field(alias="to")
    transport_hours: float = Field(gt=0, le=24 * 14)
    days: tuple[Weekday, ...] = Field(WORKING_WEEK, min_length=1, description="Days a courier departs")
    cold_chain: ColdChain = ColdChain.FRESH_2_8C
    bidirectional: bool = True


class NetworkInfo(_Strict):
    id: NodeId
    name: str = Field(min_length=1)
    description: str = ""
    sources: tuple[str, ...] = Field((), description="Where the figures in this file come from")
    public_key: str | None = Field(
        None, description="Ed25519 verifier key of the network-wide log (registrations, user accounts)"
    )


class Network(_Strict):
    """A whole network: the shared domain model of the rail, oversight and the twin."""

    network: NetworkInfo
    nodes: tuple[Node, ...] = Field(min_length=1)
    lanes: tuple[Lane, ...] = ()
    # Sections owned by other capabilities (the twin's demand and process); kept verbatim here.
    demand: dict[str, Any] | None = None
    process: dict[str, Any] | None = None

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    @property
    def node_ids(self) -> set[str]:
        return {n.id for n in self.nodes}

    def hospitals(self) -> list[Node]:
        return [n for n in self.nodes if n.kind is NodeKind.HOSPITAL]

    def manufacturing_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.manufactures]

    def legs(self) -> Iterator[tuple[str, str, Lane]]:
        """Every directed leg, both ways for bidirectional lanes."""
        for lane in self.lanes:
            yield lane.origin, lane.destination, lane
            if lane.bidirectional:
                yield lane.destination, lane.origin, lane

    def earliest_arrival(self, origin: str, destination: str, ready: datetime) -> datetime | None:
        """When cells ready at ``origin`` at ``ready`` can arrive at ``destination`` at the earliest.

        Couriers leave only on a lane's days (in the origin node's time zone); a leg can leave the moment the
        cells are ready on such a day, otherwise at 08:00 local on the next one. Returns None if unreachable.
        """
        if origin == destination:
            return ready
        best: dict[str, datetime] = {origin: ready}
        queue: list[tuple[datetime, str]] = [(ready, origin)]
        adjacency: dict[str, list[tuple[str, Lane]]] = {}
        for a, b, lane in self.legs():
            adjacency.setdefault(a, []).append((b, lane))
        while queue:
            at, here = heapq.heappop(queue)
            if here == destination:
                return at
            if at > best.get(here, at):
                continue
            for there, lane in adjacency.get(here, []):
                arrival = _next_departure(at, lane.days, self.node(here).tz) + timedelta(hours=lane.transport_hours)
                if there not in best or arrival < best[there]:
                    best[there] = arrival
                    heapq.heappush(queue, (arrival, there))
        return None

    def reachable(self, origin: str) -> set[str]:
        seen = {origin}
        frontier = [origin]
        while frontier:
            here = frontier.pop()
            for a, b, _ in self.legs():
                if a == here and b not in seen:
                    seen.add(b)
                    frontier.append(b)
        return seen


def _next_departure(ready: datetime, days: tuple[Weekday, ...], tz: ZoneInfo) -> datetime:
    local = ready.astimezone(tz)
    allowed = {d.number for d in days}
    if local.weekday() in allowed:
        return ready
    for ahead in range(1, 8):
        day = local + timedelta(days=ahead)
        if day.weekday() in allowed:
            return day.replace(hour=8, minute=0, second=0, microsecond=0).astimezone(ready.tzinfo)
    return ready  # unreachable: ``days`` is never empty


def network_problems(network: Network, document: YamlDocument | None = None) -> list[Problem]:
    """Rules that need the whole network; each problem names the field that breaks it."""

    def problem(loc: tuple[str | int, ...], message: str) -> Problem:
        if document is not None:
            return document.problem(loc, message)
        return Problem(".".join(str(p) for p in loc), message)

    problems: list[Problem] = []
    seen_ids: dict[str, int] = {}
    seen_fins: dict[str, int] = {}
    for index, node in enumerate(network.nodes):
        if node.id in seen_ids:
            problems.append(problem(("nodes", index, "id"), f"duplicate node id '{node.id}'"))
        seen_ids.setdefault(node.id, index)
        if node.fin in seen_fins:
            problems.append(problem(("nodes", index, "fin"), f"FIN '{node.fin}' is already used by another node"))
        seen_fins.setdefault(node.fin, index)
        caps = node.capabilities
        if node.kind is NodeKind.HOSPITAL and caps.apheresis_chairs == 0:
            problems.append(
                problem(
                    ("nodes", index, "capabilities", "apheresis_chairs"),
                    f"hospital '{node.id}' has no apheresis chair, so it cannot collect cells",
                )
            )
        if node.kind is NodeKind.HOSPITAL and caps.infusion_beds == 0:
            problems.append(
                problem(
                    ("nodes", index, "capabilities", "infusion_beds"),
                    f"hospital '{node.id}' has no infusion bed, so it cannot treat patients",
                )
            )
        if caps.manufacturing_units > 0 and not caps.qc_lab:
            problems.append(
                problem(
                    ("nodes", index, "capabilities", "qc_lab"),
                    f"node '{node.id}' manufactures but has no QC lab to test products for release",
                )
            )
        if node.kind is not NodeKind.HOSPITAL and caps.manufacturing_units == 0:
            problems.append(
                problem(
                    ("nodes", index, "capabilities", "manufacturing"),
                    f"{node.kind.value} '{node.id}' has no manufacturing units",
                )
            )
    for index, lane in enumerate(network.lanes):
        for end, key in ((lane.origin, "from"), (lane.destination, "to")):
            if end not in seen_ids:
                problems.append(problem(("lanes", index, key), f"unknown node '{end}'"))
        if lane.origin == lane.destination:
            problems.append(problem(("lanes", index, "to"), "a lane must join two different nodes"))
    if any(p.field.startswith("lanes") for p in problems):
        return problems
    makers = {n.id for n in network.manufacturing_nodes()}
    for index, node in enumerate(network.nodes):
        if node.kind is not NodeKind.HOSPITAL or node.id in makers:
            continue
        there = network.reachable(node.id)
        served = [m for m in makers & there if node.id in network.reachable(m)]
        if not served:
            problems.append(
                problem(
                    ("nodes", index, "id"),
                    f"hospital '{node.id}' has no lane route to and from any manufacturing node",
                )
            )
    return problems


def network_change_problems(current: Network, new: Network, file: str = "<network>") -> list[Problem]:
    """A registered network may grow and change capacity, but every node keeps its id, kind and FIN: orders,
    users and issued ISBT 128 identifiers refer to them."""
    problems = []
    if new.network.id != current.network.id:
        problems.append(Problem("network.id", "the network id names every log and may not change", file))
    kept = {n.id: n for n in new.nodes}
    for node in current.nodes:
        replacement = kept.get(node.id)
        if replacement is None:
            problems.append(Problem("nodes", f"node '{node.id}' of the registered network is missing", file))
        elif (replacement.fin, replacement.kind) != (node.fin, node.kind):
            problems.append(Problem("nodes", f"node '{node.id}' may not change its FIN or kind once registered", file))
    return problems


def load_network(text: str, file: str = "<network>") -> Network:
    """Parse, validate and check a network file; raises InvalidInput listing every problem."""
    document = parse_yaml(text, file)
    network = document.validate(Network)
    problems = network_problems(network, document)
    if problems:
        raise InvalidInput(problems)
    return network


def network_json_schema() -> dict[str, Any]:
    return Network.model_json_schema(by_alias=True)
