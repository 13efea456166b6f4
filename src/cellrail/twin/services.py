"""Twin use cases that need the store: calibrating a scenario from the rail's custody ledger."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import Engine

from cellrail.rail.journey import Journey, journey_from_events
from cellrail.rail.ledger import EventKind
from cellrail.store.uow import SqlUnitOfWork
from cellrail.twin.calibrate import (
    CalibrationNote,
    Fit,
    calibrated_yaml,
    fit_stages,
    open_stages,
    stage_durations,
    withhold_small,
)
from cellrail.twin.scenario import scenario_from_text


def ledger_journeys(engine: Engine, page: int = 500) -> Iterator[tuple[Journey, str | None]]:
    """Every order's journey, rebuilt from its ledger events, with the platform its booking named (if any).

    Read-only, one page of orders per transaction.
    """
    offset = 0
    while True:
        with SqlUnitOfWork(engine, write=False) as uow:
            orders = uow.orders.visible(None, None, page, offset)
            found = []
            for order in orders:
                events = uow.ledger.for_order(order.coi)
                found.append((journey_from_events(order.coi, events), _booked_platform(events)))
        yield from found
        if len(orders) < page:
            return
        offset += page


def _booked_platform(events: list[dict[str, Any]]) -> str | None:
    platform = None
    for event in events:
        if event["kind"] == EventKind.ORDER_BOOKED:
            manufacturing = event.get("data", {}).get("manufacturing") or {}
            platform = manufacturing.get("platform") or platform
    return platform


@dataclass(frozen=True)
class Calibration:
    orders: int
    fits: list[Fit]
    text: str  # the calibrated scenario YAML
    open: dict[str, int]  # stage -> orders still in it (right-censored, not in the fits)


def calibrate_scenario(engine: Engine, scenario_text: str, file: str, today: date, min_n: int = 20) -> Calibration:
    """Fit every timed stage to the ledger's orders and write the fits into the scenario's ``process`` section.

    The scenario is checked before (its problems name file and line) and after (the result must load).
    """
    scenario = scenario_from_text(scenario_text, file)
    platform_of = {
        node.id: (node.capabilities.manufacturing[0].platform if len(node.capabilities.manufacturing) == 1 else None)
        for node in scenario.network.manufacturing_nodes()
    }
    found = list(ledger_journeys(engine))
    journeys = [journey for journey, _ in found]
    booked = {journey.order: platform for journey, platform in found if platform}
    fits = fit_stages(stage_durations(journeys, platform_of_order=booked), platform_of)
    if not scenario.process.cryopreservation.enabled:  # a fresh product ships at release: the hold is not used
        fits = [replace(f, target=None) if f.target == ("cryopreservation", "hold") else f for f in fits]
    fits = withhold_small(fits, min_n)
    database = engine.url.render_as_string(hide_password=True)
    text = calibrated_yaml(scenario_text, file, fits, CalibrationNote(database, len(journeys), today))
    scenario_from_text(text, file)
    return Calibration(len(journeys), fits, text, open_stages(journeys))
