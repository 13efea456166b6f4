"""The rail's use cases. Each takes a command, the acting principal and a unit of work, applies the domain
rules, records what happened in the custody ledger in the same transaction, and commits.

Adapters (API, CLI, demo) parse input, call one of these, and format the answer; no rule lives anywhere else.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

from cellrail.kernel.clock import Clock, as_utc, iso_utc
from cellrail.kernel.errors import Forbidden, IdentityMismatch, InvalidInput, NoCapacity, NotFound
from cellrail.kernel.identifiers import DIN, ChainOfIdentity
from cellrail.rail.access_control import Action, Principal, role_for
from cellrail.rail.accounts import confirm_signature
from cellrail.rail.booking import Resource, manufacturing_windows, plan_slots
from cellrail.rail.journey import Journey, journey_from_events
from cellrail.rail.ledger import CustodyEvent, EventKind, Signature
from cellrail.rail.network import Network, NodeKind, load_network, network_change_problems
from cellrail.rail.orders import SCAN_REQUIRED, Order, OrderState, custody_label, label_mismatch
from cellrail.rail.parameters import holding_limits
from cellrail.rail.ports import PatientRecord, Slot, UnitOfWork
from cellrail.rail.recording import origin, record

S = OrderState
CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of the server's clock a reported time may be
# Moments outside this range cannot be converted between time zones or stored on every engine.
EARLIEST_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9000, 1, 1, tzinfo=UTC)


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelScan(_Command):
    """A label as scanned or typed at a hand-off: the Chain of Identity id and the unit's DIN."""

    coi: str = Field(min_length=15, max_length=20, examples=["CHA1001260000AB"])
    din: str = Field(min_length=13, max_length=20, examples=["A100126000001Q"])


class EnrollPatient(_Command):
    treatment_site: str = Field(min_length=1, max_length=64)
    mrn: str = Field(min_length=1, max_length=64, description="Hospital medical record number (kept apart)")
    full_name: str = Field(min_length=1, max_length=200)
    birth_date: date
    at: AwareDatetime | None = None


class BookOrder(_Command):
    earliest: AwareDatetime | None = Field(None, description="Earliest apheresis start; default now")


class AdvanceOrder(_Command):
    to: OrderState
    at: AwareDatetime | None = None
    scan: LabelScan | None = None
    patient_mrn: str | None = Field(None, description="Bedside check: the patient's wristband identifier")
    password: SecretStr | None = Field(None, description="Electronic signature: the signer's password")
    reason: str | None = Field(None, max_length=2000)


class CustodyScan(_Command):
    """A custody checkpoint that does not move the order (courier transfer, storage check, logger reading)."""

    label: LabelScan
    node: str = Field(min_length=1, max_length=64)
    at: AwareDatetime | None = None
    note: str = Field("", max_length=500)
    temperature_c: float | None = Field(None, ge=-200, le=60)


class OpenSlots(_Command):
    node: str
    first_day: date = Field(ge=date(2000, 1, 1), le=date(8999, 1, 1))
    days: int = Field(ge=1, le=366)


@dataclass(frozen=True)
class Booking:
    order: Order
    apheresis: Slot
    manufacturing: Slot


# Which action each step needs and at which of the order's nodes it happens.
_SITE, _MAKER = "treatment_site", "manufacturing_node"
STEPS: dict[OrderState, tuple[Action, str]] = {
    S.COLLECTED: (Action.COLLECT, _SITE),
    S.SHIPPED_TO_MANUFACTURING: (Action.HAND_OFF, _SITE),
    S.RECEIVED_AT_MANUFACTURING: (Action.HAND_OFF, _MAKER),
    S.MANUFACTURING: (Action.MANUFACTURE, _MAKER),
    S.QC_PENDING: (Action.MANUFACTURE, _MAKER),
    S.RELEASED: (Action.RELEASE, _MAKER),
    S.REJECTED: (Action.REJECT, _MAKER),
    S.CANCELLED: (Action.WITHDRAW, _SITE),
    S.SHIPPED_TO_SITE: (Action.HAND_OFF, _MAKER),
    S.RECEIVED_AT_SITE: (Action.HAND_OFF, _SITE),
    S.INFUSED: (Action.INFUSE, _SITE),
    S.WITHDRAWN: (Action.WITHDRAW, _SITE),
}
SIGNATURE_MEANING = {S.RELEASED: "approved for release to the patient", S.REJECTED: "rejected: not for release"}
NEEDS_REASON = frozenset({S.REJECTED, S.CANCELLED, S.WITHDRAWN})
HAND_OFFS = frozenset({S.SHIPPED_TO_MANUFACTURING, S.RECEIVED_AT_MANUFACTURING, S.SHIPPED_TO_SITE, S.RECEIVED_AT_SITE})


