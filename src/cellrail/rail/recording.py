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
from cellrail.kernel.errors import Conflict
from cellrail.rail.ledger import CustodyEvent, LedgerEntry, encode
from cellrail.rail.ports import UnitOfWork
from cellrail.transparency.merkle import frontier_read_by_append

NETWORK_LOG = "network"  # the log of events that belong to no single site (network registration)


def origin(network_id: str, node: str) -> str:
    """The name of a site's log, as it appears in its checkpoints."""
    return f"cellrail/{network_id}/{node}"


def _left_siblings(uow: UnitOfWork, log: str, size: int, count: int) -> list[bytes]:
    """Per level, the stored frontier subtree that appending ``count`` events to ``log`` will combine with."""
    keys = frontier_read_by_append(size, count)
    found = uow.ledger.subtrees(log, keys)
    missing = [key for key in keys if key not in found]
    if missing:
        raise Conflict(
            f"log {log}: tree node {missing[0]} is missing from the store; nothing can be appended until "
            "it is restored (run cellrail verify)"
        )
    left = [b""] * 64  # a tree of 2^64 leaves is out of reach
    for (level, _index), digest in found.items():
        left[level] = digest
    return left


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
    lefts = {log: _left_siblings(uow, log, size, counts[log]) for log, (size, _) in heads.items()}
    now = iso_utc(clock.now())  # formatted once: the whole batch is recorded at the same moment
    entries: list[LedgerEntry] = []
    completed: list[bytes] = []  # per event, the inner nodes it completes (level 1 upward), concatenated
    # This loop runs once per event, so names are bound once and the three hash formulas are written inline:
    # ledger.link, verifier.leaf_hash and verifier.node_hash (tests check the result against each of them).
    # merkle.nodes_to_store, with its lookups answered by ``left``: the left sibling waiting at each level of the
    # log's tree is the last node completed at that level, so one slot per level holds all an append reads.
    add_entry, add_nodes, sha256 = entries.append, completed.append, hashlib.sha256
    for log, event in zip(logs, events, strict=True):
        size, head = heads[log]
        seq = size + 1
        body = encode(event, seq, now, log)
        head = sha256(head + body).digest()  # link(head, body)
        heads[log] = (seq, head)
        add_entry(LedgerEntry(seq, body, head, log))
        left = lefts[log]
        level, index = 0, size
        digest = sha256(b"\x00" + body).digest()  # leaf_hash(body); the store derives leaves from the bytes
        inner = b""
        while index & 1:  # a right-hand child completes its parent
            digest = sha256(b"\x01" + left[level] + digest).digest()  # node_hash(left sibling, digest)
            level, index = level + 1, index >> 1
            inner += digest
        left[level] = digest  # a left-hand child (index even) until its sibling comes
        add_nodes(inner)
    uow.ledger.append(entries, events, completed)
    return entries
