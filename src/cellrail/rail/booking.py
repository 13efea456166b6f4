"""Capacity as bookable slots, and the rules for chaining an apheresis slot to a manufacturing slot.

An apheresis slot is only useful with a manufacturing slot that the collected cells can reach in time, so the
two are booked together or not at all (see ``services.book``). This module is the pure part: which slots a
node's capabilities give, and the window in which manufacturing must start after a collection.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from cellrail.rail.network import ColdChain, Network, Node

APHERESIS_HOURS = 4  # a leukapheresis session with set-up; chairs are turned over twice a day at most
_EPOCH = date(2024, 1, 1)  # a Monday: manufacturing cycles are anchored here so windows opened apart align


class Resource(StrEnum):
    APHERESIS = "apheresis"
    MANUFACTURING = "manufacturing"


@dataclass(frozen=True)
class SlotSpec:
    node: str
    resource: Resource
    platform: str
    unit: int
    starts: datetime
    ends: datetime


def _local(node: Node, day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=node.tz)


def plan_slots(node: Node, first_day: date, days: int) -> list[SlotSpec]:
    """The slots ``node`` offers on ``days`` days from ``first_day`` (local dates), from its capabilities."""
    operating = {d.number for d in node.operating_days}
    caps = node.capabilities
    slots: list[SlotSpec] = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        if day.weekday() not in operating:
            continue
        for chair in range(caps.apheresis_chairs):
            for turn in range(caps.collections_per_chair_per_day):
                starts = _local(node, day, 8 + turn * (APHERESIS_HOURS + 1))
                ends = starts + timedelta(hours=APHERESIS_HOURS)
                slots.append(SlotSpec(node.id, Resource.APHERESIS, "", chair, starts, ends))
    last_day = first_day + timedelta(days=days)
    for platform in caps.manufacturing:
        cycle = math.ceil(platform.run_days) + 1  # one changeover day between runs on a unit
        slack = cycle - platform.run_days
        for unit in range(platform.units):
            stagger = (unit * cycle) // max(platform.units, 1)
            k = max(0, ((first_day - _EPOCH).days - stagger) // cycle)
            while True:
                nominal = _EPOCH + timedelta(days=stagger + k * cycle)
                k += 1
                if nominal >= last_day:
                    break
                start_day = nominal
                # A run may wait for an operating day only while it still ends before the unit's next run.
                while start_day.weekday() not in operating and (start_day - nominal).days + 1 <= slack:
                    start_day += timedelta(days=1)
                if start_day < first_day or start_day.weekday() not in operating:
                    continue
                starts = _local(node, start_day, 9)
                ends = starts + timedelta(days=platform.run_days)
                slots.append(SlotSpec(node.id, Resource.MANUFACTURING, platform.platform, unit, starts, ends))
    return slots


@dataclass(frozen=True)
class ManufacturingWindow:
    node: str
    earliest: datetime
    latest: datetime


def manufacturing_windows(
    network: Network, site: str, collection_ends: datetime, holding_limits: Mapping[ColdChain, timedelta]
) -> list[ManufacturingWindow]:
    """Where cells collected at ``site`` can be made, and when a run must start there; soonest first.

    The latest start is bounded by the strictest cold chain of the lanes leaving the site (fresh cells cannot
    wait as long as cryopreserved ones); cells made on site are held fresh.
    """
    chains = [lane.cold_chain for a, _, lane in network.legs() if a == site] or [ColdChain.FRESH_2_8C]
    limit = min(holding_limits[c] for c in chains)
    windows = []
    for maker in network.manufacturing_nodes():
        arrival = network.earliest_arrival(site, maker.id, collection_ends)
        latest = collection_ends + (holding_limits[ColdChain.FRESH_2_8C] if maker.id == site else limit)
        if arrival is not None and arrival <= latest:
            windows.append(ManufacturingWindow(maker.id, arrival, latest))
    return sorted(windows, key=lambda w: (w.earliest, w.node))
