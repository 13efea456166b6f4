"""RFC 9162 Merkle trees: roots, proof generation and the offline verifier.

* Every transparency-dev/merkle test vector (tests/data/merkle-vectors, 98 inclusion + 98 consistency cases)
  gives its expected answer.
* Roots, inclusion proofs and consistency proofs for every tree size up to 130 (every index, every old size)
  equal a naive recursive implementation written here straight from RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1.
* Tampering with any bit of a proof, leaf or root, or claiming another index or size, fails verification.
* Proof documents (``check_proof_file``): valid, tampered and malformed ones; signatures checked with keys made
  here with ``cryptography`` alone, so the signed notes do not come from the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cellrail.transparency.merkle import (
    MemoryStore,
    consistency_proof,
    frontier,
    frontier_read_by_append,
    inclusion_proof,
    inclusion_proof_keys,
    nodes_to_store,
    range_hash,
    root,
    root_from_leaves,
)
from cellrail.transparency.verifier import (
    EMPTY_ROOT,
    ProofError,
    check_proof_file,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "data" / "merkle-vectors" / "testdata"

# ---- the test vectors --------------------------------------------------------------------------------------------


def _vector_files(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _b64(text: str) -> bytes:
    return base64.b64decode(text)  # lenient: the negative cases include empty and short "hashes" on purpose


def test_all_vectors_are_present() -> None:
    assert len(_vector_files("inclusion")) == 98
    assert len(_vector_files("consistency")) == 98


@pytest.mark.parametrize(
    "path", _vector_files("inclusion"), ids=lambda p: str(p.relative_to(VECTORS / "inclusion").with_suffix(""))
)
def test_inclusion_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    args = (
        _b64(case["leafHash"]),
        case["leafIdx"],
        case["treeSize"],
        [_b64(h) for h in case["proof"] or []],
        _b64(case["root"]),
    )
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize(
    "path", _vector_files("consistency"), ids=lambda p: str(p.relative_to(VECTORS / "consistency").with_suffix(""))
)
def test_consistency_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    args = (
        case["size1"],
        case["size2"],
        [_b64(h) for h in case["proof"] or []],
        _b64(case["root1"]),
        _b64(case["root2"]),
    )
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


# ---- a naive reference, straight from RFC 9162 -------------------------------------------------------------------

MAX = 130
LEAVES = [leaf_hash(b"leaf %d" % i) for i in range(2 * MAX)]
STORE = MemoryStore(LEAVES)


def naive_split(n: int) -> int:
    """The largest power of two smaller than n (n > 1), by counting rather than bit tricks."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def mth(lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]), RFC 9162 §2.1.1."""
    n = hi - lo
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return LEAVES[lo]
    k = naive_split(n)
    return hashlib.sha256(b"\x01" + mth(lo, lo + k) + mth(lo + k, hi)).digest()


