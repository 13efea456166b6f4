"""The custody ledger as a whole."""

from __future__ import annotations

from fastapi import APIRouter

from cellrail.api.auth import Actor, Uow
from cellrail.api.routers import AUTHENTICATED, FORBIDDEN
from cellrail.api.schemas import LedgerReport
from cellrail.rail.audit import verify_ledger

router = APIRouter(tags=["ledger"])


@router.get(
    "/ledger/verify",
    summary="Verify every site log: hash chain, Merkle root, checkpoint consistency, signatures",
    description="For auditors, QA, qualified persons and network administrators.",
    responses={**AUTHENTICATED, **FORBIDDEN},
)
def verify(uow: Uow, actor: Actor) -> LedgerReport:
    return LedgerReport.of(verify_ledger(uow, actor))
