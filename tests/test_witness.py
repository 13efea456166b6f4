"""Witnessing (issue 8): another site cosigns a log's checkpoint only if it extends the last one it holds.

Two sites, two separate SQLite stores with the same registered network file listing both sites' public keys:
site A (the treatment site h-a) signs checkpoints of its log; site B (the hub) runs the API with its key as a
witness and is driven through ``POST /api/v1/witness/cosign``.
"""

from __future__ import annotations

import base64
import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from cellrail.api.app import create_app
from cellrail.demo.journeys import with_site_keys
from cellrail.kernel.clock import ManualClock
from cellrail.kernel.errors import Conflict
from cellrail.rail.access_control import SYSTEM
from cellrail.rail.audit import Cosigned, consistency_proof, publish_checkpoints, witness
from cellrail.rail.ledger import CustodyEvent, EventKind
from cellrail.rail.ports import StoredCheckpoint
from cellrail.rail.recording import origin, record
from cellrail.rail.services import register_network
from cellrail.store.engine import open_store
from cellrail.store.keyring import load_signers
from cellrail.store.repositories import SqlCheckpoints
from cellrail.store.uow import SqlUnitOfWork
from cellrail.transparency.note import (
    Checkpoint,
    NoteSignature,
    SignedNote,
    cosigner_verifier_key,
    sign_note,
    verifier_key,
    verify_cosignature,
    verify_cosignatures,
    verify_note_signatures,
)
from tests.conftest import NETWORK_YAML, START

A_LOG = origin("test-net", "h-a")
B_LOG = origin("test-net", "hub")
COSIGN = "/api/v1/witness/cosign"


@dataclass
class SiteA:
    """The site whose log is witnessed: its own store and only its own signing key."""

    path: Path
    engine: Engine
    clock: ManualClock
    key: Ed25519PrivateKey

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def grow(self, count: int, tag: str) -> None:
        with SqlUnitOfWork(self.engine) as uow:
            for n in range(count):
                self.clock.advance(timedelta(minutes=1))
                event = CustodyEvent(
                    EventKind.CUSTODY_SCAN, "h-a", "courier", "courier", self.clock.now(), data={"note": f"{tag} {n}"}
                )
                record(uow, self.clock, event)
            uow.commit()

    def publish(self) -> StoredCheckpoint:
        with SqlUnitOfWork(self.engine) as uow:
            [checkpoint] = publish_checkpoints(uow, {A_LOG: self.key}, self.clock)
        assert checkpoint.log == A_LOG
        return checkpoint

    def proof(self, size1: int, size2: int) -> list[str]:
        with SqlUnitOfWork(self.engine, write=False) as uow:
            proof: list[str] = consistency_proof(uow, A_LOG, size1, size2)["proof"]
        return proof

    def size(self) -> int:
        with SqlUnitOfWork(self.engine, write=False) as uow:
            return uow.ledger.logs()[A_LOG]

    def backup(self, target: Path) -> None:
        """A consistent copy of the live store (WAL included), through SQLite's online backup API."""
        _copy(self.path, target)

    def restore(self, source: Path) -> None:
        """Put an old copy back in place of the store, as an operator restoring a backup would."""
        self.engine.dispose()
        _copy(source, self.path)
        self.engine = open_store(self.url)