def naive_path(m: int, lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]), RFC 9162 §2.1.3.1."""
    if hi - lo == 1:
        return []
    k = naive_split(hi - lo)
    if m < k:
        return [*naive_path(m, lo, lo + k), mth(lo + k, hi)]
    return [*naive_path(m - k, lo + k, hi), mth(lo, lo + k)]


def naive_subproof(m: int, lo: int, hi: int, b: bool) -> list[bytes]:
    """SUBPROOF(m, D[lo:hi], b), RFC 9162 §2.1.4.1."""
    n = hi - lo
    if m == n:
        return [] if b else [mth(lo, hi)]
    k = naive_split(n)
    if m <= k:
        return [*naive_subproof(m, lo, lo + k, b), mth(lo + k, hi)]
    return [*naive_subproof(m - k, lo + k, hi, False), mth(lo, lo + k)]


def test_hashes_are_rfc_9162() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"l", b"r") == hashlib.sha256(b"\x01lr").digest()


def test_roots_match_rfc_for_every_size() -> None:
    for size in range(MAX + 1):
        want = mth(0, size)
        assert root(STORE, size) == want, size
        assert MemoryStore(LEAVES[:size]).root() == want, size
        assert root_from_leaves(LEAVES[:size]) == want, size


def test_inclusion_proofs_match_rfc_and_verify() -> None:
    for size in range(1, MAX + 1):
        tree_root = mth(0, size)
        for index in range(size):
            proof = inclusion_proof(STORE, index, size)
            assert proof == naive_path(index, 0, size), (index, size)
            verify_inclusion(LEAVES[index], index, size, proof, tree_root)


def test_consistency_proofs_match_rfc_and_verify() -> None:
    for size2 in range(MAX + 1):
        for size1 in range(1, size2 + 1):
            proof = consistency_proof(STORE, size1, size2)
            assert proof == naive_subproof(size1, 0, size2, True), (size1, size2)
            verify_consistency(size1, size2, proof, mth(0, size1), mth(0, size2))


def test_consistency_edge_cases() -> None:
    assert consistency_proof(STORE, 0, 0) == []
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(ProofError, match="empty tree"):
        consistency_proof(STORE, 0, 5)
    with pytest.raises(ProofError, match="every tree extends the empty tree"):
        verify_consistency(0, 5, [], EMPTY_ROOT, mth(0, 5))
    with pytest.raises(ProofError, match="size 5 to tree size 4"):
        consistency_proof(STORE, 5, 4)
    with pytest.raises(ProofError, match="cannot shrink"):
        verify_consistency(5, 4, [], mth(0, 5), mth(0, 4))
    for size1 in (1, 2, 4, 8, 64):  # a power of two: the old root is not repeated in the proof
        proof = consistency_proof(STORE, size1, 100)
        assert mth(0, size1) not in proof
        verify_consistency(size1, 100, proof, mth(0, size1), mth(0, 100))
        with pytest.raises(ProofError, match="hashes"):
            verify_consistency(size1, 100, [mth(0, size1), *proof], mth(0, size1), mth(0, 100))


def test_range_hash_of_any_range() -> None:
    for start in range(41):
        for end in range(start, 41):
            assert range_hash(STORE, start, end) == mth(start, end), (start, end)
    with pytest.raises(ValueError, match="range"):
        range_hash(STORE, 3, 2)


def lookup_in(stored: dict[tuple[int, int], bytes]) -> Callable[[int, int], bytes]:
    return lambda level, index: stored[(level, index)]


def test_nodes_to_store_keeps_exactly_the_perfect_subtrees() -> None:
    stored: dict[tuple[int, int], bytes] = {}
    for size, leaf in enumerate(LEAVES[:MAX]):
        entries = nodes_to_store(size, leaf, lookup_in(stored))
        trailing_ones = (size ^ (size + 1)).bit_length() - 1
        assert len(entries) == 1 + trailing_ones
        for level, index, digest in entries:
            assert digest == mth(index << level, (index + 1) << level)
            stored[(level, index)] = digest
    complete = {(lv, ix) for lv in range(8) for ix in range(MAX >> lv)}
    assert set(stored) == complete
    with pytest.raises(ValueError, match="32 bytes"):
        nodes_to_store(0, b"short", lookup_in(stored))
    with pytest.raises(KeyError):
        STORE.perfect(0, len(LEAVES))


def test_frontier_is_all_an_append_needs() -> None:
    for size in range(MAX + 1):
        keys = frontier(size)
        spans = [(index << level, (index + 1) << level) for level, index in keys]
        ends = [0] + [hi for _, hi in spans]
        assert [lo for lo, _ in spans] == ends[:-1]  # contiguous from leaf 0, left to right
        assert ends[-1] == size
        # Appending from a store that holds only the frontier gives exactly the full store's entries.
        partial = {key: STORE.perfect(*key) for key in keys}
        for new in range(size, min(size + 9, len(LEAVES))):
            for level, index, digest in nodes_to_store(new, LEAVES[new], lookup_in(partial)):
                assert digest == STORE.perfect(level, index)
                partial[(level, index)] = digest


def test_generation_rejects_impossible_requests() -> None:
    with pytest.raises(ProofError, match="not in a tree"):
        inclusion_proof(STORE, 5, 5)
    with pytest.raises(ProofError, match="not in a tree"):
        inclusion_proof(STORE, -1, 5)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 1000, 16383, 16384, 16385, 32768, 3 * 16384 + 7, 70001])
def test_root_from_leaves_equals_stored_root(size: int) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    assert root_from_leaves(iter(leaves)) == MemoryStore(leaves).root()


def test_root_from_leaves_random_sizes() -> None:
    rng = random.Random(9162)
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(40_000)]
    store = MemoryStore(leaves)
    for size in rng.sample(range(40_000), 25):
        assert root_from_leaves(leaves[:size]) == root(store, size), size
    with pytest.raises(ValueError, match="32 bytes"):
        root_from_leaves([b"short"])


# ---- tampering and wrong claims ----------------------------------------------------------------------------------


def flip(data: bytes, bit: int) -> bytes:
    bit %= 8 * len(data)
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, 2 * MAX - 1))
    return size, draw(st.integers(0, size - 1))


@settings(max_examples=300, deadline=None)
@given(tree_and_index(), st.data())
def test_any_flipped_bit_breaks_an_inclusion_proof(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    proof = inclusion_proof(STORE, index, size)
    leaf, tree_root = LEAVES[index], mth(0, size)
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")  # -2 leaf, -1 root, else proof[i]
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == -2:
        leaf = flip(leaf, bit)
    elif target == -1:
        tree_root = flip(tree_root, bit)
    else:
        proof[target] = flip(proof[target], bit)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, tree_root)


def path_shape(m: int, n: int) -> tuple[object, int]:
    """The root as an expression of "leaf" and proof positions 0, 1, ... (leaf side first), per PATH."""
    if n == 1:
        return "leaf", 0
    k = naive_split(n)
    if m < k:
        inner, depth = path_shape(m, k)
        return ("node", inner, depth), depth + 1
    inner, depth = path_shape(m - k, n - k)
    return ("node", depth, inner), depth + 1


@settings(max_examples=300, deadline=None)
@given(tree_and_index(), st.integers(-3, 2 * MAX), st.integers(-3, 2 * MAX))
def test_another_index_or_size_fails(case: tuple[int, int], index2: int, size2: int) -> None:
    """Against the root of the claimed size (what a signed checkpoint pairs it with), a proof never verifies for
    another index or size. Against the original root it verifies exactly when the claim has the same shape:
    RFC 9162's inclusion proofs bind the index but not the whole size (leaf 0 of 3 looks like leaf 0 of 4), which
    is why check_proof_file takes size and root from one signed checkpoint."""
    size, index = case
    if (index2, size2) == (index, size):
        return
    proof = inclusion_proof(STORE, index, size)
    if 0 <= size2 <= len(LEAVES):
        with pytest.raises(ProofError):
            verify_inclusion(LEAVES[index], index2, size2, proof, mth(0, size2))
    same_shape = 0 <= index2 < size2 and path_shape(index2, size2)[0] == path_shape(index, size)[0]
    try:
        verify_inclusion(LEAVES[index], index2, size2, proof, mth(0, size))
    except ProofError:
        assert not same_shape
    else:
        assert same_shape


def test_inclusion_size_is_bound_by_the_checkpoint_not_the_proof() -> None:
    proof = inclusion_proof(STORE, 0, 3)
    verify_inclusion(LEAVES[0], 0, 4, proof, mth(0, 3))  # same shape, so the chain reaches the size-3 root
    with pytest.raises(ProofError, match="root"):
        verify_inclusion(LEAVES[0], 0, 4, proof, mth(0, 4))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(1, 2 * MAX - 1))
    return draw(st.integers(1, size2)), size2


@settings(max_examples=300, deadline=None)
@given(two_sizes(), st.data())
def test_any_flipped_bit_breaks_a_consistency_proof(sizes: tuple[int, int], data: st.DataObject) -> None:
    size1, size2 = sizes
    proof = consistency_proof(STORE, size1, size2)
    root1, root2 = mth(0, size1), mth(0, size2)
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")  # -2 root1, -1 root2, else proof[i]
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == -2:
        root1 = flip(root1, bit)
    elif target == -1:
        root2 = flip(root2, bit)
    else:
        proof[target] = flip(proof[target], bit)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root1, root2)


@settings(max_examples=300, deadline=None)
@given(two_sizes(), st.integers(-2, 2 * MAX - 1), st.integers(-2, 2 * MAX - 1))
def test_consistency_proof_fails_for_other_sizes(sizes: tuple[int, int], size1b: int, size2b: int) -> None:
    size1, size2 = sizes
    proof = consistency_proof(STORE, size1, size2)
    if (size1b, size2b) == (size1, size2) or (not proof and 0 <= size1b == size2b):
        return  # the same claim, or "a tree is consistent with itself", which the empty proof rightly shows
    roots = [mth(0, s) if 0 <= s <= len(LEAVES) else EMPTY_ROOT for s in (size1b, size2b)]
    with pytest.raises(ProofError):
        verify_consistency(size1b, size2b, proof, *roots)


def test_short_and_long_proofs_give_precise_reasons() -> None:
    proof = inclusion_proof(STORE, 5, 11)
    with pytest.raises(ProofError, match=r"proof has 3 hashes; leaf 5 of a tree of size 11 needs 4"):
        verify_inclusion(LEAVES[5], 5, 11, proof[:-1], mth(0, 11))
    with pytest.raises(ProofError, match=r"proof\[1\] is 31 bytes, expected 32"):
        verify_inclusion(LEAVES[5], 5, 11, [proof[0], proof[1][:31], *proof[2:]], mth(0, 11))
    with pytest.raises(ProofError, match="leaf index 11 is not below tree size 11"):
        verify_inclusion(LEAVES[5], 11, 11, proof, mth(0, 11))
    proof = consistency_proof(STORE, 3, 11)
    assert len(proof) == 5
    with pytest.raises(ProofError, match=r"proof has 6 hashes; sizes 3 -> 11 need 5"):
        verify_consistency(3, 11, [*proof, proof[0]], mth(0, 3), mth(0, 11))
    with pytest.raises(ProofError, match="not root1"):
        verify_consistency(3, 11, proof, mth(0, 4), mth(0, 11))


# ---- proof documents ---------------------------------------------------------------------------------------------

ORIGIN = "cellrail/test-net/h-a"
EVENTS = [
    json.dumps(
        {"kind": "custody.scan", "log": ORIGIN, "node": "h-a", "note": f"hand-over {seq}", "seq": seq},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    for seq in range(1, 22)
]
EVENT_STORE = MemoryStore(leaf_hash(body) for body in EVENTS)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Signer:
    """A C2SP signed-note Ed25519 signer built from ``cryptography`` alone, independent of ``note``."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"seed %d" % seed).digest())
        public = self.private.public_key().public_bytes_raw()
        self.key_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
        self.vkey = f"{name}+{self.key_id.hex()}+" + b64(b"\x01" + public)

    def sign(self, text: str) -> str:
        signature = self.private.sign(text.encode())
        return f"{text}\n\N{EM DASH} {self.name} " + b64(self.key_id + signature) + "\n"


