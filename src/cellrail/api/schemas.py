"""Answers of the API (and the one request wrapper the use cases do not define), as Pydantic models.

Request bodies are the use cases' own command models (``EnrollPatient``, ``AdvanceOrder``, ...), so the API, the CLI
and the docs validate input the same way. No answer about an order carries patient identity: only
``PatientView``, served to the treatment site's own staff, does.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cellrail.rail.access_control import Principal, Role
from cellrail.rail.audit import AuditReport
from cellrail.rail.booking import Resource
from cellrail.rail.journey import Journey
from cellrail.rail.network import Lane, Network, Node
from cellrail.rail.orders import Order, OrderState, allowed_next
from cellrail.rail.ports import PatientRecord
from cellrail.rail.services import Booking, CustodyScan, Timeline


def hours(span: timedelta | None) -> float | None:
    return None if span is None else span.total_seconds() / 3600


# ---- errors -------------------------------------------------------------------------------------------------


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the offending input, e.g. `scan.din` or `scans[0].label.coi`")
    message: str


class ValidationAnswer(BaseModel):
    detail: list[FieldProblem]


class ErrorAnswer(BaseModel):
    detail: str


class TransitionRefused(ErrorAnswer):
    order: str
    current: OrderState
    attempted: OrderState
    allowed: list[OrderState] = Field(description="The steps the order's current state leads to")


class MismatchRefused(ErrorAnswer):
    order: str
    field: str = Field(description="The input that did not match the order, e.g. `scan.din` or `patient_mrn`")


# ---- requests -----------------------------------------------------------------------------------------------


class TokenRequest(BaseModel):
    """Credentials as JSON; the same two fields may be sent as an OAuth2 password form."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class ScanBatch(BaseModel):
    """Custody checkpoints recorded together: all of them, or (on any problem) none."""

    model_config = ConfigDict(extra="forbid")

    scans: list[CustodyScan] = Field(min_length=1, max_length=1000)


# ---- answers ------------------------------------------------------------------------------------------------


class TokenView(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class MeView(BaseModel):
    username: str
    full_name: str
    node: str
    roles: list[Role]

    @classmethod
    def of(cls, principal: Principal) -> MeView:
        return cls(
            username=principal.username,
            full_name=principal.full_name,
            node=principal.node,
            roles=sorted(principal.roles),
        )


class NetworkView(BaseModel):
    id: str
    name: str
    description: str
    nodes: list[Node]
    lanes: list[Lane]

    @classmethod
    def of(cls, network: Network) -> NetworkView:
        info = network.network
        return cls(
            id=info.id,
            name=info.name,
            description=info.description,
            nodes=list(network.nodes),
            lanes=list(network.lanes),
        )


class OrderView(BaseModel):
    """An order as every node involved sees it: identifiers and state, no patient data."""

    coi: str = Field(description="ISBT 128 Chain of Identity identifier, with its check character")
    treatment_site: str
    manufacturing_node: str | None
    state: OrderState
    allowed_next: list[OrderState] = Field(description="The steps the current state leads to")
    collection_din: str | None = Field(description="DIN of the apheresis collection, once collected")
    product_din: str | None = Field(description="DIN of the manufactured product, once in QC")
    manufacturing_attempts: int

    @classmethod
    def of(cls, order: Order) -> OrderView:
        return cls(
            coi=order.coi,
            treatment_site=order.treatment_site,
            manufacturing_node=order.manufacturing_node,
            state=order.state,
            allowed_next=list(allowed_next(order.state)),
            collection_din=order.collection_din,
            product_din=order.product_din,
            manufacturing_attempts=order.manufacturing_attempts,
        )


class OrderPage(BaseModel):
    orders: list[OrderView]
    limit: int
    offset: int


class SlotView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    node: str
    resource: Resource
    platform: str
    unit: int
    starts: datetime
    ends: datetime


class BookingView(BaseModel):
    order: OrderView
    apheresis: SlotView
    manufacturing: SlotView

    @classmethod
    def of(cls, booking: Booking) -> BookingView:
        return cls(
            order=OrderView.of(booking.order),
            apheresis=SlotView.model_validate(booking.apheresis),
            manufacturing=SlotView.model_validate(booking.manufacturing),
        )


class ScansRecorded(BaseModel):
    recorded: int
    seqs: list[int] = Field(description="Ledger sequence numbers of the recorded checkpoints, in order")


class MilestoneView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    state: OrderState
    at: datetime
    node: str
    actor: str


class StageView(BaseModel):
    state: OrderState
    started: datetime
    ended: datetime | None = Field(description="None for the current stage of an open order")
    hours: float | None


class SignatureView(BaseModel):
    user: str
    full_name: str
    meaning: str
    at: datetime


class CustodyEventView(BaseModel):
    """One ledger event of the order, as recorded."""

    log: str = Field(description="The site log the event is in (its origin)")
    seq: int = Field(description="Position in that log, from 1")
    kind: str
    order: str | None
    node: str
    actor: str
    role: str
    at: datetime
    recorded_at: datetime
    item: str | None = Field(description="The unit (DIN) the event is about, if any")
    data: dict[str, Any]
    signatures: list[SignatureView]


class JourneyView(BaseModel):
    """A patient's journey, derived from the custody ledger: milestones, stage durations, vein-to-vein time."""

    coi: str
    state: OrderState
    milestones: list[MilestoneView]
    stages: list[StageView]
    vein_to_vein_hours: float | None = Field(description="From collection to infusion; None until infused")
    events: list[CustodyEventView]

    @classmethod
    def of(cls, timeline: Timeline) -> JourneyView:
        journey: Journey = timeline.journey
        return cls(
            coi=timeline.order.coi,
            state=timeline.order.state,
            milestones=[MilestoneView.model_validate(m) for m in journey.milestones],
            stages=[
                StageView(state=s.state, started=s.started, ended=s.ended, hours=hours(s.duration))
                for s in journey.stages
            ],
            vein_to_vein_hours=hours(journey.vein_to_vein),
            events=[CustodyEventView.model_validate(event) for event in timeline.events],
        )


class PatientView(BaseModel):
    """Patient identity behind an order: for the treatment site's own staff only."""

    coi: str
    treatment_site: str
    mrn: str
    full_name: str
    birth_date: date

    @classmethod
    def of(cls, coi: str, patient: PatientRecord) -> PatientView:
        return cls(
            coi=coi,
            treatment_site=patient.treatment_site,
            mrn=patient.mrn,
            full_name=patient.full_name,
            birth_date=patient.birth_date,
        )


class FindingView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    check: Literal["chain", "merkle", "consistency", "signature"]
    log: str = Field(description="The log's origin, e.g. cellrail/<network>/<site>")
    position: int | None = Field(description="Event sequence number (chain) or checkpoint size (other checks)")
    reason: str


class LedgerReport(BaseModel):
    ok: bool
    logs: int = Field(description="Site logs checked")
    checked: int = Field(description="Events re-walked from genesis, all logs together")
    checkpoints: int = Field(description="Signed checkpoints checked")
    findings: list[FindingView] = Field(description="Every failure, by pass: chain, merkle, consistency, signature")

    @classmethod
    def of(cls, report: AuditReport) -> LedgerReport:
        return cls(
            ok=report.ok,
            logs=report.logs,
            checked=report.events,
            checkpoints=report.checkpoints,
            findings=[FindingView.model_validate(f) for f in report.findings],
        )


class Health(BaseModel):
    status: Literal["ok"] = "ok"
