from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine

from cellrail.kernel.clock import ManualClock
from cellrail.kernel.errors import IdentityMismatch, IllegalTransition
from cellrail.rail.access_control import Role
from cellrail.rail.audit import verify_ledger
from cellrail.rail.ledger import EventKind
from cellrail.rail.orders import OrderState as S
from cellrail.rail.services import (
    AdvanceOrder,
    BookOrder,
    EnrollPatient,
    LabelScan,
    advance,
    book,
    enroll,
    timeline,
)
from cellrail.store.uow import SqlUnitOfWork
from tests.conftest import PASSWORD, add_user


def test_full_journey(seeded: Engine, clock: ManualClock) -> None:
    op_a = add_user(seeded, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    op_hub = add_user(seeded, clock, "op-hub", "hub", Role.NODE_OPERATOR)
    qp = add_user(seeded, clock, "qp", "hub", Role.QUALIFIED_PERSON)
    auditor = add_user(seeded, clock, "aud", "hub", Role.AUDITOR)
    with SqlUnitOfWork(seeded) as uow:
        order = enroll(
            uow,
            EnrollPatient(treatment_site="h-a", mrn="MRN-1", full_name="Li Wei", birth_date=date(1970, 1, 1)),
            op_a,
            clock,
        )
    with SqlUnitOfWork(seeded) as uow:
        booking = book(uow, order.coi, BookOrder(), op_a, clock)
    assert booking.order.manufacturing_node == "hub"
    assert booking.manufacturing.starts >= booking.apheresis.ends
    clock.set(booking.apheresis.ends)
    with SqlUnitOfWork(seeded) as uow:
        order = advance(uow, order.coi, AdvanceOrder(to=S.COLLECTED), op_a, clock)
    label = LabelScan(coi=order.coi, din=order.collection_din or "")
    clock.advance(timedelta(hours=1))
    with SqlUnitOfWork(seeded) as uow:
        advance(uow, order.coi, AdvanceOrder(to=S.SHIPPED_TO_MANUFACTURING, scan=label), op_a, clock)
    clock.advance(timedelta(hours=4))
    bad = LabelScan(coi=order.coi, din="A100126999999")
    with SqlUnitOfWork(seeded) as uow, pytest.raises(IdentityMismatch):
        advance(uow, order.coi, AdvanceOrder(to=S.RECEIVED_AT_MANUFACTURING, scan=bad), op_hub, clock)
    with SqlUnitOfWork(seeded) as uow, pytest.raises(IllegalTransition, match="allowed next steps"):
        advance(uow, order.coi, AdvanceOrder(to=S.INFUSED, scan=label), op_a, clock)
    for step in (S.RECEIVED_AT_MANUFACTURING, S.MANUFACTURING, S.QC_PENDING):
        clock.advance(timedelta(days=4))
        with SqlUnitOfWork(seeded) as uow:
            order = (
                advance(uow, order.coi, AdvanceOrder(to=step, scan=label), op_hub, clock)
                if step != S.QC_PENDING
                else advance(uow, order.coi, AdvanceOrder(to=step), op_hub, clock)
            )
    product = LabelScan(coi=order.coi, din=order.product_din or "")
    clock.advance(timedelta(days=7))
    with SqlUnitOfWork(seeded) as uow:
        advance(uow, order.coi, AdvanceOrder(to=S.RELEASED, password=PASSWORD), qp, clock)
    for step in (S.SHIPPED_TO_SITE, S.RECEIVED_AT_SITE):
        clock.advance(timedelta(hours=5))
        with SqlUnitOfWork(seeded) as uow:
            advance(
                uow,
                order.coi,
                AdvanceOrder(to=step, scan=product),
                op_hub if step == S.SHIPPED_TO_SITE else op_a,
                clock,
            )
    clock.advance(timedelta(days=1))
    with SqlUnitOfWork(seeded) as uow:
        order = advance(uow, order.coi, AdvanceOrder(to=S.INFUSED, scan=product, patient_mrn="MRN-1"), op_a, clock)
    assert order.state is S.INFUSED
    with SqlUnitOfWork(seeded, write=False) as uow:
        tl = timeline(uow, order.coi, auditor)
        report = verify_ledger(uow, auditor)
    assert report.ok
    assert tl.journey.vein_to_vein is not None
    assert tl.journey.vein_to_vein > timedelta(days=15)
    assert [e["kind"] for e in tl.events].count(EventKind.IDENTITY_MISMATCH.value) == 1