SITE = Signer(ORIGIN, 1)
MALLORY = Signer(ORIGIN, 2)  # the same name with another key: a forger's checkpoint


def checkpoint(size: int, signer: Signer = SITE, origin: str = ORIGIN, extra: str = "") -> str:
    return signer.sign(f"{origin}\n{size}\n{b64(root(EVENT_STORE, size))}\n{extra}")


def inclusion_doc(seq: int = 6, size: int = 13) -> dict[str, Any]:
    return {
        "type": "inclusion",
        "origin": ORIGIN,
        "leaf_index": seq - 1,
        "tree_size": size,
        "event": {"seq": seq, "body": b64(EVENTS[seq - 1])},
        "proof": [b64(h) for h in inclusion_proof(EVENT_STORE, seq - 1, size)],
        "checkpoint": checkpoint(size),
        "verifier_keys": [SITE.vkey],
    }


def consistency_doc(size1: int = 7, size2: int = 21, with_checkpoint1: bool = True) -> dict[str, Any]:
    return {
        "type": "consistency",
        "origin": ORIGIN,
        "size1": size1,
        "size2": size2,
        "root1": b64(root(EVENT_STORE, size1)),
        "proof": [b64(h) for h in consistency_proof(EVENT_STORE, size1, size2)],
        "checkpoint1": checkpoint(size1) if with_checkpoint1 else None,
        "checkpoint2": checkpoint(size2),
        "verifier_keys": [SITE.vkey],
    }