def current_network(uow: UnitOfWork) -> Network:
    network = uow.networks.current()
    if network is None:
        raise NotFound("no network is registered; run `cellrail network register FILE` first")
    return network


def _in_range(at: datetime, field: str) -> datetime:
    try:
        fits = EARLIEST_MOMENT <= as_utc(at) < LATEST_MOMENT
    except OverflowError:
        fits = False
    if not fits:
        raise InvalidInput.one(field, f"{at.isoformat()} is out of range (years 2000 to 8999)")
    return at


def _moment(at: datetime | None, clock: Clock, field: str = "at") -> datetime:
    now = clock.now()
    if at is None:
        return now
    _in_range(at, field)
    if at > now + CLOCK_SKEW:
        raise InvalidInput.one(field, f"{iso_utc(at)} is in the future (server time {iso_utc(now)})")
    return at


def _visible_order(uow: UnitOfWork, coi: str, actor: Principal, *, for_update: bool = False) -> Order:
    """The order, if ``actor`` may see it; otherwise NotFound, so other nodes' orders do not leak."""
    canonical = str(ChainOfIdentity.parse(coi, "coi"))
    order = uow.orders.get(canonical, for_update=for_update)
    if order is None:
        raise NotFound(f"no order {canonical}")
    try:
        role_for(actor, Action.VIEW_ORDER, order.nodes)
    except Forbidden:
        raise NotFound(f"no order {canonical}") from None
    return order


def register_network(uow: UnitOfWork, text: str, file: str, actor: Principal, clock: Clock) -> Network:
    """Validate a network file and make it the network the rail runs on."""
    role = role_for(actor, Action.MANAGE_NETWORK, None)
    network = load_network(text, file)
    current = uow.networks.current()
    if current is not None:
        problems = network_change_problems(current, network, file)
        if problems:
            raise InvalidInput(problems)
    uow.networks.save(network.network.id, text, clock.now())
    data = {
        "network": network.network.id,
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "nodes": len(network.nodes),
        "lanes": len(network.lanes),
    }
    record(
        uow, clock, CustodyEvent(EventKind.NETWORK_REGISTERED, "network", actor.username, role, clock.now(), data=data)
    )
    uow.commit()
    return network


def open_slots(uow: UnitOfWork, command: OpenSlots, actor: Principal, clock: Clock) -> int:
    """Publish a node's apheresis and manufacturing capacity as bookable slots for a range of days."""
    network = current_network(uow)
    if command.node not in network.node_ids:
        raise InvalidInput.one("node", f"unknown node '{command.node}'")
    role = role_for(actor, Action.OPEN_SLOTS, {command.node})
    added = uow.slots.add_many(plan_slots(network.node(command.node), command.first_day, command.days))
    data = {"first_day": command.first_day.isoformat(), "days": command.days, "added": added}
    record(uow, clock, CustodyEvent(EventKind.SLOTS_OPENED, command.node, actor.username, role, clock.now(), data=data))
    uow.commit()
    return added


def enroll(uow: UnitOfWork, command: EnrollPatient, actor: Principal, clock: Clock) -> Order:
    """Open an order for a patient and give it its Chain of Identity id; identity data is stored apart."""
    network = current_network(uow)
    if command.treatment_site not in network.node_ids:
        raise InvalidInput.one("treatment_site", f"unknown node '{command.treatment_site}'")
    site = network.node(command.treatment_site)
    if site.kind is not NodeKind.HOSPITAL:
        raise InvalidInput.one("treatment_site", f"'{site.id}' is a {site.kind.value}, not a hospital")
    role = role_for(actor, Action.ENROLL, {site.id})
    at = _moment(command.at, clock)
    year = at.astimezone(site.tz).year % 100
    number = uow.counters.take(f"coi/{site.fin}/{year:02d}")
    coi = str(ChainOfIdentity.from_number(site.fin, year, number))
    key = uuid4().hex
    uow.patients.add(PatientRecord(key, site.id, command.mrn, command.full_name, command.birth_date))
    order = Order(coi=coi, patient_key=key, treatment_site=site.id)
    uow.orders.add(order, at)
    record(uow, clock, CustodyEvent(EventKind.ORDER_ENROLLED, site.id, actor.username, role, at, order=coi))
    uow.commit()
    return order


