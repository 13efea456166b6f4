"""Writing to the custody ledger: the only path by which any event is stored.

Each event goes to the log of the site where it happened (origin ``cellrail/<network>/<node>``), is chained to
that log's previous event, and becomes the next leaf of the log's RFC 9162 Merkle tree; the inner nodes that
leaf completes are stored in the event's own row, so roots and proofs never need a rebuild. (Leaves are not
stored as nodes: each is the hash of its event's stored bytes.)
"""

from __future__ import annotations

import hashlib
from collections import Counter

from cellrail.kernel.clock import Clock, iso_utc
from cellrail.rail.ledger import CustodyEvent, LedgerEntry, encode
from cellrail.rail.ports import UnitOfWork
from cellrail.transparency.merkle import frontier_read_by_append

NETWORK_LOG = "network"  # the log of events that belong to no single site (network registration)


def origin(network_id: str, node: str) -> str:
    """The name of a site's log, as it appears in its checkpoints."""
    return f"cellrail/{network_id}/{node}"


def record(uow: UnitOfWork, clock: Clock, *events: CustodyEvent) -> list[LedgerEntry]:
    """Sequence, chain and append ``events`` in the caller's transaction (they commit with its change).

    Each event is sealed exactly as :func:`cellrail.rail.ledger.seal` does (``encode`` then ``link`` to its
    log's head), here inline so that a batch costs no per-event list, entry copy or closure.
    """
    network = uow.networks.current()
    network_id = network.network.id if network is not None else "unregistered"
    names = {node: origin(network_id, node) for node in {event.node for event in events}}
    logs = [names[event.node] for event in events]
    heads = {log: uow.ledger.head_for_append(log) for log in sorted(set(logs))}  # lock in one order: no deadlock
    counts = Counter(logs)
    trees = {
        log: uow.ledger.subtrees(log, frontier_read_by_append(size, counts[log])) for log, (size, _) in heads.items()
    }
    now = iso_utc(clock.now())  # formatted once: the whole batch is recorded at the same moment
    entries: list[LedgerEntry] = []
    completed: list[bytes] = []  # per event, the inner nodes it completes (level 1 upward), concatenated
    # This loop runs once per event, so names are bound once and the three hash formulas are written inline:
    # ledger.link, verifier.leaf_hash and verifier.node_hash (tests check the result against each of them).
    add_entry, add_nodes, sha256 = entries.append, completed.append, hashlib.sha256
    for log, event in zip(logs, events, strict=True):
        size, head = heads[log]
        seq = size + 1
        body = encode(event, seq, now, log)
        head = sha256(head + body).digest()  # link(head, body)
        heads[log] = (seq, head)
        add_entry(LedgerEntry(seq, body, head, log))
        tree = trees[log]
        # merkle.nodes_to_store: the leaf (kept in memory only; the store derives leaves from the event bytes)
        # and each inner node it completes while it is a right-hand child.
        level, index = 0, size
        tree[(0, size)] = digest = sha256(b"\x00" + body).digest()  # leaf_hash(body)
        inner = b""
        while index & 1:
            digest = sha256(b"\x01" + tree[(level, index - 1)] + digest).digest()  # node_hash(left, digest)
            level, index = level + 1, index >> 1
            tree[(level, index)] = digest
            inner += digest
        add_nodes(inner)
    uow.ledger.append(entries, events, completed)
    return entries