def _edit_body(doc: dict[str, Any], old: bytes, new: bytes) -> dict[str, Any]:
    body = base64.b64decode(doc["event"]["body"])
    assert old in body
    doc["event"]["body"] = b64(body.replace(old, new))
    return doc


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda d: _edit_body(d, b"hand-over 6", b"hand-over 7"), "inclusion proof: proof leads to root"),
        (lambda d: _edit_body(d, b'"seq":6', b'"seq":7'), "does not match the seq inside event.body"),
        (lambda d: _edit_body(d, b'"log":"cellrail', b'"log":"other'), "belongs to log"),
        (lambda d: _edit_body(d, b"{", b"["), "not a JSON ledger event"),
        (lambda d: d.update(proof=[d["proof"][1], d["proof"][0], *d["proof"][2:]]), "inclusion proof"),
        (lambda d: d.update(proof=d["proof"][:-1]), "inclusion proof: proof has"),
        (lambda d: d.update(origin="cellrail/test-net/h-b"), "checkpoint is for log 'cellrail/test-net/h-a'"),
        (lambda d: d.update(checkpoint=checkpoint(13, origin="cellrail/test-net/h-b")), "is for log"),
        (lambda d: d.update(checkpoint=checkpoint(14)), "checkpoint is for tree size 14, not 13"),
        (lambda d: d.update(tree_size=14), "checkpoint is for tree size 13, not 14"),
        (lambda d: d.update(leaf_index=6), "must be event.seq - 1"),
        (lambda d: d.update(checkpoint=d["checkpoint"].replace("\n\n", "\n")), "no blank line"),
        (lambda d: d.update(checkpoint="x\n013\n" + d["checkpoint"].split("\n", 2)[2]), "not a decimal"),
    ],
)
def test_tampered_inclusion_documents(tamper: Any, reason: str) -> None:
    doc = inclusion_doc()
    check_proof_file(doc, None)
    tamper(doc)
    with pytest.raises(ProofError, match=reason):
        check_proof_file(doc, None)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 8 * len(EVENTS[5]) - 1))
