"""The network the rail runs on: its nodes and the lanes between them."""

from __future__ import annotations

from fastapi import APIRouter

from cellrail.api.auth import Actor, Uow
from cellrail.api.routers import AUTHENTICATED
from cellrail.api.schemas import ErrorAnswer, NetworkView
from cellrail.rail.services import current_network

router = APIRouter(tags=["network"])


@router.get(
    "/network",
    summary="The registered network: nodes with capabilities, and lanes",
    responses={**AUTHENTICATED, 404: {"model": ErrorAnswer, "description": "No network is registered yet"}},
)
def network(uow: Uow, actor: Actor) -> NetworkView:
    return NetworkView.of(current_network(uow))
