"""Synthetic patient journeys, played through the rail's use cases in simulated time.

Every step is a real service call (enrol, book, advance with label scans, custody checkpoints, QA release with
an electronic signature), so the demo database is exactly what a few weeks of a real network would leave
behind: orders in every stage, a custody ledger that verifies, and the occasional hard stop at a mix-up.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from importlib import resources
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine

from cellrail.kernel.clock import ManualClock
from cellrail.kernel.errors import CellRailError, IdentityMismatch, NoCapacity
from cellrail.kernel.identifiers import DIN
from cellrail.rail.access_control import SYSTEM, Principal, Role
from cellrail.rail.accounts import NewUser, create_user
from cellrail.rail.audit import publish_checkpoints
from cellrail.rail.network import Network
from cellrail.rail.orders import Order
from cellrail.rail.orders import OrderState as S
from cellrail.rail.recording import NETWORK_LOG, origin
from cellrail.rail.services import (
    AdvanceOrder,
    BookOrder,
    CustodyScan,
    EnrollPatient,
    LabelScan,
    OpenSlots,
    advance,
    book,
    enroll,
    open_slots,
    record_scans,
    register_network,
)
from cellrail.store.keyring import create_key
from cellrail.store.uow import SqlUnitOfWork

DEMO_PASSWORD = "cellrail-demo-2026"  # printed by `make demo`; a demo database holds no real patient


class JourneyParameters(BaseModel):
    """Sourced in data/journey_parameters.yaml."""

    model_config = ConfigDict(frozen=True)

    arrivals_per_hospital_per_week: float
    workup_days: float
    handling_hours_before_shipping: float
    qc_release_days: float
    out_of_specification_probability: float
    withdrawal_probability: float
    days_from_receipt_to_infusion: float
    booking_retry_days: float
    booking_attempts: int
    label_mix_up_probability: float

    @classmethod
    def defaults(cls) -> JourneyParameters:
        text = resources.files("cellrail.demo").joinpath("data/journey_parameters.yaml").read_text(encoding="utf-8")
        return cls.model_validate({k: v["value"] for k, v in yaml.safe_load(text).items()})


@dataclass
class Cast:
    """The people of the demo network: an operator per node, a QP per manufacturing node, a courier, an auditor."""

    operators: dict[str, Principal] = field(default_factory=dict)
    qualified_persons: dict[str, Principal] = field(default_factory=dict)
    courier: Principal = SYSTEM
    auditor: Principal = SYSTEM


@dataclass
class PlayStats:
    enrolled: int = 0
    booked: int = 0
    steps: int = 0
    custody_scans: int = 0
    mix_ups_stopped: int = 0
    rejected: int = 0
    lost_waiting_for_slot: int = 0
    withdrawn: int = 0
    checkpoints: int = 0


def with_site_keys(network_text: str, keys_dir: Path) -> str:
    """The network file with a new checkpoint signing key for every site (and the network log) listed in it."""
    document = yaml.safe_load(network_text)
    network_id = document["network"]["id"]
    document["network"]["public_key"] = create_key(keys_dir, origin(network_id, NETWORK_LOG))
    for node in document["nodes"]:
        node["public_key"] = create_key(keys_dir, origin(network_id, node["id"]))
    return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


def set_up(engine: Engine, network_text: str, file: str, clock: ManualClock, first_day: date, days: int) -> Cast:
    """Register the network, create the cast, and open slots at every node for the whole period."""
    with SqlUnitOfWork(engine) as uow:
        network = register_network(uow, network_text, file, SYSTEM, clock)
    cast = Cast()

    def user(name: str, node: str, role: Role) -> Principal:
        command = NewUser(
            username=name, full_name=name.replace("-", " ").title(), node=node, roles=[role], password=DEMO_PASSWORD
        )
        with SqlUnitOfWork(engine) as uow:
            return create_user(uow, command, SYSTEM, clock)

    for node in network.nodes:
        cast.operators[node.id] = user(f"op-{node.id}", node.id, Role.NODE_OPERATOR)
        if node.manufactures:
            cast.qualified_persons[node.id] = user(f"qp-{node.id}", node.id, Role.QUALIFIED_PERSON)
        with SqlUnitOfWork(engine) as uow:
            open_slots(uow, OpenSlots(node=node.id, first_day=first_day, days=days), SYSTEM, clock)
    first = network.nodes[0].id
    cast.courier = user("courier", first, Role.COURIER)
    cast.auditor = user("auditor", first, Role.AUDITOR)
    user("admin", first, Role.NETWORK_ADMIN)
    return cast


class JourneyPlayer:
    """A discrete-event loop whose events are service calls; simulated time drives the store's clock."""

    def __init__(
        self,
        engine: Engine,
        network: Network,
        cast: Cast,
        clock: ManualClock,
        rng: random.Random,
        parameters: JourneyParameters | None = None,
        signers: Mapping[str, Ed25519PrivateKey] | None = None,
    ) -> None:
        self.engine = engine
        self.network = network
        self.cast = cast
        self.clock = clock
        self.rng = rng
        self.p = parameters or JourneyParameters.defaults()
        self.stats = PlayStats()
        self.signers = signers or {}
        self._queue: list[tuple[datetime, int, Callable[[], object]]] = []
        self._tie = itertools.count()
        self._mrn: dict[str, str] = {}

    def at(self, moment: datetime, step: Callable[[], object]) -> None:
        heapq.heappush(self._queue, (moment, next(self._tie), step))

    def play(self, start: datetime, end: datetime, progress: Callable[[float], None] | None = None) -> PlayStats:
        """Generate arrivals in [start, end) and play every step that falls before ``end``."""
        weekly = self.p.arrivals_per_hospital_per_week
        for hospital in self.network.hospitals():
            moment = start
            while True:
                moment += timedelta(days=self.rng.expovariate(weekly / 7.0))
                if moment >= end:
                    break
                self.at(moment, partial(self._arrive, hospital.id))
        if self.signers:
            self.at(start, lambda: self._checkpoint_daily(end))
        total = (end - start).total_seconds()
        while self._queue and self._queue[0][0] < end:
            moment, _, step = heapq.heappop(self._queue)
            self.clock.set(moment)
            step()
            if progress is not None:
                progress((moment - start).total_seconds() / total)
        return self.stats

    def _checkpoint_daily(self, end: datetime) -> None:
        """Each site signs a checkpoint of its log once a day, as a deployment's scheduler would."""
        with SqlUnitOfWork(self.engine) as uow:
            self.stats.checkpoints += len(publish_checkpoints(uow, self.signers, self.clock))
        following = self.clock.now() + timedelta(days=1)
        if following < end:
            self.at(following, lambda: self._checkpoint_daily(end))

    # -- the steps -------------------------------------------------------------------------------------------

    def _arrive(self, hospital: str) -> None:
        number = self.stats.enrolled + 1
        mrn = f"MRN-{hospital[-4:].upper()}-{number:05d}"
        command = EnrollPatient(
            treatment_site=hospital,
            mrn=mrn,
            full_name=f"Synthetic Patient {number}",
            birth_date=date(1950 + self.rng.randrange(50), 1 + self.rng.randrange(12), 1 + self.rng.randrange(28)),
        )
        with SqlUnitOfWork(self.engine) as uow:
            order = enroll(uow, command, self.cast.operators[hospital], self.clock)
        self._mrn[order.coi] = mrn
        self.stats.enrolled += 1
        self._book(order, attempt=1)

    def _book(self, order: Order, attempt: int) -> None:
        operator = self.cast.operators[order.treatment_site]
        earliest = self.clock.now() + timedelta(days=self.p.workup_days)
        try:
            with SqlUnitOfWork(self.engine) as uow:
                booking = book(uow, order.coi, BookOrder(earliest=earliest), operator, self.clock)
        except NoCapacity:
            if attempt >= self.p.booking_attempts:
                self.stats.lost_waiting_for_slot += 1
                self._move(order.coi, S.WITHDRAWN, operator, reason="no apheresis and manufacturing slot in time")
            else:
                retry = self.clock.now() + timedelta(days=self.p.booking_retry_days)
                self.at(retry, lambda: self._book(order, attempt + 1))
            return
        self.stats.booked += 1
        if self.rng.random() < self.p.withdrawal_probability:
            leaves = booking.apheresis.ends + timedelta(days=self.rng.uniform(1, 20))
            self.at(leaves, lambda: self._withdraw(order.coi))
        run_days = booking.manufacturing.ends - booking.manufacturing.starts
        self.at(booking.apheresis.ends, lambda: self._collect(order.coi, booking.manufacturing.starts, run_days))

    def _move(
        self,
        coi: str,
        to: S,
        actor: Principal,
        *,
        din: str | None = None,
        reason: str | None = None,
        password: str | None = None,
    ) -> Order | None:
        """One lifecycle step through the service layer; None if the order has meanwhile closed."""
        scan = None if din is None else LabelScan(coi=coi, din=din)
        mrn = self._mrn.get(coi) if to is S.INFUSED else None
        command = AdvanceOrder(to=to, scan=scan, reason=reason, password=password, patient_mrn=mrn)
        try:
            with SqlUnitOfWork(self.engine) as uow:
                order = advance(uow, coi, command, actor, self.clock)
        except IdentityMismatch:
            raise
        except CellRailError:
            return None  # e.g. the patient was withdrawn before this step came due
        self.stats.steps += 1
        return order

    def _handoff(self, coi: str, to: S, actor: Principal, din: str) -> Order | None:
        """A hand-off with a label scan; now and then the wrong bag is scanned first and the rail stops it."""
        if self.rng.random() < self.p.label_mix_up_probability:
            wrong = DIN.parse(din)
            other = str(DIN(wrong.fin, wrong.year, (wrong.sequence % 999_999) + 1))
            try:
                self._move(coi, to, actor, din=other)
            except IdentityMismatch:
                self.stats.mix_ups_stopped += 1
        return self._move(coi, to, actor, din=din)

    def _checkpoint(self, coi: str, din: str, node: str, note: str, temperature_c: float) -> None:
        scan = CustodyScan(label=LabelScan(coi=coi, din=din), node=node, note=note, temperature_c=temperature_c)
        with SqlUnitOfWork(self.engine) as uow:
            record_scans(uow, [scan], self.cast.courier, self.clock)
        self.stats.custody_scans += 1

    def _collect(self, coi: str, run_starts: datetime, run_days: timedelta) -> None:
        site_operator = self._operator_for(coi, "site")
        order = self._move(coi, S.COLLECTED, site_operator)
        if order is None or order.collection_din is None:
            return
        din = order.collection_din
        ship = self.clock.now() + timedelta(hours=self.p.handling_hours_before_shipping)
        self.at(ship, lambda: self._ship_cells(order, din, run_starts, run_days))

    def _ship_cells(self, order: Order, din: str, run_starts: datetime, run_days: timedelta) -> None:
        if (
            self._move(order.coi, S.SHIPPED_TO_MANUFACTURING, self.cast.operators[order.treatment_site], din=din)
            is None
        ):
            return
        self._checkpoint(order.coi, din, order.treatment_site, "picked up by courier", round(self.rng.uniform(3, 7), 1))
        maker = self._maker(order.coi)
        arrival = self.network.earliest_arrival(order.treatment_site, maker, self.clock.now()) or self.clock.now()
        self.at(arrival, lambda: self._receive_cells(order.coi, maker, din, run_starts, run_days))

    def _receive_cells(self, coi: str, maker: str, din: str, run_starts: datetime, run_days: timedelta) -> None:
        if self._handoff(coi, S.RECEIVED_AT_MANUFACTURING, self.cast.courier, din) is None:
            return
        self.at(max(run_starts, self.clock.now()), lambda: self._start_run(coi, maker, din, run_days))

    def _start_run(self, coi: str, maker: str, din: str, run_days: timedelta) -> None:
        if self._move(coi, S.MANUFACTURING, self.cast.operators[maker], din=din) is not None:
            self.at(self.clock.now() + run_days, lambda: self._finish_run(coi, maker, din, run_days))

    def _finish_run(self, coi: str, maker: str, din: str, run_days: timedelta) -> None:
        if self._move(coi, S.QC_PENDING, self.cast.operators[maker]) is not None:
            decided = self.clock.now() + timedelta(days=self.p.qc_release_days)
            self.at(decided, lambda: self._qa_decision(coi, maker, din, run_days))

    def _qa_decision(self, coi: str, maker: str, din: str, run_days: timedelta) -> None:
        qp = self.cast.qualified_persons[maker]
        if self.rng.random() < self.p.out_of_specification_probability:
            rejected = self._move(coi, S.REJECTED, qp, reason="viability below specification", password=DEMO_PASSWORD)
            if rejected is None:
                return
            self.stats.rejected += 1
            if rejected.manufacturing_attempts < 2:
                self.at(self.clock.now() + timedelta(days=1), lambda: self._start_run(coi, maker, din, run_days))
            else:
                self._move(coi, S.CANCELLED, self._operator_for(coi, "site"), reason="second manufacturing failure")
            return
        released = self._move(coi, S.RELEASED, qp, password=DEMO_PASSWORD)
        if released is not None and released.product_din is not None:
            product = released.product_din
            self.at(self.clock.now() + timedelta(hours=4), lambda: self._ship_product(released, maker, product))

    def _ship_product(self, order: Order, maker: str, product: str) -> None:
        if self._move(order.coi, S.SHIPPED_TO_SITE, self.cast.operators[maker], din=product) is None:
            return
        self._checkpoint(order.coi, product, maker, "dry shipper sealed", round(self.rng.uniform(-190, -170), 1))
        arrival = self.network.earliest_arrival(maker, order.treatment_site, self.clock.now()) or self.clock.now()
        self.at(arrival, lambda: self._receive_product(order, product))

    def _receive_product(self, order: Order, product: str) -> None:
        if self._handoff(order.coi, S.RECEIVED_AT_SITE, self.cast.operators[order.treatment_site], product) is None:
            return
        infusion = self.clock.now() + timedelta(days=self.p.days_from_receipt_to_infusion)
        self.at(
            infusion, lambda: self._handoff(order.coi, S.INFUSED, self.cast.operators[order.treatment_site], product)
        )

    def _withdraw(self, coi: str) -> None:
        if self._move(coi, S.WITHDRAWN, self._operator_for(coi, "site"), reason="clinical deterioration") is not None:
            self.stats.withdrawn += 1

    def _order(self, coi: str) -> Order:
        with SqlUnitOfWork(self.engine, write=False) as uow:
            order = uow.orders.get(coi)
        assert order is not None
        return order

    def _maker(self, coi: str) -> str:
        maker = self._order(coi).manufacturing_node
        assert maker is not None
        return maker

    def _operator_for(self, coi: str, where: str) -> Principal:
        order = self._order(coi)
        node = order.treatment_site if where == "site" else (order.manufacturing_node or order.treatment_site)
        return self.cast.operators[node]


def demo_window(weeks: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The simulated period: ``weeks`` weeks ending at the current hour (UTC)."""
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(weeks=weeks), end