def test_any_flipped_bit_of_the_event_body_fails(bit: int) -> None:
    doc = inclusion_doc()
    doc["event"]["body"] = b64(flip(EVENTS[5], bit))
    with pytest.raises(ProofError):
        check_proof_file(doc, None)


INCLUSION_FIELDS = ["type", "origin", "leaf_index", "tree_size", "event", "proof", "checkpoint", "verifier_keys"]
CONSISTENCY_FIELDS = ["origin", "size1", "size2", "root1", "proof", "checkpoint1", "checkpoint2", "verifier_keys"]


@pytest.mark.parametrize("field", [*INCLUSION_FIELDS, "event.seq", "event.body"])
def test_missing_inclusion_field_is_named(field: str) -> None:
    doc = inclusion_doc()
    if field.startswith("event."):
        del doc["event"][field.split(".")[1]]
    else:
        del doc[field]
    with pytest.raises(ProofError, match=f"missing field '{field}'"):
        check_proof_file(doc, None)


@pytest.mark.parametrize("field", CONSISTENCY_FIELDS)
def test_missing_consistency_field_is_named(field: str) -> None:
    doc = consistency_doc()
    del doc[field]
    with pytest.raises(ProofError, match=f"missing field '{field}'"):
        check_proof_file(doc, None)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("tree_size", "13", "field 'tree_size' must be int, not str"),
        ("tree_size", -1, "field 'tree_size' must not be negative"),
        ("leaf_index", True, "field 'leaf_index' must be int, not bool"),
        ("leaf_index", -1, "field 'leaf_index' must not be negative"),
        ("event", [], "field 'event' must be dict, not list"),
        ("proof", "AAAA", "field 'proof' must be list, not str"),
        ("proof", [7], r"field 'proof\[0\]' must be str, not int"),
        ("proof", ["not base64!"], r"field 'proof\[0\]' is not valid base64"),
        ("proof", [b64(b"short")], r"field 'proof\[0\]' decodes to 5 bytes, expected 32"),
        ("checkpoint", None, "field 'checkpoint' must be str, not NoneType"),
        ("verifier_keys", ["k", 1], r"field 'verifier_keys\[1\]' must be str"),
        ("type", "audit", "field 'type' must be 'inclusion' or 'consistency'"),
    ],
)
def test_malformed_inclusion_fields_are_named(field: str, value: object, reason: str) -> None:
    doc = inclusion_doc()
    doc[field] = value
    with pytest.raises(ProofError, match=reason):
        check_proof_file(doc, None)


