"""`cellrail serve`: the HTTP API and its docs page."""

from __future__ import annotations

import typer
import uvicorn
from rich.console import Console
from sqlalchemy import Engine

from cellrail.cli.errors import friendly
from cellrail.cli.store import DatabaseOption, engine_for
from cellrail.kernel.errors import NotFound
from cellrail.rail.audit import log_of
from cellrail.settings import Settings
from cellrail.store.keyring import load_signers
from cellrail.store.uow import SqlUnitOfWork

console = Console(soft_wrap=True)
HostOption = typer.Option("127.0.0.1", envvar="CELLRAIL_HOST", help="Address to listen on")
PortOption = typer.Option(8000, envvar="CELLRAIL_PORT", min=1, max=65535, help="Port to listen on")


def serve_engine(engine: Engine, host: str, port: int) -> None:
    """Serve the API on ``engine`` until interrupted."""
    from cellrail.api.app import create_app

    console.print(f"API and docs at [bold]http://{host}:{port}/docs[/bold] (Ctrl-C to stop)")
    settings = Settings()
    signers = load_signers(settings.keys_dir)
    witness_key = None
    if settings.site is not None:
        with SqlUnitOfWork(engine, write=False) as uow:
            log = log_of(uow, settings.site)
        if log not in signers:
            raise NotFound(f"no signing key for {log} in {settings.keys_dir} (create it with `cellrail keys init`)")
        witness_key = (log, signers[log])
    app = create_app(
        engine,
        token_hours=settings.token_hours,
        signers=signers,
        witness_key=witness_key,
        checkpoint_every_events=settings.checkpoint_every_events,
        checkpoint_every_seconds=settings.checkpoint_every_seconds,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


@friendly
def serve(database: str | None = DatabaseOption, host: str = HostOption, port: int = PortOption) -> None:
    """Serve the CellRail API (OpenAPI docs at /docs)."""
    serve_engine(engine_for(database), host, port)
