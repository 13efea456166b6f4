"""Auditor-grade ledger (issue 8): signed checkpoints, proofs and the four verification passes.

Every scenario runs on SQLite and on a real PostgreSQL server (the ``engine`` fixture), except the offline
proof-file properties and the command line, which need one store only. The attacks are played the way an
attacker with database access would: switch off the append-only triggers, rewrite rows, recompute hashes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from cellrail.api.app import create_app
from cellrail.cli.main import app as cli
from cellrail.demo.journeys import with_site_keys
from cellrail.kernel.clock import ManualClock
from cellrail.kernel.errors import Conflict, NotFound
from cellrail.rail.access_control import SYSTEM, Principal, Role
from cellrail.rail.audit import (
    AuditReport,
    Finding,
    consistency_proof,
    inclusion_proof,
    inclusion_proofs,
    publish_checkpoints,
    site_verifier_keys,
    verify_ledger,
)
from cellrail.rail.ledger import GENESIS, CustodyEvent, EventKind, link, verify_rows
from cellrail.rail.orders import OrderState as S
from cellrail.rail.ports import StoredCheckpoint
from cellrail.rail.recording import origin, record
from cellrail.rail.services import (
    AdvanceOrder,
    BookOrder,
    EnrollPatient,
    LabelScan,
    advance,
    book,
    enroll,
    register_network,
)
from cellrail.store.engine import open_store
from cellrail.store.keyring import load_signers
from cellrail.store.uow import SqlUnitOfWork
from cellrail.transparency.merkle import MemoryStore
from cellrail.transparency.note import (
    Checkpoint,
    NoteSignature,
    SignedNote,
    sign_note,
    verifier_key,
    verify_note_signatures,
)
from cellrail.transparency.verifier import ProofError, check_proof_file, leaf_hash
from tests.api_support import ok, user
from tests.conftest import NETWORK_YAML, START, add_user, seed

NET = "test-net"
H_A, H_B, HUB, NETWORK = (origin(NET, site) for site in ("h-a", "h-b", "hub", "network"))
AUDITOR = Principal("aud", "Aud", "hub", frozenset({Role.AUDITOR}))
ALTERED = "content does not match its hash (altered)"


# ---- a keyed network and a journey across two sites ---------------------------------------------------------------


@dataclass
class Site:
    """A store whose network lists every log's public key, with the private keys in ``keys_dir``."""

    engine: Engine
    clock: ManualClock
    keys_dir: Path
    network_text: str
    signers: dict[str, Ed25519PrivateKey]
    coi: str = ""
    label: LabelScan | None = None
    op_hub: Principal | None = None

    def key(self, log: str) -> str:
        """The verifier key the network file lists for ``log``."""
        with SqlUnitOfWork(self.engine, write=False) as uow:
            network = uow.networks.current()
        assert network is not None
        return site_verifier_keys(network)[log]

    def publish(self) -> list[tuple[str, int]]:
        with SqlUnitOfWork(self.engine) as uow:
            return [(c.log, c.size) for c in publish_checkpoints(uow, self.signers, self.clock)]

    def verify(self) -> AuditReport:
        with SqlUnitOfWork(self.engine, write=False) as uow:
            return verify_ledger(uow, AUDITOR)

    def history(self, log: str) -> list[StoredCheckpoint]:
        with SqlUnitOfWork(self.engine, write=False) as uow:
            return uow.checkpoints.history(log)

    def sizes(self) -> dict[str, int]:
        with SqlUnitOfWork(self.engine, write=False) as uow:
            return uow.ledger.logs()

    def grow(self, node: str, count: int, tag: str = "scan") -> None:
        """Append ``count`` custody events to ``node``'s log through the one recording path."""
        with SqlUnitOfWork(self.engine) as uow:
            for n in range(count):
                self.clock.advance(timedelta(minutes=1))
                event = CustodyEvent(
                    EventKind.CUSTODY_SCAN, node, "courier", "courier", self.clock.now(), data={"note": f"{tag} {n}"}
                )
                record(uow, self.clock, event)
            uow.commit()


def keyed_site(engine: Engine, clock: ManualClock, keys_dir: Path) -> Site:
    """Register the test network with a fresh signing key per log and open three days of slots."""
    network_text = with_site_keys(NETWORK_YAML, keys_dir)
    seed(engine, clock, network_text, days=3)
    return Site(engine, clock, keys_dir, network_text, load_signers(keys_dir))