def test_malformed_documents() -> None:
    doc = inclusion_doc()
    doc["event"]["body"] = "%%%"
    with pytest.raises(ProofError, match=r"field 'event\.body' is not valid base64"):
        check_proof_file(doc, None)
    doc = consistency_doc()
    doc["size1"] = -7
    with pytest.raises(ProofError, match="field 'size1' must not be negative"):
        check_proof_file(doc, None)
    doc = consistency_doc()
    doc["root1"] = doc["root1"].rstrip("=")
    with pytest.raises(ProofError, match="field 'root1' is not valid base64"):
        check_proof_file(doc, None)
    with pytest.raises(ProofError, match="JSON object"):
        check_proof_file([], None)  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="trusted_keys is empty"):
        check_proof_file(inclusion_doc(), [])


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda d: d.update(root1=b64(root(EVENT_STORE, 6))), "root1' differs from the root in checkpoint1"),
        (lambda d: d.update(root1=b64(root(EVENT_STORE, 6)), checkpoint1=None), "not root1"),
        (lambda d: d.update(proof=d["proof"][::-1]), "consistency proof"),
        (lambda d: d.update(checkpoint2=checkpoint(20)), "checkpoint2 is for tree size 20, not 21"),
        (lambda d: d.update(checkpoint1=checkpoint(6)), "checkpoint1 is for tree size 6, not 7"),
        (lambda d: d.update(size1=0, root1=b64(EMPTY_ROOT), proof=[], checkpoint1=None), "size1 is 0"),
        (lambda d: d.update(size1=22, checkpoint1=None), "cannot shrink"),
        (lambda d: d.update(origin="elsewhere"), "checkpoint2 is for log"),
    ],
)
def test_tampered_consistency_documents(tamper: Any, reason: str) -> None:
    doc = consistency_doc()
    check_proof_file(doc, None)
    tamper(doc)
    with pytest.raises(ProofError, match=reason):
        check_proof_file(doc, None)


