"""Signing checkpoints on a schedule while the API runs: every N new events, or T seconds after a log grew."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import Engine

from cellrail.kernel.clock import SystemClock
from cellrail.kernel.errors import CellRailError
from cellrail.rail.audit import publish_checkpoints
from cellrail.store.uow import SqlUnitOfWork

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0


class CheckpointSchedule:
    """Polls once a second: a log that grew by ``every_events`` is signed at once; any growth is signed after
    ``every_seconds``. Signing runs in a worker thread, so requests are never blocked by it."""

    def __init__(
        self, engine: Engine, signers: Mapping[str, Ed25519PrivateKey], every_events: int, every_seconds: float
    ) -> None:
        self.engine = engine
        self.signers = signers
        self.every_events = every_events
        self.every_seconds = every_seconds
        self._last_any = time.monotonic()

    def tick(self) -> int:
        """One round; returns how many checkpoints it signed."""
        due_all = time.monotonic() - self._last_any >= self.every_seconds
        threshold = 1 if due_all else self.every_events
        with SqlUnitOfWork(self.engine) as uow:
            signed = publish_checkpoints(uow, self.signers, SystemClock(), min_new_events=threshold)
        if due_all:
            self._last_any = time.monotonic()
        return len(signed)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await asyncio.to_thread(self.tick)
            except CellRailError as error:  # e.g. a key that does not match the network file: keep serving
                log.error("checkpoint not signed: %s", error)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(self._run()) if self.signers else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