def ship_to_hub(site: Site) -> None:
    """Enrol at h-a, book, collect and ship to the hub: h-a's log reaches 6 events, the hub's 2."""
    engine, clock = site.engine, site.clock
    op_a = add_user(engine, clock, "op-a", "h-a", Role.NODE_OPERATOR)
    site.op_hub = add_user(engine, clock, "op-hub", "hub", Role.NODE_OPERATOR)
    patient = EnrollPatient(treatment_site="h-a", mrn="MRN-1", full_name="Li Wei", birth_date=date(1970, 1, 1))
    with SqlUnitOfWork(engine) as uow:
        order = enroll(uow, patient, op_a, clock)
    with SqlUnitOfWork(engine) as uow:
        booking = book(uow, order.coi, BookOrder(), op_a, clock)
    clock.set(booking.apheresis.ends)
    with SqlUnitOfWork(engine) as uow:
        order = advance(uow, order.coi, AdvanceOrder(to=S.COLLECTED), op_a, clock)
    site.coi, site.label = order.coi, LabelScan(coi=order.coi, din=order.collection_din or "")
    clock.advance(timedelta(hours=1))
    with SqlUnitOfWork(engine) as uow:
        advance(uow, order.coi, AdvanceOrder(to=S.SHIPPED_TO_MANUFACTURING, scan=site.label), op_a, clock)


def receive_at_hub(site: Site) -> None:
    assert site.op_hub is not None
    site.clock.advance(timedelta(hours=4))
    with SqlUnitOfWork(site.engine) as uow:
        command = AdvanceOrder(to=S.RECEIVED_AT_MANUFACTURING, scan=site.label)
        advance(uow, site.coi, command, site.op_hub, site.clock)


def audited_site(engine: Engine, clock: ManualClock, keys_dir: Path) -> Site:
    """The common starting point of the fault tests: h-a's log holds 12 events and checkpoints at 6 and 10;
    the hub's 3 events (checkpoints at 2 and 3), h-b and the network log one each (checkpoint at 1)."""
    site = keyed_site(engine, clock, keys_dir)
    ship_to_hub(site)
    assert site.publish() == [(H_A, 6), (H_B, 1), (HUB, 2), (NETWORK, 1)]
    receive_at_hub(site)
    site.grow("h-a", 4)
    assert site.publish() == [(H_A, 10), (HUB, 3)]
    site.grow("h-a", 2, "unsigned")
    assert site.sizes() == {H_A: 12, H_B: 1, HUB: 3, NETWORK: 1}
    assert site.verify().findings == []
    return site


@pytest.fixture
def site(engine: Engine, clock: ManualClock, tmp_path: Path) -> Site:
    return audited_site(engine, clock, tmp_path / "keys")


# ---- what an attacker with database access does -------------------------------------------------------------------


def guards_off(connection: Connection, *tables: str) -> None:
    """Switch off the append-only triggers of ``tables``, as someone with database access can."""
    for table in tables:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_change"))
        else:
            connection.execute(text(f"DROP TRIGGER {table}_no_update"))
            connection.execute(text(f"DROP TRIGGER {table}_no_delete"))


OF_LOG = "log_id = (SELECT id FROM ledger_logs WHERE origin = :l)"  # raw SQL's way to name a log by its origin


