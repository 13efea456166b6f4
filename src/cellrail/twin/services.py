"""Twin use cases that need the store: calibrating a scenario from the rail's custody ledger."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine

from cellrail.rail.journey import Journey, journey_from_events
from cellrail.store.uow import SqlUnitOfWork
from cellrail.twin.calibrate import CalibrationNote, Fit, calibrated_yaml, fit_stages, stage_durations
from cellrail.twin.scenario import scenario_from_text


def ledger_journeys(engine: Engine, page: int = 500) -> Iterator[Journey]:
    """Every order's journey, rebuilt from its ledger events (read-only, one page of orders per transaction)."""
    offset = 0
    while True:
        with SqlUnitOfWork(engine, write=False) as uow:
            orders = uow.orders.visible(None, None, page, offset)
            journeys = [journey_from_events(order.coi, uow.ledger.for_order(order.coi)) for order in orders]
        yield from journeys
        if len(orders) < page:
            return
        offset += page


@dataclass(frozen=True)
class Calibration:
    orders: int
    fits: list[Fit]
    text: str  # the calibrated scenario YAML


def calibrate_scenario(engine: Engine, scenario_text: str, file: str, today: date) -> Calibration:
    """Fit every timed stage to the ledger's orders and write the fits into the scenario's ``process`` section.

    The scenario is checked before (its problems name file and line) and after (the result must load).
    """
    scenario = scenario_from_text(scenario_text, file)
    platform_of = {
        node.id: (node.capabilities.manufacturing[0].platform if len(node.capabilities.manufacturing) == 1 else None)
        for node in scenario.network.manufacturing_nodes()
    }
    journeys = list(ledger_journeys(engine))
    fits = fit_stages(stage_durations(journeys), platform_of)
    database = engine.url.render_as_string(hide_password=True)
    text = calibrated_yaml(scenario_text, file, fits, CalibrationNote(database, len(journeys), today))
    scenario_from_text(text, file)
    return Calibration(len(journeys), fits, text)
