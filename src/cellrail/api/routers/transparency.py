"""Signed checkpoints, proofs and witnessing: what auditors and other sites use to hold each log to its history."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from cellrail.api.auth import Actor, AppClock, Uow
from cellrail.api.routers import AUTHENTICATED, FORBIDDEN
from cellrail.kernel.errors import InvalidInput, NotFound
from cellrail.rail.audit import (
    consistency_proof,
    inclusion_proof,
    latest_checkpoint,
    log_heads,
    log_of,
    publish_checkpoints,
    witness,
)

router = APIRouter(tags=["transparency"])


class CheckpointView(BaseModel):
    log: str
    size: int
    root: str = Field(description="Base64 Merkle root (RFC 9162)")
    signed_at: datetime
    note: str = Field(description="The C2SP tlog-checkpoint signed note")


class LogView(BaseModel):
    log: str
    size: int
    checkpoint: CheckpointView | None


class CosignRequest(BaseModel):
    checkpoint: str = Field(description="The log's signed checkpoint note")
    proof: list[str] = Field(
        default_factory=list, description="Base64 consistency proof from the last checkpoint this witness holds"
    )


class CosignView(BaseModel):
    log: str
    size: int
    cosignature: str = Field(description="A cosignature/v1 line to append to the checkpoint note")


def _view(checkpoint: Any) -> CheckpointView:
    return CheckpointView(
        log=checkpoint.log,
        size=checkpoint.size,
        root=base64.b64encode(checkpoint.root).decode(),
        signed_at=checkpoint.signed_at,
        note=checkpoint.note,
    )


@router.get("/ledger/logs", summary="Every site log with its size and latest checkpoint", responses=AUTHENTICATED)
def logs(uow: Uow, actor: Actor) -> list[LogView]:
    return [
        LogView(log=h.log, size=h.size, checkpoint=None if h.checkpoint is None else _view(h.checkpoint))
        for h in log_heads(uow, actor)
    ]


@router.post(
    "/ledger/checkpoints",
    summary="Sign a checkpoint of every log that grew (network administrators)",
    responses={**AUTHENTICATED, **FORBIDDEN},
)
def checkpoint_now(request: Request, uow: Uow, actor: Actor, clock: AppClock) -> list[CheckpointView]:
    return [_view(c) for c in publish_checkpoints(uow, request.app.state.signers, clock, actor=actor)]


@router.get(
    "/ledger/checkpoints/{site}",
    summary="A site's latest signed checkpoint (public: it holds only hashes)",
    response_class=PlainTextResponse,
)
def checkpoint_note(site: str, uow: Uow) -> str:
    return latest_checkpoint(uow, site).note


@router.get(
    "/ledger/proofs/inclusion", summary="Proof that an event is in a signed checkpoint", responses=AUTHENTICATED
)
def inclusion(
    uow: Uow,
    actor: Actor,
    site: str = Query(..., description="Node id, or 'network'"),
    seq: int = Query(..., ge=1, description="The event's position in its site's log (from 1)"),
    at: int | None = Query(None, ge=1, description="Tree size of the checkpoint; default the latest"),
) -> dict[str, Any]:
    return inclusion_proof(uow, log_of(uow, site), seq, at, actor)


@router.get("/ledger/proofs/consistency", summary="Proof that an earlier tree is a prefix of a signed checkpoint")
def consistency(
    uow: Uow,
    site: str = Query(..., description="Node id, or 'network'"),
    size1: int = Query(..., ge=1, le=2**40),
    size2: int = Query(..., ge=1, le=2**40, description="Must be the size of a signed checkpoint"),
) -> dict[str, Any]:
    return consistency_proof(uow, log_of(uow, site), size1, size2)


@router.post(
    "/witness/cosign",
    summary="Cosign another site's checkpoint if it extends the last one this site holds",
    description="Refused (409) on a rollback (a smaller tree) or a fork (no valid consistency proof).",
)
def cosign(request: Request, body: CosignRequest, uow: Uow, clock: AppClock) -> CosignView:
    name, private = request.app.state.witness_key or (None, None)
    if name is None or private is None:
        raise NotFound("this server is not configured as a witness (set CELLRAIL_SITE and its key)")
    try:
        proof = [base64.b64decode(item, validate=True) for item in body.proof]
    except (binascii.Error, ValueError):
        raise InvalidInput.one("proof", "every proof hash must be base64") from None
    done = witness(uow, body.checkpoint, proof, name, private, clock)
    return CosignView(log=done.log, size=done.size, cosignature=done.cosignature)