def canonical(content: dict[str, Any]) -> bytes:
    """The ledger's canonical encoding of an event (cellrail.rail.ledger.encode)."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def bodies_of(engine: Engine, log: str) -> list[bytes]:
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT body FROM ledger_events WHERE {OF_LOG} ORDER BY seq"), {"l": log})
        return [bytes(body) for (body,) in rows]


def rewrite_history(engine: Engine, log: str, seq: int) -> MemoryStore:
    """Change event ``seq`` of ``log`` and recompute every later chain hash and every Merkle node of the log,
    so the rewritten log is consistent in itself. Returns the rewritten tree."""
    bodies = bodies_of(engine, log)
    content = json.loads(bodies[seq - 1])
    assert content["actor"] != "mallory"
    content["actor"] = "mallory"
    bodies[seq - 1] = canonical(content)
    tree = MemoryStore(leaf_hash(body) for body in bodies)
    with engine.begin() as connection:
        guards_off(connection, "ledger_events")
        previous = GENESIS
        for number, body in enumerate(bodies, start=1):
            previous = link(previous, body)
            if number >= seq:
                connection.execute(
                    text(f"UPDATE ledger_events SET body = :b, hash = :h WHERE {OF_LOG} AND seq = :s"),
                    {"b": body, "h": previous, "l": log, "s": number},
                )
            # The inner nodes the event completed (levels 1.. the trailing zero bits of its number), recomputed.
            levels = range(1, (number & -number).bit_length())
            connection.execute(
                text(f"UPDATE ledger_events SET tree_nodes = :n WHERE {OF_LOG} AND seq = :s"),
                {"n": b"".join(tree.perfect(lv, (number >> lv) - 1) for lv in levels), "l": log, "s": number},
            )
    return tree


def signed_note(log: str, size: int, root: bytes, private: Ed25519PrivateKey) -> str:
    body = Checkpoint(log, size, root).body()
    return SignedNote(body, (sign_note(body, log, private),)).render()


def insert_checkpoint(engine: Engine, log: str, size: int, root: bytes, note: str, clock: ManualClock) -> None:
    """Add a checkpoint row: INSERT is all the append-only triggers allow, and all this needs."""
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO checkpoints (log, size, root, note, signed_at) VALUES (:l, :s, :r, :n, :t)"),
            {"l": log, "s": size, "r": root, "n": note, "t": clock.now()},
        )


def checks(report: AuditReport) -> list[tuple[str, str, int | None]]:
    return [(f.check, f.log, f.position) for f in report.findings]


# ---- 1. the happy path ----------------------------------------------------------------------------------------------


def test_checkpoints_of_a_journey_across_two_sites_verify(engine: Engine, clock: ManualClock, tmp_path: Path) -> None:
    site = keyed_site(engine, clock, tmp_path / "keys")
    assert sorted(site.signers) == [H_A, H_B, HUB, NETWORK]
    ship_to_hub(site)
    assert site.sizes() == {H_A: 6, H_B: 1, HUB: 2, NETWORK: 1}
    # One checkpoint per log that grew, and none again until a log grows.
    assert site.publish() == [(H_A, 6), (H_B, 1), (HUB, 2), (NETWORK, 1)]
    assert site.publish() == []
    receive_at_hub(site)
    assert site.publish() == [(HUB, 3)]

    report = site.verify()
    assert report.findings == []
    assert report.ok
    assert (report.logs, report.events, report.checkpoints) == (4, 11, 5)

    # Each checkpoint is a C2SP note signed by the key the network file lists for its log, over the events' root.
    for log, size in site.sizes().items():
        [*_, latest] = site.history(log)
        note = SignedNote.parse(latest.note)
        assert Checkpoint.parse(note.text) == Checkpoint(log, size, latest.root)
        assert verify_note_signatures(note, [site.key(log)]) == [log]
        assert latest.root == MemoryStore(leaf_hash(b) for b in bodies_of(engine, log)).root()

    # The hand-off received at the hub pins the treatment site's history as the hub saw it; when h-a shipped,
    # the hub had no checkpoint yet, so that hand-off pins nothing.
    shipped = json.loads(bodies_of(engine, H_A)[-1])
    received = json.loads(bodies_of(engine, HUB)[-1])
    assert (shipped["data"]["to"], received["data"]["to"]) == ("shipped_to_manufacturing", "received_at_manufacturing")
    assert "counterparty_checkpoint" not in shipped["data"]
    [h_a_checkpoint] = site.history(H_A)
    assert received["data"]["counterparty_checkpoint"] == {
        "origin": H_A,
        "size": 6,
        "root": base64.b64encode(h_a_checkpoint.root).decode(),
    }


# ---- 2. a site never signs a history that contradicts its last checkpoint ----------------------------------------


def test_a_tampered_tree_node_is_never_signed(site: Site) -> None:
    before = {log: site.history(log) for log in (H_A, H_B, HUB, NETWORK)}
    # The hub's checkpoint of size 3 covers leaves 0-2; the node over leaves 0-1 is a frontier node the next
    # append builds on.
    with site.engine.begin() as connection:
        guards_off(connection, "ledger_events")
        changed = connection.execute(  # node (level 1, index 0) is the one event 2 completed
            text(f"UPDATE ledger_events SET tree_nodes = :h WHERE {OF_LOG} AND seq = 2"),
            {"h": hashlib.sha256(b"forged").digest(), "l": HUB},
        )
        assert changed.rowcount == 1
    site.grow("hub", 2)  # h-a grew too (two unsigned events), and is signed before the hub in log order
    with SqlUnitOfWork(site.engine) as uow, pytest.raises(Conflict) as refused:
        publish_checkpoints(uow, site.signers, site.clock)
    assert str(refused.value).startswith(f"refusing to sign {HUB} at size 5: not consistent with size 3: ")
    # Nothing was signed, not even h-a's checkpoint that came first in the same round.
    assert {log: site.history(log) for log in before} == before


# ---- 3. a consistent rewrite by someone without the private key ---------------------------------------------------


@pytest.mark.parametrize("checkpoints", ["kept", "roots replaced", "re-signed by the attacker"])
def test_a_consistent_rewrite_is_caught_only_by_the_signed_checkpoints(site: Site, checkpoints: str) -> None:
    honest = site.history(H_A)
    assert [c.size for c in honest] == [6, 10]
    tree = rewrite_history(site.engine, H_A, 2)
    if checkpoints != "kept":
        attacker = Ed25519PrivateKey.generate()
        with site.engine.begin() as connection:
            guards_off(connection, "checkpoints")
            for checkpoint in honest:
                root = tree.root(checkpoint.size)
                assert root != checkpoint.root
                note = checkpoint.note
                if checkpoints == "re-signed by the attacker":
                    note = signed_note(H_A, checkpoint.size, root, attacker)
                connection.execute(
                    text("UPDATE checkpoints SET root = :r, note = :n WHERE log = :l AND size = :s"),
                    {"r": root, "n": note, "l": H_A, "s": checkpoint.size},
                )

    # The hash chain alone cannot tell: every link was recomputed. That is why checkpoints are signed.
    with SqlUnitOfWork(site.engine, write=False) as uow:
        chain = verify_rows(uow.ledger.rows(H_A), H_A)
    assert (chain.ok, chain.checked) == (True, 12)
    report = site.verify()
    assert report.events == 12 + 1 + 3 + 1
    assert all(f.check != "chain" for f in report.findings)
    assert all(f.log == H_A for f in report.findings)
    if checkpoints == "kept":
        # The events no longer produce the root h-a signed, and the rebuilt tree does not extend size 6.
        assert checks(report) == [("merkle", H_A, 10), ("consistency", H_A, 10)]
        assert report.findings[0].reason == "the events' Merkle root differs from the signed checkpoint"
        assert report.findings[1].reason.startswith("not consistent with size 6: proof leads to old root ")
    elif checkpoints == "roots replaced":
        assert report.findings == [
            Finding("signature", H_A, 6, "the signed note does not match the stored checkpoint"),
            Finding("signature", H_A, 10, "the signed note does not match the stored checkpoint"),
        ]
    else:
        assert report.findings == [
            Finding("signature", H_A, 6, "no valid signature by the listed key"),
            Finding("signature", H_A, 10, "no valid signature by the listed key"),
        ]


# ---- 4. each pass fires on its own fault and names where ------------------------------------------------------


@pytest.mark.parametrize(
    ("seq", "expected"),
    [
        (11, [Finding("chain", H_A, 11, ALTERED)]),  # past the latest checkpoint: only the chain can tell
        (
            3,
            [
                Finding("chain", H_A, 3, ALTERED),
                Finding("merkle", H_A, 10, "the events' Merkle root differs from the signed checkpoint"),
            ],
        ),
    ],
)
def test_chain_pass_names_an_edited_body(site: Site, seq: int, expected: list[Finding]) -> None:
    body = bodies_of(site.engine, H_A)[seq - 1]
    forged = canonical({**json.loads(body), "actor": "mallory"})
    with site.engine.begin() as connection:
        guards_off(connection, "ledger_events")
        connection.execute(
            text(f"UPDATE ledger_events SET body = :b WHERE {OF_LOG} AND seq = :s"), {"b": forged, "l": H_A, "s": seq}
        )
    report = site.verify()
    assert report.findings == expected
    assert report.events == seq - 1 + 1 + 3 + 1  # the chain walk stops at the first break of h-a


def test_merkle_pass_names_a_log_shorter_than_its_checkpoint(site: Site) -> None:
    # Cutting the tail leaves an intact chain of 8 events, but h-a signed a tree of 10.
    with site.engine.begin() as connection:
        guards_off(connection, "ledger_events")
        connection.execute(text(f"DELETE FROM ledger_events WHERE {OF_LOG} AND seq > 8"), {"l": H_A})
    report = site.verify()
    # Event 10 carried tree node (1, 4), so the cut also leaves checkpoint 10 unprovable from checkpoint 6.
    assert report.findings == [
        Finding("merkle", H_A, 10, "the log holds 8 events, fewer than its checkpoint"),
        Finding(
            "consistency",
            H_A,
            10,
            f"not consistent with size 6: log {H_A}: tree node (1, 4) is missing from the store",
        ),
    ]
    assert report.events == 8 + 1 + 3 + 1


def test_consistency_pass_names_a_forged_checkpoint_signed_with_a_stolen_key(site: Site) -> None:
    # Whoever stole h-a's key file signs a tree of 7 whose root is not the log's: the signature is valid, the
    # latest checkpoint still matches the events, but the history of checkpoints is not one growing tree.
    stolen = load_signers(site.keys_dir)[H_A]
    wrong_root = hashlib.sha256(b"another history").digest()
    insert_checkpoint(site.engine, H_A, 7, wrong_root, signed_note(H_A, 7, wrong_root, stolen), site.clock)
    report = site.verify()
    assert checks(report) == [("consistency", H_A, 7), ("consistency", H_A, 10)]
    assert report.findings[0].reason.startswith("not consistent with size 6: proof leads to new root ")
    assert report.findings[1].reason.startswith("not consistent with size 7: proof leads to old root ")
    assert report.checkpoints == 3 + 1 + 2 + 1


def _with_h_a_key(network_text: str, key: str | None) -> str:
    document = yaml.safe_load(network_text)
    [node] = [n for n in document["nodes"] if n["id"] == "h-a"]
    if key is None:
        del node["public_key"]
    else:
        node["public_key"] = key
    return str(yaml.safe_dump(document, sort_keys=False))


@pytest.mark.parametrize("listed", ["another key", "no key"])
def test_signature_pass_names_checkpoints_the_listed_key_did_not_sign(site: Site, listed: str) -> None:
    other = verifier_key(H_A, Ed25519PrivateKey.generate().public_key())
    changed = _with_h_a_key(site.network_text, other if listed == "another key" else None)
    with SqlUnitOfWork(site.engine) as uow:
        register_network(uow, changed, "changed.yaml", SYSTEM, site.clock)
    reason = (
        "no valid signature by the listed key"
        if listed == "another key"
        else ("the network file lists no public key for this log")
    )
    report = site.verify()
    assert report.findings == [Finding("signature", H_A, 6, reason), Finding("signature", H_A, 10, reason)]
    # The site itself now refuses to sign with a key the network file does not list.
    if listed == "another key":
        with SqlUnitOfWork(site.engine) as uow, pytest.raises(Conflict, match="is not the one the network file lists"):
            publish_checkpoints(uow, site.signers, site.clock)


def test_signature_pass_names_a_note_with_a_broken_signature(site: Site) -> None:
    root = MemoryStore(leaf_hash(b) for b in bodies_of(site.engine, H_A)).root(8)
    note = SignedNote.parse(signed_note(H_A, 8, root, site.signers[H_A]))
    [signature] = note.signatures
    broken = NoteSignature(signature.name, signature.key_id, bytes([signature.payload[0] ^ 1]) + signature.payload[1:])
    insert_checkpoint(site.engine, H_A, 8, root, SignedNote(note.text, (broken,)).render(), site.clock)
    key_id = signature.key_id.hex()
    report = site.verify()
    assert report.findings == [
        Finding("signature", H_A, 8, f"bad signed note: invalid signature for key {H_A}+{key_id}")
    ]


# ---- 5. proofs that an auditor checks offline ----------------------------------------------------------------------


def test_proof_documents_verify_with_the_trusted_key(site: Site) -> None:
    key = site.key(H_A)
    with SqlUnitOfWork(site.engine, write=False) as uow:
        latest = inclusion_proof(uow, H_A, 3, None, AUDITOR)
        earlier = inclusion_proof(uow, H_A, 6, 6, AUDITOR)
        both = consistency_proof(uow, H_A, 6, 10)
        uncheckpointed = consistency_proof(uow, H_A, 4, 10)
    assert (latest["tree_size"], latest["leaf_index"], latest["verifier_keys"]) == (10, 2, [key])
    assert base64.b64decode(latest["event"]["body"]) == bodies_of(site.engine, H_A)[2]
    assert check_proof_file(latest, [key]).startswith(
        f"OK: event seq 3 is leaf 2 of log '{H_A}' at tree size 10 (root "
    )
    assert check_proof_file(earlier, [key]).startswith(f"OK: event seq 6 is leaf 5 of log '{H_A}' at tree size 6 ")
    summary = check_proof_file(both, [key])
    assert summary.startswith(f"OK: log '{H_A}' at tree size 6 (root ")
    assert summary.endswith(
        f"checkpoint2 signed by {H_A}; checkpoint1 signed by {H_A} (verified with the auditor's trusted keys)"
    )
    assert uncheckpointed["checkpoint1"] is None
    assert "(root1 from the document: no checkpoint1)" in check_proof_file(uncheckpointed, [key])
    # Another site's key is not h-a's: the proof is refused, however well its hashes fit.
    with pytest.raises(ProofError, match="checkpoint carries no valid signature from the given keys"):
        check_proof_file(latest, [site.key(HUB)])


@pytest.fixture(scope="module")
def proofs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], str]:
    """An inclusion and a consistency proof document from a SQLite store, and h-a's verifier key."""
    directory = tmp_path_factory.mktemp("proofs")
    engine = open_store(f"sqlite:///{directory / 'store.db'}")
    site = audited_site(engine, ManualClock(START), directory / "keys")
    with SqlUnitOfWork(engine, write=False) as uow:
        inclusion = inclusion_proof(uow, H_A, 5, None, AUDITOR)
        consistency = consistency_proof(uow, H_A, 6, 10)
    key = site.key(H_A)
    engine.dispose()
    assert (len(inclusion["proof"]), len(consistency["proof"])) == (4, 4)
    return inclusion, consistency, key