def _copy(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@dataclass
class Witness:
    """Site B: its own store and the API configured with its key as a witness."""

    engine: Engine
    clock: ManualClock
    client: TestClient
    cosigner_key: str  # B's cosigner verifier key (c2sp.org/tlog-cosignature, type 0x04)

    def cosign(self, note: str, proof: list[str] | None = None) -> Response:
        body: dict[str, Any] = {"checkpoint": note}
        if proof is not None:
            body["proof"] = proof
        answer: Response = self.client.post(COSIGN, json=body)
        return answer

    def held(self) -> StoredCheckpoint | None:
        with SqlUnitOfWork(self.engine, write=False) as uow:
            return uow.checkpoints.witnessed(A_LOG)


@dataclass
class Sites:
    a: SiteA
    b: Witness
    a_key: str  # A's verifier key, as the network file lists it


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[Sites]:
    keys_dir = tmp_path / "keys"
    network_text = with_site_keys(NETWORK_YAML, keys_dir)
    signers = load_signers(keys_dir)
    engines = []
    for name in ("a", "b"):
        engine = open_store(f"sqlite:///{tmp_path / name}.db")
        with SqlUnitOfWork(engine) as uow:
            register_network(uow, network_text, "network.yaml", SYSTEM, ManualClock(START))
        engines.append(engine)
    a = SiteA(tmp_path / "a.db", engines[0], ManualClock(START), signers[A_LOG])
    b_clock = ManualClock(START + timedelta(days=1))
    b_key = signers[B_LOG]
    cosigner = cosigner_verifier_key(B_LOG, b_key.public_key())
    with TestClient(create_app(engines[1], b_clock, witness_key=(B_LOG, b_key))) as client:
        yield Sites(a, Witness(engines[1], b_clock, client, cosigner), verifier_key(A_LOG, a.key.public_key()))
    a.engine.dispose()
    engines[1].dispose()


def _cosigned(answer: Response, checkpoint: StoredCheckpoint, sites: Sites) -> NoteSignature:
    """The cosignature line of an accepted answer, checked against B's cosigner key and B's clock."""
    assert answer.status_code == 200, answer.text
    assert answer.json()["log"] == checkpoint.log
    assert answer.json()["size"] == checkpoint.size
    line: str = answer.json()["cosignature"]
    assert line.startswith(f"\u2014 {B_LOG} ")
    assert line.endswith("\n")
    cosigned = SignedNote.parse(checkpoint.note + line)
    timestamp = int(sites.b.clock.now().timestamp())
    assert verify_cosignatures(cosigned, [sites.b.cosigner_key]) == {B_LOG: timestamp}
    signature = cosigned.signatures[-1]
    assert verify_cosignature(Checkpoint.parse(cosigned.text), signature, sites.b.cosigner_key) == timestamp
    # The site's own signature still verifies on the cosigned note; A's key is no cosigner key of B's.
    assert verify_note_signatures(cosigned, [sites.a_key]) == [A_LOG]
    other = cosigner_verifier_key(B_LOG, Ed25519PrivateKey.generate().public_key())
    assert verify_cosignatures(cosigned, [other]) == {}
    return signature


# ---- 7. cosigning a log that grows ----------------------------------------------------------------------------------


def test_witness_cosigns_the_first_checkpoint_and_then_a_consistent_extension(sites: Sites) -> None:
    a, b = sites.a, sites.b
    a.grow(3, "first")
    first = a.publish()
    assert first.size == 3
    _cosigned(b.cosign(first.note), first, sites)
    held = b.held()
    assert held is not None
    assert (held.size, held.root, held.note) == (3, first.root, first.note)

    a.grow(4, "second")
    second = a.publish()
    assert second.size == 7
    b.clock.advance(timedelta(hours=1))
    proof = a.proof(3, 7)
    assert len(proof) == 4
    _cosigned(b.cosign(second.note, proof), second, sites)
    held = b.held()
    assert held is not None
    assert (held.size, held.root) == (7, second.root)

    # The same checkpoint again needs no proof (nothing to extend); an older one is refused as a rollback.
    b.clock.advance(timedelta(minutes=5))
    _cosigned(b.cosign(second.note), second, sites)
    refused = b.cosign(first.note)
    assert refused.status_code == 409
    assert refused.json() == {"detail": f"rollback: {A_LOG} presents size 3, but this witness already holds size 7"}


# ---- 8. a site restored from an old backup is caught -------------------------------------------------------------


def test_a_restored_store_that_diverges_is_refused_as_rollback_then_fork(sites: Sites, tmp_path: Path) -> None:
    a, b = sites.a, sites.b
    a.grow(3, "first")
    first = a.publish()
    _cosigned(b.cosign(first.note), first, sites)
    early = tmp_path / "a-early.db"
    a.backup(early)

    a.grow(4, "second")
    second = a.publish()
    _cosigned(b.cosign(second.note, a.proof(3, 7)), second, sites)

    # The old copy goes back in place; the site knows only its checkpoint of size 3 and records other events.
    a.restore(early)
    assert a.size() == 3
    a.grow(2, "rewritten")
    smaller = a.publish()  # consistent with the only checkpoint the restored store holds, so A signs it
    assert smaller.size == 5
    refused = b.cosign(smaller.note, a.proof(3, 5))
    assert refused.status_code == 409
    assert refused.json() == {"detail": f"rollback: {A_LOG} presents size 5, but this witness already holds size 7"}

    a.grow(4, "rewritten later")
    forked = a.publish()
    assert forked.size == 9
    for proof in (a.proof(7, 9), a.proof(5, 9), a.proof(3, 9), []):
        refused = b.cosign(forked.note, proof)
        assert refused.status_code == 409
        detail = refused.json()["detail"]
        assert detail.startswith(f"fork: {A_LOG} at size 9 is not consistent with the size 7 this witness holds (")
    # Even the proof the forked store computes from size 7 of its own history leads elsewhere.
    assert (
        b.cosign(forked.note, a.proof(7, 9))
        .json()["detail"]
        .endswith(f"not root1 {base64.b64encode(second.root).decode()})")
    )
    held = b.held()
    assert held is not None
    assert (held.size, held.root) == (7, second.root)


# ---- 9. invalid input -----------------------------------------------------------------------------------------------


def _problem(answer: Response) -> tuple[str, str]:
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    return problem["field"], problem["message"]


def _note(log: str, size: int, root: bytes, key: Ed25519PrivateKey, name: str | None = None) -> str:
    body = Checkpoint(log, size, root).body()
    return SignedNote(body, (sign_note(body, name or log, key),)).render()


def test_invalid_input_to_the_witness_names_the_field(sites: Sites) -> None:
    a, b = sites.a, sites.b
    assert _problem(b.cosign("not a checkpoint")) == (
        "checkpoint",
        "signed note has no blank line between the text and the signatures",
    )
    assert _problem(b.client.post(COSIGN, json={"proof": []})) == ("checkpoint", "Field required")
    a.grow(3, "first")
    first = a.publish()

    stranger = Ed25519PrivateKey.generate()
    assert _problem(b.cosign(_note(A_LOG, 3, first.root, stranger))) == (
        "checkpoint",
        f"not signed by the key the network lists for {A_LOG}",
    )
    elsewhere = "cellrail/other-net/h-a"
    assert _problem(b.cosign(_note(elsewhere, 3, first.root, stranger))) == (
        "checkpoint",
        f"{elsewhere} is not a log of network 'test-net'",
    )
    note = SignedNote.parse(first.note)
    [signature] = note.signatures
    broken = NoteSignature(signature.name, signature.key_id, bytes(64))
    assert _problem(b.cosign(SignedNote(note.text, (broken,)).render())) == (
        "checkpoint",
        f"bad signature: invalid signature for key {A_LOG}+{signature.key_id.hex()}",
    )
    assert _problem(b.cosign(first.note, ["not base64!"])) == ("proof", "every proof hash must be base64")
    assert b.held() is None

    _cosigned(b.cosign(first.note), first, sites)
    a.grow(4, "second")
    second = a.publish()
    missing = b.cosign(second.note)
    assert missing.status_code == 409
    assert missing.json() == {
        "detail": f"fork: {A_LOG} at size 7 is not consistent with the size 3 this witness holds "
        "(empty proof for sizes 3 < 7)"
    }
    short = b.cosign(second.note, [base64.b64encode(bytes(31)).decode()])
    assert short.status_code == 409
    assert short.json()["detail"].endswith("(proof[0] is 31 bytes, expected 32)")
    held = b.held()
    assert held is not None
    assert held.size == 3


def test_a_server_without_a_witness_key_does_not_cosign(sites: Sites) -> None:
    sites.a.grow(1, "first")
    first = sites.a.publish()
    with TestClient(create_app(sites.a.engine, sites.a.clock)) as client:
        answer = client.post(COSIGN, json={"checkpoint": first.note})
    assert answer.status_code == 404
    assert answer.json() == {"detail": "this server is not configured as a witness (set CELLRAIL_SITE and its key)"}


# ---- concurrent cosign requests for one log -------------------------------------------------------------------------


def test_concurrent_requests_never_get_two_inconsistent_checkpoints_cosigned(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log that presents two forks of size 3 at the same moment gets at most one of them cosigned, on either
    backend: the second request must see what the first one stored."""
    keys_dir = tmp_path / "keys"
    network_text = with_site_keys(NETWORK_YAML, keys_dir)
    signers = load_signers(keys_dir)
    clock = ManualClock(START)
    with SqlUnitOfWork(engine) as uow:
        register_network(uow, network_text, "network.yaml", SYSTEM, clock)
    a_engine = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    with SqlUnitOfWork(a_engine) as uow:
        register_network(uow, network_text, "network.yaml", SYSTEM, clock)
    a = SiteA(tmp_path / "a.db", a_engine, ManualClock(START), signers[A_LOG])
    a.grow(3, "first")
    first = a.publish()
    a.backup(tmp_path / "a-early.db")
    a.grow(4, "one history")
    seven = a.publish()
    seven_proof = [base64.b64decode(h) for h in a.proof(3, 7)]
    a.restore(tmp_path / "a-early.db")
    a.grow(6, "another history")
    nine = a.publish()
    nine_proof = [base64.b64decode(h) for h in a.proof(3, 9)]
    a.engine.dispose()

    b_key = signers[B_LOG]
    with SqlUnitOfWork(engine) as uow:
        witness(uow, first.note, [], B_LOG, b_key, clock)

    # Hold each request right after it read what the witness holds, until the other has read it too (or 1 s).
    meeting = threading.Barrier(2, timeout=1)
    read_held = SqlCheckpoints.witnessed

    def witnessed_then_wait(self: SqlCheckpoints, log: str) -> StoredCheckpoint | None:
        held = read_held(self, log)
        with contextlib.suppress(threading.BrokenBarrierError):
            meeting.wait()
        return held

    monkeypatch.setattr(SqlCheckpoints, "witnessed", witnessed_then_wait)

    def present(note: str, proof: list[bytes]) -> Cosigned | Conflict:
        with SqlUnitOfWork(engine) as uow:
            try:
                return witness(uow, note, proof, B_LOG, b_key, clock)
            except Conflict as error:
                return error

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(present, [seven.note, nine.note], [seven_proof, nine_proof]))
    cosigned = [o for o in outcomes if isinstance(o, Cosigned)]
    refused = [str(o) for o in outcomes if isinstance(o, Conflict)]
    assert len(cosigned) == 1, outcomes
    [winner] = cosigned
    loser = 9 if winner.size == 7 else 7
    assert len(refused) == 1
    if loser > winner.size:  # the larger fork came second: it does not extend what the witness now holds
        assert refused[0].startswith(f"fork: {A_LOG} at size {loser} is not consistent with the size {winner.size} ")
    else:  # the smaller one came second: it would shrink the log the witness holds
        assert (
            refused[0] == f"rollback: {A_LOG} presents size {loser}, but this witness already holds size {winner.size}"
        )
    monkeypatch.undo()
    with SqlUnitOfWork(engine, write=False) as uow:
        held = uow.checkpoints.witnessed(A_LOG)
    assert held is not None
    assert held.size == winner.size