def book(uow: UnitOfWork, coi: str, command: BookOrder, actor: Principal, clock: Clock) -> Booking:
    """Book an apheresis slot together with a manufacturing slot the cells can reach in time, or nothing."""
    order = _visible_order(uow, coi, actor, for_update=True)
    role = role_for(actor, Action.BOOK, {order.treatment_site})
    scheduled = order.move_to(S.APHERESIS_SCHEDULED)
    network = current_network(uow)
    earliest = clock.now() if command.earliest is None else max(_in_range(command.earliest, "earliest"), clock.now())
    booked_at = max(clock.now(), _last_milestone(uow, order.coi) or clock.now())
    for apheresis in _free_apheresis(uow, order.treatment_site, earliest):
        windows = manufacturing_windows(network, order.treatment_site, apheresis.ends, holding_limits())
        if not windows or not uow.slots.claim(apheresis.id, order.coi):
            continue
        for window in windows:
            for run in uow.slots.free(window.node, Resource.MANUFACTURING, window.earliest, window.latest, 5):
                if uow.slots.claim(run.id, order.coi):
                    booked = replace(scheduled, manufacturing_node=window.node)
                    uow.orders.save(booked)
                    data = {
                        "from": order.state.value,
                        "to": booked.state.value,
                        "apheresis": {"slot": apheresis.id, "starts": iso_utc(apheresis.starts)},
                        "manufacturing": {
                            "node": window.node,
                            "slot": run.id,
                            "platform": run.platform,
                            "starts": iso_utc(run.starts),
                        },
                    }
                    event = CustodyEvent(
                        EventKind.ORDER_BOOKED, order.treatment_site, actor.username, role, booked_at, coi, data=data
                    )
                    record(uow, clock, event)
                    uow.commit()
                    return Booking(booked, replace(apheresis, order=coi), replace(run, order=coi))
        uow.slots.release(apheresis.id, order.coi)
    raise NoCapacity(
        f"no free apheresis slot at '{order.treatment_site}' from {iso_utc(earliest)} chains to a free "
        "manufacturing slot that the cells can reach in time; open more slots or try a later date"
    )


def _free_apheresis(uow: UnitOfWork, site: str, earliest: datetime, page: int = 100) -> Iterator[Slot]:
    """Every free apheresis slot at ``site`` from ``earliest``, soonest first, read a page at a time."""
    offset = 0
    while batch := uow.slots.free(site, Resource.APHERESIS, earliest, None, page, offset):
        yield from batch
        offset += len(batch)


def _last_milestone(uow: UnitOfWork, coi: str) -> datetime | None:
    journey = journey_from_events(coi, uow.ledger.for_order(coi))
    return journey.milestones[-1].at if journey.milestones else None


def _mismatch(
    uow: UnitOfWork,
    clock: Clock,
    order: Order,
    target: OrderState,
    field: str,
    scanned: str,
    actor: Principal,
    role: str,
    node: str,
    at: datetime,
) -> IdentityMismatch:
    """Record a failed identity check and commit it, so the hard stop is on the record even though the step fails."""
    data = {"attempted": target.value, "field": field}
    item = None if field == "patient_mrn" else scanned  # never write patient identifiers to the ledger
    record(uow, clock, CustodyEvent(EventKind.IDENTITY_MISMATCH, node, actor.username, role, at, order.coi, item, data))
    uow.commit()
    return IdentityMismatch(order.coi, field, "(withheld)" if item is None else scanned)