def test_a_batch_of_inclusion_proofs_equals_single_proofs_and_all_verify(site: Site) -> None:
    """inclusion_proofs reads shared siblings, nodes and bodies in batches (more than one query's worth here);
    each document must be exactly the one inclusion_proof builds alone, and check offline."""
    site.grow("h-a", 1_188)  # h-a: 1,200 events, so sibling and body reads need several IN (...) queries
    site.publish()
    with SqlUnitOfWork(site.engine, write=False) as uow:
        size = uow.ledger.logs()[H_A]
        seqs = [*range(1, size + 1), 7, 7]  # every leaf, and a repeat
        batch = inclusion_proofs(uow, H_A, seqs, None, AUDITOR)
        singles = [inclusion_proof(uow, H_A, seq, None, AUDITOR) for seq in (1, 7, 513, 1_024, size)]
        with pytest.raises(NotFound):
            inclusion_proofs(uow, H_A, [5, size + 1], size + 1, AUDITOR)
    assert [d["event"]["seq"] for d in batch] == seqs
    assert [batch[seq - 1] for seq in (1, 7, 513, 1_024, size)] == singles
    assert batch[-1] == batch[6]
    key = site.key(H_A)
    for document in batch:
        check_proof_file(document, [key])


def _flip(raw: bytes, data: st.DataObject) -> bytes:
    index = data.draw(st.integers(0, len(raw) - 1), label="byte")
    value = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]), label="new value")
    return raw[:index] + bytes([value]) + raw[index + 1 :]