def test_signed_checkpoints_with_note_module() -> None:
    summary = check_proof_file(inclusion_doc(), None)
    assert f"checkpoint signed by {ORIGIN}" in summary
    assert "self-asserted" in summary
    summary = check_proof_file(inclusion_doc(), [MALLORY.vkey, SITE.vkey])
    assert summary.endswith(f"checkpoint signed by {ORIGIN} (verified with the auditor's trusted keys)")
    summary = check_proof_file(consistency_doc(), [SITE.vkey])
    assert f"checkpoint2 signed by {ORIGIN}; checkpoint1 signed by {ORIGIN}" in summary
    with pytest.raises(ProofError, match="checkpoint"):
        check_proof_file(inclusion_doc(), [Signer("someone-else", 3).vkey])


def test_forged_checkpoint_fools_only_the_documents_own_keys() -> None:
    """A forger signs a checkpoint with their own key and lists that key in the document: the document is
    self-consistent (the summary says so), but an auditor passing the site's real key rejects it."""
    doc = inclusion_doc()
    doc["checkpoint"] = checkpoint(13, signer=MALLORY)
    doc["verifier_keys"] = [MALLORY.vkey]
    assert "self-asserted" in check_proof_file(doc, None)
    with pytest.raises(ProofError, match="checkpoint"):
        check_proof_file(doc, [SITE.vkey])


def test_checkpoint_text_changed_after_signing() -> None:
    doc = inclusion_doc()
    signed = doc["checkpoint"]
    text, signatures = signed.split("\n\n")
    doc["checkpoint"] = f"{text}\nextension line added later\n\n{signatures}"
    with pytest.raises(ProofError, match="checkpoint signature does not verify"):
        check_proof_file(doc, [SITE.vkey])
    doc["checkpoint"] = signed
    doc["proof"] = doc["proof"][:-1]
    with pytest.raises(ProofError, match="inclusion proof"):
        check_proof_file(doc, [SITE.vkey])


class _Recorder:
    """A tree that records the subtrees read and answers with real hashes from a MemoryStore."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.keys: list[tuple[int, int]] = []

    def perfect(self, level: int, index: int) -> bytes:
        self.keys.append((level, index))
        return self.store.perfect(level, index)


def test_inclusion_proof_keys_are_exactly_the_subtrees_a_proof_reads() -> None:
    leaves = [leaf_hash(bytes([i % 256, i // 256])) for i in range(130)]
    for size in range(1, 131):
        store = MemoryStore(leaves[:size])
        memo: dict[tuple[int, int], bytes] = {}
        for index in range(size):
            recorder = _Recorder(store)
            proof = inclusion_proof(recorder, index, size)
            assert inclusion_proof_keys(index, size) == recorder.keys
            assert inclusion_proof(store, index, size, memo) == proof  # a memo shared across proofs changes nothing


class _AppendReads:
    """A node store for appends that records which nodes stored before a point in time are read."""

    def __init__(self) -> None:
        self.tree: dict[tuple[int, int], bytes] = {}
        self.before: set[tuple[int, int]] = set()
        self.read: set[tuple[int, int]] = set()

    def lookup(self, level: int, position: int) -> bytes:
        if (level, position) in self.before:
            self.read.add((level, position))
        return self.tree[(level, position)]

    def append(self, index: int) -> None:
        for level, position, digest in nodes_to_store(index, leaf_hash(bytes([index % 256])), self.lookup):
            self.tree[(level, position)] = digest


def test_frontier_read_by_append_lists_exactly_the_stored_nodes_appends_read() -> None:
    """Appending ``count`` leaves to a tree of ``size`` reads just these frontier subtrees, none other."""
    for size in range(0, 70):
        for count in range(0, 40):
            nodes = _AppendReads()
            for index in range(size):
                nodes.append(index)
            nodes.before = set(nodes.tree)
            for index in range(size, size + count):
                nodes.append(index)
            assert sorted(nodes.read) == sorted(frontier_read_by_append(size, count)), (size, count)
