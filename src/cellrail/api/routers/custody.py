"""Custody checkpoints that do not move an order: courier transfers, storage checks, logger readings."""

from __future__ import annotations

from fastapi import APIRouter

from cellrail.api.auth import AppClock, Uow, Writer
from cellrail.api.routers import AUTHENTICATED, FORBIDDEN, NOT_VISIBLE
from cellrail.api.schemas import MismatchRefused, ScanBatch, ScansRecorded
from cellrail.rail.services import record_scans

router = APIRouter(tags=["custody"])


@router.post(
    "/scans",
    status_code=201,
    summary="Record a batch of custody scans",
    description="Each label must match its order (the collection bag before release, the product after). "
    "A mismatch is recorded in the ledger as a hard stop and the whole batch is refused.",
    responses={
        **AUTHENTICATED,
        **FORBIDDEN,
        **NOT_VISIBLE,
        409: {"model": MismatchRefused, "description": "A label does not match its order (hard stop recorded)"},
    },
)
def scans(batch: ScanBatch, uow: Uow, clock: AppClock, actor: Writer) -> ScansRecorded:
    seqs = record_scans(uow, batch.scans, actor, clock)
    return ScansRecorded(recorded=len(seqs), seqs=seqs)
