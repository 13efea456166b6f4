"""Orders vein to vein: enrolment, booking, lifecycle steps, the journey and (for the site) the patient."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response

from cellrail.api.auth import Actor, AppClock, Uow, Writer
from cellrail.api.routers import AUTHENTICATED, FORBIDDEN, NOT_VISIBLE
from cellrail.api.schemas import (
    BookingView,
    ErrorAnswer,
    JourneyView,
    MismatchRefused,
    OrderPage,
    OrderView,
    PatientView,
    TransitionRefused,
)
from cellrail.kernel.identifiers import ChainOfIdentity
from cellrail.rail.orders import OrderState
from cellrail.rail.services import (
    AdvanceOrder,
    BookOrder,
    EnrollPatient,
    advance,
    book,
    enroll,
    list_orders,
    patient_of,
    timeline,
    view_order,
)

router = APIRouter(tags=["orders"])

Coi = Annotated[
    str,
    Path(
        max_length=40,
        description="Chain of Identity id as printed (with check character), typed, or scanned (`&/` prefix)",
        examples=["CHA100126000001K"],
    ),
]
_REFUSED = {**AUTHENTICATED, **FORBIDDEN, **NOT_VISIBLE}


@router.post(
    "/orders",
    status_code=201,
    summary="Enrol a patient: open an order and give it its Chain of Identity id",
    description="Patient identity (MRN, name, birth date) is stored apart and never appears in order answers.",
    responses={**AUTHENTICATED, **FORBIDDEN},
)
def enroll_patient(command: EnrollPatient, response: Response, uow: Uow, clock: AppClock, actor: Writer) -> OrderView:
    order = enroll(uow, command, actor, clock)
    response.headers["Location"] = f"/api/v1/orders/{order.coi}"
    return OrderView.of(order)


@router.get("/orders", summary="Orders the caller may see, oldest first", responses=_REFUSED)
def orders(
    uow: Uow,
    actor: Actor,
    state: Annotated[OrderState | None, Query(description="Only orders in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> OrderPage:
    found = list_orders(uow, actor, state, limit, offset)
    return OrderPage(orders=[OrderView.of(o) for o in found], limit=limit, offset=offset)


@router.get("/orders/{coi}", summary="One order: state, nodes and unit identifiers", responses=_REFUSED)
def order(coi: Coi, uow: Uow, actor: Actor) -> OrderView:
    return OrderView.of(view_order(uow, coi, actor))


@router.post(
    "/orders/{coi}/booking",
    summary="Book an apheresis slot chained to a manufacturing slot the cells can reach in time",
    description="Both slots are booked together or not at all; the order becomes `apheresis_scheduled`.",
    responses={
        **_REFUSED,
        409: {
            "model": TransitionRefused | ErrorAnswer,
            "description": "The order is past booking (with its allowed steps), or no chain of free slots is open",
        },
    },
)
def booking(
    coi: Coi, uow: Uow, clock: AppClock, actor: Writer, command: Annotated[BookOrder | None, Body()] = None
) -> BookingView:
    return BookingView.of(book(uow, coi, command or BookOrder(), actor, clock))


@router.post(
    "/orders/{coi}/transitions",
    summary="Move an order one step along its lifecycle",
    description="Hand-offs need a label `scan` of the order's CoI and the unit's DIN; infusion also needs the "
    "bedside `patient_mrn`; release and rejection are electronic signatures and need the signer's `password`; "
    "rejection, cancellation and withdrawal need a `reason`. A label or bedside mismatch is recorded in the "
    "ledger as a hard stop and the order does not move.",
    responses={
        **_REFUSED,
        409: {
            "model": TransitionRefused | MismatchRefused,
            "description": "The lifecycle does not allow this step (with the allowed ones), or an identity mismatch",
        },
    },
)
def transition(coi: Coi, command: AdvanceOrder, uow: Uow, clock: AppClock, actor: Writer) -> OrderView:
    return OrderView.of(advance(uow, coi, command, actor, clock))


@router.get(
    "/orders/{coi}/journey",
    summary="The patient journey: milestones, stage durations, vein-to-vein time and every custody event",
    responses=_REFUSED,
)
def journey(coi: Coi, uow: Uow, actor: Actor) -> JourneyView:
    return JourneyView.of(timeline(uow, coi, actor))


@router.get(
    "/orders/{coi}/patient",
    summary="Patient identity behind an order (treatment-site staff only)",
    responses={**_REFUSED, 404: {"model": ErrorAnswer, "description": "No such order visible to the caller"}},
)
def patient(coi: Coi, uow: Uow, actor: Actor) -> PatientView:
    record = patient_of(uow, coi, actor)
    return PatientView.of(str(ChainOfIdentity.parse(coi)), record)
