"""A patient's journey, derived from the custody ledger alone: the timeline, each stage's duration, and
vein-to-vein time (end of apheresis to infusion). Nothing here is stored; it is recomputed from events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cellrail.rail.ledger import EventKind
from cellrail.rail.orders import OrderState


@dataclass(frozen=True)
class Milestone:
    state: OrderState
    at: datetime
    node: str
    actor: str


@dataclass(frozen=True)
class Stage:
    state: OrderState
    started: datetime
    ended: datetime | None

    @property
    def duration(self) -> timedelta | None:
        return None if self.ended is None else self.ended - self.started


@dataclass(frozen=True)
class Journey:
    order: str
    milestones: tuple[Milestone, ...]

    @property
    def stages(self) -> tuple[Stage, ...]:
        """Time spent in each state, in order; the last stage of an open order has no end."""
        items = self.milestones
        return tuple(Stage(m.state, m.at, items[i + 1].at if i + 1 < len(items) else None) for i, m in enumerate(items))

    def first(self, state: OrderState) -> datetime | None:
        return next((m.at for m in self.milestones if m.state is state), None)

    @property
    def vein_to_vein(self) -> timedelta | None:
        """From the (first) collection to infusion; None until the patient is infused."""
        collected, infused = self.first(OrderState.COLLECTED), self.first(OrderState.INFUSED)
        return None if collected is None or infused is None else infused - collected

    @property
    def state(self) -> OrderState | None:
        return self.milestones[-1].state if self.milestones else None


def journey_from_events(order: str, events: Iterable[Mapping[str, Any]]) -> Journey:
    """Build a journey from decoded ledger events of one order, in ledger order."""
    milestones = []
    for event in events:
        kind = event["kind"]
        if kind == EventKind.ORDER_ENROLLED:
            state = OrderState.ENROLLED
        elif kind in (EventKind.ORDER_MOVED, EventKind.ORDER_BOOKED):
            state = OrderState(event["data"]["to"])
        else:
            continue
        at = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
        milestones.append(Milestone(state, at, event["node"], event["actor"]))
    return Journey(order, tuple(milestones))