def _tampered(document: dict[str, Any], where: Sequence[str | int], data: st.DataObject) -> dict[str, Any]:
    """``document`` with one byte changed in the base64 field or note text at path ``where``."""
    changed = copy.deepcopy(document)
    parent: Any = changed
    for step in where[:-1]:
        parent = parent[step]
    value = parent[where[-1]]
    if str(where[-1]).startswith("checkpoint"):
        altered = _flip(value.encode("utf-8"), data).decode("utf-8", errors="replace")
    else:
        altered = base64.b64encode(_flip(base64.b64decode(value), data)).decode()
    assert altered != value
    parent[where[-1]] = altered
    return changed


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_changed_byte_makes_an_inclusion_proof_invalid(
    proofs: tuple[dict[str, Any], dict[str, Any], str], data: st.DataObject
) -> None:
    inclusion, _, key = proofs
    check_proof_file(inclusion, [key])
    where = data.draw(
        st.sampled_from([("event", "body"), ("checkpoint",), *(("proof", i) for i in range(len(inclusion["proof"])))])
    )
    tampered = _tampered(inclusion, where, data)
    with pytest.raises(ProofError):
        check_proof_file(tampered, [key])
    with pytest.raises(ProofError):
        check_proof_file(tampered, None)  # the document's own key does not save it either


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_changed_byte_makes_a_consistency_proof_invalid(
    proofs: tuple[dict[str, Any], dict[str, Any], str], data: st.DataObject
) -> None:
    _, consistency, key = proofs
    check_proof_file(consistency, [key])
    where = data.draw(
        st.sampled_from(
            [("root1",), ("checkpoint1",), ("checkpoint2",), *(("proof", i) for i in range(len(consistency["proof"])))]
        )
    )
    with pytest.raises(ProofError):
        check_proof_file(_tampered(consistency, where, data), [key])


