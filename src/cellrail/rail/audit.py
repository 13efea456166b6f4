"""Auditor-grade guarantees over the custody ledger: signed checkpoints, proofs, witnesses, and verification.

A hash chain alone does not stop someone with write access to the database who rewrites history and recomputes
every hash. So each site's log is also an RFC 9162 Merkle tree whose roots are published in checkpoints signed
with a key that is not in the database (C2SP tlog-checkpoint), consecutive checkpoints must be provably
consistent, and other sites (witnesses) cosign a checkpoint only with a consistency proof from the last one
they hold. This module is the use-case layer for all of that; the cryptography lives in ``transparency``.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cellrail.kernel.clock import Clock
from cellrail.kernel.errors import Conflict, InvalidInput, NotFound
from cellrail.rail.access_control import SYSTEM, Action, Principal, role_for
from cellrail.rail.ledger import StoredRow, verify_rows
from cellrail.rail.network import Network
from cellrail.rail.ports import StoredCheckpoint, UnitOfWork
from cellrail.rail.recording import NETWORK_LOG, origin
from cellrail.transparency import merkle
from cellrail.transparency.note import (
    Checkpoint,
    NoteError,
    SignedNote,
    cosign,
    sign_note,
    verifier_key,
    verify_note_signatures,
)
from cellrail.transparency.verifier import ProofError, leaf_hash, verify_consistency


class StoredTree:
    """A log's Merkle tree as stored: perfect-subtree hashes read on demand (O(log n) per root or proof)."""

    def __init__(self, uow: UnitOfWork, log: str) -> None:
        self.uow = uow
        self.log = log
        self._cache: dict[tuple[int, int], bytes] = {}

    def prefetch(self, keys: Iterable[tuple[int, int]]) -> None:
        """Read many subtree hashes in a few queries (proof batches share most of their upper nodes)."""
        wanted = [key for key in dict.fromkeys(keys) if key not in self._cache]
        self._cache.update(self.uow.ledger.subtrees(self.log, wanted))

    def perfect(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self._cache:
            found = self.uow.ledger.subtrees(self.log, [key])
            if key not in found:
                raise ProofError(f"log {self.log}: tree node {key} is missing from the store")
            self._cache[key] = found[key]
        return self._cache[key]


def site_verifier_keys(network: Network) -> dict[str, str]:
    """The verifier key of each log, from the network file: sites' keys and the network log's key."""
    keys = {origin(network.network.id, n.id): n.public_key for n in network.nodes if n.public_key}
    if network.network.public_key:
        keys[origin(network.network.id, NETWORK_LOG)] = network.network.public_key
    return keys


def _public_key_line(private: Ed25519PrivateKey, name: str) -> str:
    return verifier_key(name, private.public_key().public_bytes_raw())


def log_of(uow: UnitOfWork, site: str) -> str:
    """The origin of a site's log (``site`` is a node id, 'network', or already an origin)."""
    network = uow.networks.current()
    if network is None:
        raise NotFound("no network is registered")
    if site.startswith("cellrail/"):
        return site
    if site != NETWORK_LOG and site not in network.node_ids:
        raise InvalidInput.one("site", f"unknown node '{site}'")
    return origin(network.network.id, site)


@dataclass(frozen=True)
class LogHead:
    log: str
    size: int
    checkpoint: StoredCheckpoint | None


def log_heads(uow: UnitOfWork, actor: Principal) -> list[LogHead]:
    """Every site log with its size and latest signed checkpoint."""
    role_for(actor, Action.VIEW_LEDGER, None)
    return [LogHead(log, size, uow.checkpoints.latest(log)) for log, size in sorted(uow.ledger.logs().items())]


def latest_checkpoint(uow: UnitOfWork, site: str) -> StoredCheckpoint:
    """A site's latest signed checkpoint: public, like a transparency log's (it holds only hashes)."""
    log = log_of(uow, site)
    checkpoint = uow.checkpoints.latest(log)
    if checkpoint is None:
        raise NotFound(f"no checkpoint of {log} yet")
    return checkpoint


def publish_checkpoints(
    uow: UnitOfWork,
    signers: Mapping[str, Ed25519PrivateKey],
    clock: Clock,
    min_new_events: int = 1,
    actor: Principal = SYSTEM,
) -> list[StoredCheckpoint]:
    """Sign a checkpoint of every log that grew by at least ``min_new_events`` and whose key is at hand.

    A checkpoint is signed only after a consistency proof from the previous checkpoint verifies against the
    stored tree, so a site never signs a history that contradicts one it signed before.
    """
    role_for(actor, Action.MANAGE_NETWORK, None)
    network = uow.networks.current()
    if network is None:
        raise NotFound("no network is registered")
    expected = site_verifier_keys(network)
    published = []
    for log, size in sorted(uow.ledger.logs().items()):
        private = signers.get(log)
        if private is None or log not in expected:
            continue  # a checkpoint nobody can check against a listed key proves nothing
        if expected[log] != _public_key_line(private, log):
            raise Conflict(f"the signing key for {log} is not the one the network file lists for it")
        previous = uow.checkpoints.latest(log)
        if previous is not None and size - previous.size < max(min_new_events, 1):
            continue
        tree = StoredTree(uow, log)
        root = merkle.root(tree, size)
        if previous is not None:
            proof = merkle.consistency_proof(tree, previous.size, size)
            try:
                verify_consistency(previous.size, size, proof, previous.root, root)
            except ProofError as error:
                raise Conflict(
                    f"refusing to sign {log} at size {size}: not consistent with size {previous.size}: {error}"
                ) from None
        body = Checkpoint(log, size, root).body()
        note = SignedNote(body, (sign_note(body, log, private),)).render()
        checkpoint = StoredCheckpoint(log, size, root, note, clock.now())
        uow.checkpoints.add(checkpoint)
        published.append(checkpoint)
    uow.commit()
    return published


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def inclusion_proof(uow: UnitOfWork, log: str, seq: int, at: int | None, actor: Principal) -> dict[str, Any]:
    """A self-contained proof that event ``seq`` of ``log`` is in the checkpointed tree of size ``at``."""
    return inclusion_proofs(uow, log, [seq], at, actor)[0]


def inclusion_proofs(
    uow: UnitOfWork, log: str, seqs: Sequence[int], at: int | None, actor: Principal
) -> list[dict[str, Any]]:
    """Self-contained inclusion proofs for many events of ``log`` against one checkpoint (default: the latest).

    The checkpoint and keys are read once and the tree nodes of all proofs are fetched together, which is what
    an audit of many events needs.
    """
    role_for(actor, Action.VIEW_LEDGER, None)
    checkpoint = uow.checkpoints.latest(log) if at is None else uow.checkpoints.at(log, at)
    if checkpoint is None:
        raise NotFound(f"no checkpoint of {log}" + ("" if at is None else f" at size {at}"))
    for seq in seqs:
        if not 1 <= seq <= checkpoint.size:
            raise InvalidInput.one("seq", f"event {seq} is not in the tree of size {checkpoint.size}")
    keys = _keys_for(uow, log)
    size = checkpoint.size
    paths = {seq: merkle.inclusion_proof_ranges(seq - 1, size) for seq in seqs}
    ranges = dict.fromkeys(r for path in paths.values() for r in path)  # proofs share most upper siblings
    tree = StoredTree(uow, log)
    tree.prefetch(key for a, b in ranges for key in merkle.range_keys(a, b))
    siblings = {r: _b64(merkle.range_hash(tree, *r)) for r in ranges}
    bodies = uow.ledger.entries(log, seqs)
    documents = []
    for seq in seqs:
        body = bodies.get(seq)
        if body is None:
            raise NotFound(f"no event {seq} in {log}")
        documents.append(
            {
                "type": "inclusion",
                "origin": log,
                "leaf_index": seq - 1,
                "tree_size": size,
                "event": {"seq": seq, "body": _b64(body)},
                "proof": [siblings[r] for r in reversed(paths[seq])],
                "checkpoint": checkpoint.note,
                "verifier_keys": keys,
            }
        )
    return documents


def consistency_proof(uow: UnitOfWork, log: str, size1: int, size2: int) -> dict[str, Any]:
    """A self-contained proof that the tree of size ``size1`` is a prefix of the checkpointed tree ``size2``.

    Public, like the checkpoints themselves: it holds only hashes.
    """
    second = uow.checkpoints.at(log, size2)
    if second is None:
        raise NotFound(f"no checkpoint of {log} at size {size2}")
    if not 1 <= size1 <= size2:
        raise InvalidInput.one("size1", f"must be between 1 and {size2}")
    tree = StoredTree(uow, log)
    first = uow.checkpoints.at(log, size1)
    return {
        "type": "consistency",
        "origin": log,
        "size1": size1,
        "size2": size2,
        "root1": _b64(merkle.root(tree, size1)),
        "proof": [_b64(h) for h in merkle.consistency_proof(tree, size1, size2)],
        "checkpoint1": None if first is None else first.note,
        "checkpoint2": second.note,
        "verifier_keys": _keys_for(uow, log),
    }


def _keys_for(uow: UnitOfWork, log: str) -> list[str]:
    network = uow.networks.current()
    key = None if network is None else site_verifier_keys(network).get(log)
    return [] if key is None else [key]


@dataclass(frozen=True)
class Cosigned:
    log: str
    size: int
    cosignature: str  # the signature line to append to the checkpoint note


def witness(
    uow: UnitOfWork, note_text: str, proof: list[bytes], name: str, private: Ed25519PrivateKey, clock: Clock
) -> Cosigned:
    """Cosign another site's checkpoint, but only if it extends the last checkpoint this site holds of that log.

    A rollback (a smaller tree) or a fork (a tree that does not contain the one held) is refused, so a site that
    rewrites or restores its history is caught by every witness that saw its earlier checkpoints.
    """
    network = uow.networks.current()
    if network is None:
        raise NotFound("no network is registered")
    try:
        note = SignedNote.parse(note_text)
        checkpoint = Checkpoint.parse(note.text)
    except NoteError as error:
        raise InvalidInput.one("checkpoint", str(error)) from None
    key = site_verifier_keys(network).get(checkpoint.origin)
    if key is None:
        raise InvalidInput.one("checkpoint", f"{checkpoint.origin} is not a log of network '{network.network.id}'")
    try:
        if checkpoint.origin not in verify_note_signatures(note, [key]):
            raise InvalidInput.one("checkpoint", f"not signed by the key the network lists for {checkpoint.origin}")
    except NoteError as error:
        raise InvalidInput.one("checkpoint", f"bad signature: {error}") from None
    # One witness decision per log at a time: without it two concurrent requests (PostgreSQL, READ COMMITTED) both
    # check against the same held checkpoint and cosign two forks.
    uow.checkpoints.lock_witness(checkpoint.origin)
    held = uow.checkpoints.witnessed(checkpoint.origin)
    if held is not None:
        if checkpoint.size < held.size:
            raise Conflict(
                f"rollback: {checkpoint.origin} presents size {checkpoint.size}, "
                f"but this witness already holds size {held.size}"
            )
        try:
            verify_consistency(held.size, checkpoint.size, proof, held.root, checkpoint.root)
        except ProofError as error:
            raise Conflict(
                f"fork: {checkpoint.origin} at size {checkpoint.size} is not consistent with "
                f"the size {held.size} this witness holds ({error})"
            ) from None
    timestamp = int(clock.now().timestamp())
    signature = cosign(checkpoint, name, private, timestamp)
    if held is None or checkpoint.size > held.size:
        uow.checkpoints.add_witnessed(
            StoredCheckpoint(checkpoint.origin, checkpoint.size, checkpoint.root, note_text, clock.now())
        )
    uow.commit()
    line = signature.line()
    return Cosigned(checkpoint.origin, checkpoint.size, line)


@dataclass(frozen=True)
class Finding:
    """One verification failure: which pass, which log, where, and why."""

    check: str
    log: str
    position: int | None
    reason: str

    def __str__(self) -> str:
        where = "" if self.position is None else f" at {self.position}"
        return f"[{self.check}] {self.log}{where}: {self.reason}"


@dataclass
class AuditReport:
    logs: int = 0
    events: int = 0
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def verify_ledger(uow: UnitOfWork, actor: Principal) -> AuditReport:
    """Four passes over every log, each failure named precisely:

    1. chain: re-walk the hash chain (first altered, missing or reordered event);
    2. Merkle: recompute the root from the stored event bytes and compare it with the latest checkpoint;
    3. consistency: each pair of consecutive checkpoints must be consistent (rollback or fork);
    4. signatures: every checkpoint must carry a valid signature by the key the network file lists.
    """
    role_for(actor, Action.VIEW_LEDGER, None)
    network = uow.networks.current()
    keys = {} if network is None else site_verifier_keys(network)
    report = AuditReport()
    logs = uow.ledger.logs()
    for log in sorted(set(logs) | set(uow.checkpoints.logs())):
        report.logs += 1
        leaves: list[bytes] = []
        rows = _collect_leaves(uow.ledger.rows(log), leaves)
        chain = verify_rows(rows, log)
        for _ in rows:  # the Merkle pass needs every leaf, even past a break in the chain
            pass
        report.events += chain.checked
        if chain.first_break is not None:
            brk = chain.first_break
            report.findings.append(Finding("chain", log, brk.seq, brk.reason))
        history = uow.checkpoints.history(log)
        report.checkpoints += len(history)
        for checkpoint in history[-1:]:
            if checkpoint.size > len(leaves):
                report.findings.append(
                    Finding(
                        "merkle", log, checkpoint.size, f"the log holds {len(leaves)} events, fewer than its checkpoint"
                    )
                )
            elif merkle.root_from_leaves(leaves[: checkpoint.size]) != checkpoint.root:
                report.findings.append(
                    Finding(
                        "merkle", log, checkpoint.size, "the events' Merkle root differs from the signed checkpoint"
                    )
                )
        tree = StoredTree(uow, log)
        for earlier, later in itertools.pairwise(history):
            try:
                proof = merkle.consistency_proof(tree, earlier.size, later.size)
                verify_consistency(earlier.size, later.size, proof, earlier.root, later.root)
            except ProofError as error:
                report.findings.append(
                    Finding("consistency", log, later.size, f"not consistent with size {earlier.size}: {error}")
                )
        key = keys.get(log)
        for checkpoint in history:
            reason = _signature_problem(checkpoint, key)
            if reason is not None:
                report.findings.append(Finding("signature", log, checkpoint.size, reason))
    return report


def _collect_leaves(rows: Iterator[StoredRow], leaves: list[bytes]) -> Iterator[StoredRow]:
    """Pass rows through while gathering their Merkle leaf hashes, so one read serves two passes."""
    for row in rows:
        leaves.append(leaf_hash(bytes(row[3])))
        yield row


def _signature_problem(checkpoint: StoredCheckpoint, key: str | None) -> str | None:
    if key is None:
        return "the network file lists no public key for this log"
    try:
        note = SignedNote.parse(checkpoint.note)
        body = Checkpoint.parse(note.text)
        if (body.origin, body.size, body.root) != (checkpoint.log, checkpoint.size, checkpoint.root):
            return "the signed note does not match the stored checkpoint"
        if checkpoint.log not in verify_note_signatures(note, [key]):
            return "no valid signature by the listed key"
    except NoteError as error:
        return f"bad signed note: {error}"
    return None
