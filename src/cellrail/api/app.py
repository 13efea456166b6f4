"""The FastAPI application: ``create_app(engine)`` wires the routers, the error answers and the docs page."""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine

from cellrail import __version__
from cellrail.api.checkpoints import CheckpointSchedule
from cellrail.api.errors import install_error_handlers
from cellrail.api.routers import auth, custody, landscape, ledger, network, orders, transparency
from cellrail.api.schemas import Health
from cellrail.kernel.clock import Clock, SystemClock

API_PREFIX = "/api/v1"

DESCRIPTION = """\
Chain of identity and custody for decentralized CAR-T and cell-therapy networks.

Get a token with **POST /api/v1/auth/token** (or the *Authorize* button), then send it as
`Authorization: Bearer <token>`. Invalid input is answered with 422 and
`{"detail": [{"field": "scan.din", "message": "..."}]}`; other refusals with `{"detail": "..."}`.
Order answers never carry patient identity; only the treatment site's own staff can read it, at
`/api/v1/orders/{coi}/patient`.
"""

TAGS = [
    {"name": "auth", "description": "Tokens and the caller's identity"},
    {"name": "network", "description": "Nodes and lanes of the registered network"},
    {"name": "orders", "description": "Enrolment, booking, lifecycle steps, patient journey and identity"},
    {"name": "custody", "description": "Custody checkpoints that do not move an order"},
    {"name": "ledger", "description": "The hash-chained custody ledger"},
    {"name": "transparency", "description": "Signed checkpoints, inclusion and consistency proofs, witnessing"},
    {"name": "landscape", "description": "Registry analytics: cell and gene therapy trial starts (public data)"},
    {"name": "health", "description": "Liveness, without touching the store"},
]


def create_app(
    engine: Engine,
    clock: Clock | None = None,
    token_hours: float = 12.0,
    signers: Mapping[str, Ed25519PrivateKey] | None = None,
    witness_key: tuple[str, Ed25519PrivateKey] | None = None,
    checkpoint_every_events: int = 100,
    checkpoint_every_seconds: float = 60.0,
) -> FastAPI:
    """The API on ``engine``; ``clock`` defaults to the system clock, tokens last ``token_hours``.

    With ``signers`` (log origin → private key) the app signs a checkpoint of a log once it grew by
    ``checkpoint_every_events`` events, or ``checkpoint_every_seconds`` after it last grew; with ``witness_key``
    it cosigns other sites' checkpoints.
    """
    schedule = CheckpointSchedule(engine, signers or {}, checkpoint_every_events, checkpoint_every_seconds)
    app = FastAPI(
        lifespan=schedule.lifespan,
        title="CellRail API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
    )
    app.state.engine = engine
    app.state.clock = clock if clock is not None else SystemClock()
    app.state.token_hours = token_hours
    app.state.signers = dict(signers or {})
    app.state.witness_key = witness_key
    install_error_handlers(app)
    for module in (auth, network, orders, custody, ledger, transparency, landscape):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.get("/health", tags=["health"], summary="Liveness: answers without touching the store")
    async def health() -> Health:
        return Health()

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