def test_cli_signs_proves_and_checks(sqlite_url: str, clock: ManualClock, tmp_path: Path) -> None:
    engine = open_store(sqlite_url)
    keys_dir = tmp_path / "keys"
    site = keyed_site(engine, clock, keys_dir)
    ship_to_hub(site)
    key, hub_key = site.key(H_A), site.key(HUB)
    engine.dispose()
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, list(args), env={"COLUMNS": "250", "NO_COLOR": "1"})
        return result.exit_code, result.output

    assert run("checkpoint", "-d", sqlite_url, "--keys-dir", str(keys_dir)) == (
        0,
        f"signed {H_A} at size 6\nsigned {H_B} at size 1\nsigned {HUB} at size 2\nsigned {NETWORK} at size 1\n",
    )
    assert run("checkpoint", "-d", sqlite_url, "--keys-dir", str(keys_dir)) == (
        0,
        "no log grew since its last checkpoint\n",
    )
    inclusion, consistency = tmp_path / "inclusion.json", tmp_path / "consistency.json"
    assert run("proof", "inclusion", "h-a/3", "-d", sqlite_url, "--out", str(inclusion)) == (
        0,
        f"ok proof written to {inclusion}\n",
    )
    assert run("proof", "consistency", "2", "6", "--site", "h-a", "-d", sqlite_url, "--out", str(consistency))[0] == 0
    code, output = run("proof", "check", str(inclusion), "--key", key)
    assert (code, output.startswith(f"VALID OK: event seq 3 is leaf 2 of log '{H_A}' at tree size 6 ")) == (0, True)
    code, output = run("proof", "check", str(consistency), "--key", key)
    assert (code, output.startswith(f"VALID OK: log '{H_A}' at tree size 2 ")) == (0, True)

    # The wrong trusted key, or one changed hash, and the file is INVALID (exit 1).
    code, output = run("proof", "check", str(inclusion), "--key", hub_key)
    assert (code, output) == (1, "INVALID checkpoint carries no valid signature from the given keys\n")
    document = json.loads(inclusion.read_text())
    first = base64.b64decode(document["proof"][0])
    document["proof"][0] = base64.b64encode(bytes([first[0] ^ 1]) + first[1:]).decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(document))
    code, output = run("proof", "check", str(tampered), "--key", key)
    assert code == 1
    assert output.startswith("INVALID inclusion proof: proof leads to root ")