def advance(uow: UnitOfWork, coi: str, command: AdvanceOrder, actor: Principal, clock: Clock) -> Order:
    """Move an order one step along its lifecycle, with the label, bedside and signature checks the step needs."""
    order = _visible_order(uow, coi, actor, for_update=True)
    target = command.to
    if target is S.APHERESIS_SCHEDULED or target is S.ENROLLED:
        raise InvalidInput.one("to", f"'{target.value}' is reached by enrolling or booking, not by advancing")
    action, where = STEPS[target]
    node = getattr(order, where) or order.treatment_site
    role = role_for(actor, action, {node})
    moved = order.move_to(target)
    last = _last_milestone(uow, order.coi)
    at = _moment(command.at, clock) if command.at is not None or last is None else max(clock.now(), last)
    if last is not None and at < last:
        raise InvalidInput.one("at", f"{iso_utc(at)} is before the order's last step ({iso_utc(last)})")
    if target is S.COLLECTED:
        starts = [s.starts for s in uow.slots.held_by(order.coi) if s.resource is Resource.APHERESIS]
        if starts and at < min(starts):
            raise InvalidInput.one("at", f"{iso_utc(at)} is before the booked apheresis slot ({iso_utc(min(starts))})")
    if target is S.RELEASED:
        _check_independent_release(uow, order, actor)
    if target in NEEDS_REASON and not (command.reason and command.reason.strip()):
        raise InvalidInput.one("reason", f"a reason is required to mark an order '{target.value}'")
    item: str | None = None
    if target in SCAN_REQUIRED:
        if command.scan is None:
            raise InvalidInput.one("scan", f"a label scan is required to mark an order '{target.value}'")
        scanned_coi = str(ChainOfIdentity.parse(command.scan.coi, "scan.coi"))
        scanned_din = str(DIN.parse(command.scan.din, "scan.din"))
        wrong = label_mismatch(order, target, scanned_coi, scanned_din)
        if wrong is not None:
            raise _mismatch(
                uow,
                clock,
                order,
                target,
                f"scan.{wrong}",
                scanned_coi if wrong == "coi" else scanned_din,
                actor,
                role,
                node,
                at,
            )
        item = scanned_din
    if target is S.INFUSED:
        patient = uow.patients.get(order.patient_key)
        if command.patient_mrn is None:
            raise InvalidInput.one("patient_mrn", "the bedside check needs the patient's wristband identifier")
        if patient is None or command.patient_mrn.strip() != patient.mrn:
            raise _mismatch(uow, clock, order, target, "patient_mrn", command.patient_mrn, actor, role, node, at)
    signatures: tuple[Signature, ...] = ()
    if target in SIGNATURE_MEANING:
        confirm_signature(uow, actor, command.password)
        signatures = (Signature(actor.username, actor.full_name, SIGNATURE_MEANING[target], clock.now()),)
    data: dict[str, Any] = {"from": order.state.value, "to": target.value}
    if command.reason:
        data["reason"] = command.reason.strip()
    network = current_network(uow)
    if target in HAND_OFFS:
        witnessed = _counterparty_checkpoint(uow, network, order, node)
        if witnessed is not None:
            data["counterparty_checkpoint"] = witnessed
    if target is S.COLLECTED:
        moved = replace(moved, collection_din=_new_din(uow, network, order.treatment_site, at))
        item = data["din"] = moved.collection_din
    elif target is S.QC_PENDING:
        assert order.manufacturing_node is not None
        moved = replace(moved, product_din=_new_din(uow, network, order.manufacturing_node, at))
        item = data["din"] = moved.product_din
    elif target in (S.WITHDRAWN, S.CANCELLED):
        for slot in uow.slots.held_by(order.coi):
            if slot.starts > at:
                uow.slots.release(slot.id, order.coi)
    uow.orders.save(moved)
    event = CustodyEvent(EventKind.ORDER_MOVED, node, actor.username, role, at, order.coi, item, data, signatures)
    record(uow, clock, event)
    uow.commit()
    return moved


def _counterparty_checkpoint(uow: UnitOfWork, network: Network, order: Order, node: str) -> dict[str, Any] | None:
    """The other site's latest checkpoint, recorded in a hand-off so each log pins the other's history."""
    other = order.manufacturing_node if node == order.treatment_site else order.treatment_site
    if other is None or other == node:
        return None
    checkpoint = uow.checkpoints.latest(origin(network.network.id, other))
    if checkpoint is None:
        return None
    return {"origin": checkpoint.log, "size": checkpoint.size, "root": base64.b64encode(checkpoint.root).decode()}


def _check_independent_release(uow: UnitOfWork, order: Order, actor: Principal) -> None:
    """GMP segregation of duties: whoever manufactured a product may not certify it for release."""
    makers = {
        m.actor
        for m in journey_from_events(order.coi, uow.ledger.for_order(order.coi)).milestones
        if m.state in (S.MANUFACTURING, S.QC_PENDING)
    }
    if actor.username in makers:
        raise Forbidden(f"user '{actor.username}' manufactured order {order.coi} and may not also release it")


def _new_din(uow: UnitOfWork, network: Network, node_id: str, at: datetime) -> str:
    node = network.node(node_id)
    year = at.astimezone(node.tz).year % 100
    return str(DIN(node.fin, year, uow.counters.take(f"din/{node.fin}/{year:02d}")))


