"""Writing to the custody ledger: the only path by which any event is stored."""

from __future__ import annotations

from cellrail.kernel.clock import Clock
from cellrail.rail.ledger import CustodyEvent, LedgerEntry, seal
from cellrail.rail.ports import UnitOfWork


def record(uow: UnitOfWork, clock: Clock, *events: CustodyEvent) -> list[LedgerEntry]:
    """Sequence, chain and append ``events`` in the caller's transaction (they commit with its change)."""
    seq, head = uow.ledger.head_for_append()
    entries = seal(events, seq, head, clock.now())
    uow.ledger.append(entries, events)
    return entries