# ---- 6. the HTTP API -------------------------------------------------------------------------------------------------


def test_api_serves_checkpoints_proofs_and_findings(engine: Engine, clock: ManualClock, tmp_path: Path) -> None:
    site = keyed_site(engine, clock, tmp_path / "keys")
    ship_to_hub(site)
    client = TestClient(create_app(engine, clock, signers=site.signers))  # no lifespan: no background signing
    admin = user(client, engine, clock, "admin", "hub", Role.NETWORK_ADMIN)
    auditor = user(client, engine, clock, "auditor", "h-b", Role.AUDITOR)
    operator = user(client, engine, clock, "operator", "h-a", Role.NODE_OPERATOR)
    sizes = {H_A: 7, H_B: 2, HUB: 3, NETWORK: 1}  # the three users are on their nodes' logs

    assert client.get("/api/v1/ledger/logs").status_code == 401
    assert client.get("/api/v1/ledger/logs", headers=operator).status_code == 403
    answer = client.get("/api/v1/ledger/logs", headers=auditor)
    assert answer.status_code == 200
    assert answer.json() == [{"log": log, "size": size, "checkpoint": None} for log, size in sizes.items()]
    assert client.get("/api/v1/ledger/checkpoints/h-a").json() == {"detail": f"no checkpoint of {H_A} yet"}

    assert client.post("/api/v1/ledger/checkpoints").status_code == 401
    for other in (operator, auditor):
        refused = client.post("/api/v1/ledger/checkpoints", headers=other)
        assert refused.status_code == 403
        assert refused.json()["detail"].endswith("may not manage network here")
    assert site.history(H_A) == []
    answer = client.post("/api/v1/ledger/checkpoints", headers=admin)
    assert answer.status_code == 200
    signed = answer.json()
    assert [(c["log"], c["size"]) for c in signed] == list(sizes.items())
    assert client.post("/api/v1/ledger/checkpoints", headers=admin).json() == []
    logs = client.get("/api/v1/ledger/logs", headers=auditor).json()
    assert [entry["checkpoint"] for entry in logs] == signed

    # The latest checkpoint of a site is public: a text/plain C2SP note.
    note = client.get("/api/v1/ledger/checkpoints/h-a")
    assert note.status_code == 200
    assert note.headers["content-type"] == "text/plain; charset=utf-8"
    assert note.text == signed[0]["note"] == site.history(H_A)[0].note
    assert verify_note_signatures(SignedNote.parse(note.text), [site.key(H_A)]) == [H_A]
    assert client.get("/api/v1/ledger/checkpoints/nowhere").json() == {
        "detail": [{"field": "site", "message": "unknown node 'nowhere'"}]
    }

    key = site.key(H_A)
    inclusion = "/api/v1/ledger/proofs/inclusion?site=h-a&seq=3"
    assert client.get(inclusion).status_code == 401
    document = ok(client.get(inclusion, headers=auditor))
    assert check_proof_file(document, [key]).startswith(f"OK: event seq 3 is leaf 2 of log '{H_A}' at tree size 7 ")
    beyond = client.get("/api/v1/ledger/proofs/inclusion?site=h-a&seq=8", headers=auditor)
    assert beyond.status_code == 422
    assert beyond.json() == {"detail": [{"field": "seq", "message": "event 8 is not in the tree of size 7"}]}
    document = ok(client.get("/api/v1/ledger/proofs/consistency?site=h-a&size1=2&size2=7"))  # public
    assert check_proof_file(document, [key]).startswith(f"OK: log '{H_A}' at tree size 2 ")
    missing = client.get("/api/v1/ledger/proofs/consistency?site=h-a&size1=2&size2=6")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"no checkpoint of {H_A} at size 6"}

    assert client.get("/api/v1/ledger/verify", headers=operator).status_code == 403
    report = ok(client.get("/api/v1/ledger/verify", headers=auditor))
    assert report == {"ok": True, "logs": 4, "checked": 13, "checkpoints": 4, "findings": []}
    # A checkpoint whose note carries a broken signature, and a cut tail: both named, in the new shape.
    root = MemoryStore(leaf_hash(b) for b in bodies_of(engine, H_A)).root(5)
    good = SignedNote.parse(signed_note(H_A, 5, root, site.signers[H_A]))
    [signature] = good.signatures
    bad = NoteSignature(signature.name, signature.key_id, bytes(64))
    insert_checkpoint(engine, H_A, 5, root, SignedNote(good.text, (bad,)).render(), clock)
    with engine.begin() as connection:
        guards_off(connection, "ledger_events")
        connection.execute(text(f"DELETE FROM ledger_events WHERE {OF_LOG} AND seq = 2"), {"l": HUB})
    report = ok(client.get("/api/v1/ledger/verify", headers=admin))
    assert report == {
        "ok": False,
        "logs": 4,
        "checked": 13 - 2,
        "checkpoints": 5,
        "findings": [
            {
                "check": "signature",
                "log": H_A,
                "position": 5,
                "reason": f"bad signed note: invalid signature for key {H_A}+{signature.key_id.hex()}",
            },
            {"check": "chain", "log": HUB, "position": 2, "reason": "event 2 is missing"},
            {
                "check": "merkle",
                "log": HUB,
                "position": 3,
                "reason": "the log holds 2 events, fewer than its checkpoint",
            },
        ],
    }