def record_scans(uow: UnitOfWork, scans: Sequence[CustodyScan], actor: Principal, clock: Clock) -> list[int]:
    """Record custody checkpoints in one transaction; returns their ledger sequence numbers.

    Each label must match its order (the collection bag before release, the product after); a mismatch is
    recorded as a hard stop and the whole batch is refused.
    """
    node_ids = current_network(uow).node_ids
    orders: dict[str, Order] = {}
    # A batch repeats the same few labels and nodes: parse each label text and check each node's permission once
    # (both are pure; a failure raises at its first occurrence, as without the caches).
    labels: dict[tuple[str, str], tuple[str, str]] = {}
    roles: dict[str, str] = {}
    events = []
    for index, scan in enumerate(scans):
        prefix = f"scans[{index}]."  # the same path as in the API's request body
        if scan.node not in node_ids:
            raise InvalidInput.one(f"{prefix}node", f"unknown node '{scan.node}'")
        label = (scan.label.coi, scan.label.din)
        if label not in labels:
            labels[label] = (
                str(ChainOfIdentity.parse(scan.label.coi, f"{prefix}label.coi")),
                str(DIN.parse(scan.label.din, f"{prefix}label.din")),
            )
        coi, din = labels[label]
        if coi not in orders:
            orders[coi] = _visible_order(uow, coi, actor)
        order = orders[coi]
        if scan.node not in roles:
            roles[scan.node] = role_for(actor, Action.HAND_OFF, {scan.node})
        role = roles[scan.node]
        at = _moment(scan.at, clock, f"{prefix}at")
        expected = order.expected_label(custody_label(order.state))
        if din != expected:
            raise _mismatch(uow, clock, order, order.state, f"{prefix}label.din", din, actor, role, scan.node, at)
        data: dict[str, Any] = {"state": order.state.value}
        if scan.note:
            data["note"] = scan.note
        if scan.temperature_c is not None:
            data["temperature_c"] = scan.temperature_c
        events.append(CustodyEvent(EventKind.CUSTODY_SCAN, scan.node, actor.username, role, at, coi, din, data))
    entries = record(uow, clock, *events)
    uow.commit()
    return [entry.seq for entry in entries]


def view_order(uow: UnitOfWork, coi: str, actor: Principal) -> Order:
    """One order, if ``actor`` may see it."""
    return _visible_order(uow, coi, actor)


@dataclass(frozen=True)
class Timeline:
    order: Order
    journey: Journey
    events: list[dict[str, Any]]


def timeline(uow: UnitOfWork, coi: str, actor: Principal) -> Timeline:
    """A patient's journey: milestones, stage durations and every custody event of the order."""
    order = _visible_order(uow, coi, actor)
    events = uow.ledger.for_order(order.coi)
    return Timeline(order, journey_from_events(order.coi, events), events)


def list_orders(
    uow: UnitOfWork, actor: Principal, state: OrderState | None = None, limit: int = 100, offset: int = 0
) -> list[Order]:
    """The orders ``actor`` may see: all of them for network roles, else those involving the actor's node."""
    try:
        role_for(actor, Action.VIEW_ORDER, None)
        nodes: set[str] | None = None
    except Forbidden:
        role_for(actor, Action.VIEW_ORDER, {actor.node})
        nodes = {actor.node}
    return uow.orders.visible(nodes, state, limit, offset)


def patient_of(uow: UnitOfWork, coi: str, actor: Principal) -> PatientRecord:
    """Patient identity behind an order, only for the treatment site's own staff."""
    order = _visible_order(uow, coi, actor)
    role_for(actor, Action.VIEW_PATIENT_IDENTITY, {order.treatment_site})
    patient = uow.patients.get(order.patient_key)
    if patient is None:
        raise NotFound(f"no patient record for order {order.coi}")
    return patient


@dataclass(frozen=True)
class NetworkStatus:
    """Where the network's orders stand, and vein-to-vein times of infused patients by treatment site."""

    orders_by_state: dict[OrderState, int]
    vein_to_vein_by_site: dict[str, list[timedelta]]


def network_status(uow: UnitOfWork, actor: Principal, page: int = 500) -> NetworkStatus:
    """Counts by stage and vein-to-vein times, derived from the orders and the ledger ``actor`` may see."""
    counts: dict[OrderState, int] = {}
    times: dict[str, list[timedelta]] = {}
    offset = 0
    while batch := list_orders(uow, actor, limit=page, offset=offset):
        for order in batch:
            counts[order.state] = counts.get(order.state, 0) + 1
            if order.state is S.INFUSED:
                journey = journey_from_events(order.coi, uow.ledger.for_order(order.coi))
                if journey.vein_to_vein is not None:
                    times.setdefault(order.treatment_site, []).append(journey.vein_to_vein)
        offset += page
    return NetworkStatus(counts, times)
