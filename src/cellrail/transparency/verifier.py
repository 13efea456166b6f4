"""Offline verification of RFC 9162 Merkle proofs and CellRail proof files.

An auditor runs this module without trusting the rest of CellRail, so it depends only on the standard library,
``cryptography`` (through :mod:`cellrail.transparency.note`, imported lazily for checkpoint signatures) and
nothing else. Hashing is RFC 9162 §2.1.1: a leaf is ``SHA-256(0x00 ‖ data)``, an interior node
``SHA-256(0x01 ‖ left ‖ right)``, the empty tree ``SHA-256("")``; the 0x00/0x01 prefixes keep a leaf from ever
being passed off as an interior node (second-preimage attacks).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

from cellrail.transparency.note import SignedNote, verify_note_signatures

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof, checkpoint or proof document that does not verify; the message says exactly why."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf (RFC 9162 §2.1.1): the 0x00 prefix separates leaves from interior nodes."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node (RFC 9162 §2.1.1): the 0x01 prefix separates it from any leaf."""
    return hashlib.sha256(b"\x01" + left + right).digest()


# ---- proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ------------------------------------------------------


def _short(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _check_hashes(proof: Sequence[bytes]) -> None:
    for i, item in enumerate(proof):
        if len(item) != HASH_SIZE:
            raise ProofError(f"proof[{i}] is {len(item)} bytes, expected {HASH_SIZE}")


def _inclusion_proof_length(index: int, size: int) -> int:
    """Hashes in the audit path of leaf ``index`` (< ``size``): one per level below the point where the path
    leaves the right edge of the tree, plus one per perfect subtree to its left on that edge."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves whose root is ``root``.

    The algorithm is RFC 9162 §2.1.3.2, preceded by exact length checks so a bad proof is rejected with a
    precise reason. Note that a proof binds the index but only partly the size (a proof for leaf 0 of 3 leaves
    also chains to that tree's root when called with size 4): the size is bound by the signed checkpoint
    that pairs it with the root. Raises :class:`ProofError`.
    """
    if size < 0 or index < 0:
        raise ProofError(f"index ({index}) and tree size ({size}) must not be negative")
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
    _check_hashes(proof)
    want = _inclusion_proof_length(index, size)
    if len(proof) != want:
        raise ProofError(f"proof has {len(proof)} hashes; leaf {index} of a tree of size {size} needs {want}")
    # RFC 9162 §2.1.3.2, steps 2 to 5.
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("proof is longer than the path from the leaf to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the path from the leaf to the root")
    if r != root:
        raise ProofError(f"proof leads to root {_short(r)}, not the expected {_short(root)}")


def _consistency_proof_length(size1: int, size2: int) -> int:
    """Hashes in the consistency proof for ``0 < size1 < size2``: the inclusion path of leaf ``size1 - 1``
    above the largest perfect subtree ending at ``size1``, plus that subtree unless it is the whole old tree."""
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    inner = (((size1 - 1) ^ (size2 - 1)).bit_length()) - shift
    border = ((size1 - 1) >> (inner + shift)).bit_count()
    seed = 0 if size1 == 1 << shift else 1
    return seed + inner + border


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of ``size1`` leaves with ``root1`` is a prefix of the tree of ``size2`` with ``root2``.

    RFC 9162 §2.1.4.2 for ``0 < size1 < size2`` (with the old root prepended when ``size1`` is a power of two),
    preceded by exact length checks. The edge cases follow the RFC and the transparency-dev test vectors:
    equal sizes need an empty proof and equal roots (and the empty-tree hash for size 0); ``size1 == 0 < size2``
    is rejected, since every tree extends the empty tree and such a "proof" would show nothing.
    Raises :class:`ProofError`.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError(f"tree sizes ({size1}, {size2}) must not be negative")
    if size1 > size2:
        raise ProofError(f"size1 ({size1}) is greater than size2 ({size2}): a log cannot shrink")
    if size1 == size2:
        if proof:
            raise ProofError(f"sizes are equal ({size1}) but the proof has {len(proof)} hashes instead of none")
        if root1 != root2:
            raise ProofError(f"sizes are equal ({size1}) but the roots differ")
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise ProofError("the root of the empty tree must be SHA-256 of the empty string")
        return
    if size1 == 0:
        raise ProofError("size1 is 0: every tree extends the empty tree, so there is nothing to prove")
    if not proof:
        raise ProofError(f"empty proof for sizes {size1} < {size2}")
    _check_hashes(proof)
    want = _consistency_proof_length(size1, size2)
    if len(proof) != want:
        raise ProofError(f"proof has {len(proof)} hashes; sizes {size1} -> {size2} need {want}")
    # RFC 9162 §2.1.4.2, steps 2 to 7.
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof is longer than the path to the new root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the path to the new root")
    if fr != root1:
        raise ProofError(f"proof leads to old root {_short(fr)}, not root1 {_short(root1)}")
    if sr != root2:
        raise ProofError(f"proof leads to new root {_short(sr)}, not root2 {_short(root2)}")


# ---- proof documents ---------------------------------------------------------------------------------------------


class _Checkpoint(NamedTuple):
    """The parsed body of a C2SP tlog-checkpoint: origin, tree size, root hash (extension lines ignored)."""

    origin: str
    size: int
    root: bytes


def _field(doc: Mapping[str, Any], key: str, kind: type, where: str = "") -> Any:
    name = f"{where}{key}"
    if key not in doc:
        raise ProofError(f"missing field {name!r}")
    value = doc[key]
    # bool is an int to Python but never a valid count or index in a proof file.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProofError(f"field {name!r} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _size(doc: Mapping[str, Any], key: str) -> int:
    value: int = _field(doc, key, int)
    if value < 0:
        raise ProofError(f"field {key!r} must not be negative ({value})")
    return value


def _b64(text: str, name: str, *, size: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProofError(f"field {name!r} is not valid base64: {exc}") from None
    if base64.b64encode(raw).decode() != text:
        raise ProofError(f"field {name!r} is not canonical base64")
    if size is not None and len(raw) != size:
        raise ProofError(f"field {name!r} decodes to {len(raw)} bytes, expected {size}")
    return raw


def _hash_field(doc: Mapping[str, Any], key: str) -> bytes:
    return _b64(_field(doc, key, str), key, size=HASH_SIZE)


def _proof_field(doc: Mapping[str, Any]) -> list[bytes]:
    items: list[Any] = _field(doc, "proof", list)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ProofError(f"field 'proof[{i}]' must be str, not {type(item).__name__}")
        out.append(_b64(item, f"proof[{i}]", size=HASH_SIZE))
    return out


def _keys_field(doc: Mapping[str, Any]) -> list[str]:
    keys: list[Any] = _field(doc, "verifier_keys", list)
    for i, key in enumerate(keys):
        if not isinstance(key, str):
            raise ProofError(f"field 'verifier_keys[{i}]' must be str, not {type(key).__name__}")
    return keys


def _parse_checkpoint(note_text: str, name: str) -> _Checkpoint:
    """Parse the body of a signed checkpoint note (C2SP tlog-checkpoint, signed-note).

    Done here rather than in ``note`` so that the numbers we compare come from text we parsed ourselves.
    The body ends at the last blank line; signature lines follow it.
    """
    split = note_text.rfind("\n\n")
    if split < 0:
        raise ProofError(f"field {name!r} is not a signed note: no blank line before the signatures")
    lines = note_text[: split + 1].split("\n")[:-1]
    if len(lines) < 3:
        raise ProofError(f"field {name!r}: a checkpoint needs origin, size and root lines, found {len(lines)}")
    origin, size_line, root_line = lines[:3]
    if not origin:
        raise ProofError(f"field {name!r}: empty origin line")
    if any(not line for line in lines[3:]):
        raise ProofError(f"field {name!r}: blank extension line in the checkpoint body")
    if not (size_line.isascii() and size_line.isdigit()) or (size_line != "0" and size_line.startswith("0")):
        raise ProofError(f"field {name!r}: tree size line {size_line!r} is not a decimal number")
    return _Checkpoint(origin, int(size_line), _b64(root_line, f"{name} root line", size=HASH_SIZE))


def _checkpoint_field(doc: Mapping[str, Any], key: str, origin: str, size: int) -> _Checkpoint:
    checkpoint = _parse_checkpoint(_field(doc, key, str), key)
    if checkpoint.origin != origin:
        raise ProofError(f"{key} is for log {checkpoint.origin!r}, not {origin!r}")
    if checkpoint.size != size:
        raise ProofError(f"{key} is for tree size {checkpoint.size}, not {size}")
    return checkpoint


def _check_signatures(note_text: str, keys: list[str], name: str) -> list[str]:
    """Names of the keys that signed ``note_text``; at least one of ``keys`` must have."""
    try:
        signers = [str(signer) for signer in verify_note_signatures(SignedNote.parse(note_text), keys)]
    except ValueError as exc:
        raise ProofError(f"{name} signature does not verify: {exc}") from None
    if not signers:
        raise ProofError(f"{name} carries no valid signature from the given keys")
    return signers


def _signature_summary(notes: list[tuple[str, str]], trusted_keys: list[str] | None, doc_keys: list[str]) -> str:
    keys = doc_keys if trusted_keys is None else trusted_keys
    source = (
        "the auditor's trusted keys"
        if trusted_keys is not None
        else "the document's own verifier_keys (self-asserted: pass trusted keys to audit)"
    )
    parts = [f"{name} signed by {', '.join(_check_signatures(text, keys, name))}" for name, text in notes]
    return f"{'; '.join(parts)} (verified with {source})"


def _check_inclusion(doc: Mapping[str, Any], trusted_keys: list[str] | None) -> str:
    origin: str = _field(doc, "origin", str)
    index, size = _size(doc, "leaf_index"), _size(doc, "tree_size")
    event: Mapping[str, Any] = _field(doc, "event", dict)
    seq: int = _field(event, "seq", int, "event.")
    body = _b64(_field(event, "body", str, "event."), "event.body")
    proof = _proof_field(doc)
    keys = _keys_field(doc)
    note_text: str = _field(doc, "checkpoint", str)
    checkpoint = _checkpoint_field(doc, "checkpoint", origin, size)
    # What the summary reports must be what the proven bytes say, not just what the document claims.
    try:
        content = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ProofError("field 'event.body' is not a JSON ledger event") from None
    if not isinstance(content, dict) or type(content.get("seq")) is not int or content["seq"] != seq:
        raise ProofError(f"field 'event.seq' ({seq}) does not match the seq inside event.body")
    if content.get("log") not in (None, "", origin):
        raise ProofError(f"event.body belongs to log {content['log']!r}, not {origin!r}")
    if index != seq - 1:
        raise ProofError(f"field 'leaf_index' ({index}) must be event.seq - 1 ({seq - 1}): events are numbered from 1")
    try:
        verify_inclusion(leaf_hash(body), index, size, proof, checkpoint.root)
    except ProofError as exc:
        raise ProofError(f"inclusion proof: {exc}") from None
    signatures = _signature_summary([("checkpoint", note_text)], trusted_keys, keys)
    return (
        f"OK: event seq {seq} is leaf {index} of log {origin!r} at tree size {size} "
        f"(root {_short(checkpoint.root)}); {signatures}"
    )


def _check_consistency(doc: Mapping[str, Any], trusted_keys: list[str] | None) -> str:
    origin: str = _field(doc, "origin", str)
    size1, size2 = _size(doc, "size1"), _size(doc, "size2")
    root1 = _hash_field(doc, "root1")
    proof = _proof_field(doc)
    keys = _keys_field(doc)
    note2: str = _field(doc, "checkpoint2", str)
    checkpoint2 = _checkpoint_field(doc, "checkpoint2", origin, size2)
    if "checkpoint1" not in doc:
        raise ProofError("missing field 'checkpoint1' (null when there is none)")
    notes = [("checkpoint2", note2)]
    if doc["checkpoint1"] is not None:
        checkpoint1 = _checkpoint_field(doc, "checkpoint1", origin, size1)
        if checkpoint1.root != root1:
            raise ProofError("field 'root1' differs from the root in checkpoint1")
        notes.append(("checkpoint1", _field(doc, "checkpoint1", str)))
    try:
        verify_consistency(size1, size2, proof, root1, checkpoint2.root)
    except ProofError as exc:
        raise ProofError(f"consistency proof: {exc}") from None
    signatures = _signature_summary(notes, trusted_keys, keys)
    old = "" if doc["checkpoint1"] is not None else " (root1 from the document: no checkpoint1)"
    return (
        f"OK: log {origin!r} at tree size {size1} (root {_short(root1)}){old} is a prefix of tree size {size2} "
        f"(root {_short(checkpoint2.root)}); {signatures}"
    )


def check_proof_file(document: dict[str, Any], trusted_keys: list[str] | None) -> str:
    """Verify a CellRail proof document (``"type"``: ``"inclusion"`` or ``"consistency"``) offline.

    Every hash that matters is recomputed (the leaf from the event body, roots from the proof) and the tree
    size and root come from the signed checkpoint, parsed here. Signatures are checked with ``trusted_keys``
    when given — what an auditor should do — otherwise with the keys the document names, which only shows the
    document is self-consistent. Returns a one-line summary; raises :class:`ProofError` naming the problem.
    """
    if not isinstance(document, dict):
        raise ProofError(f"a proof document must be a JSON object, not {type(document).__name__}")
    if trusted_keys is not None and not trusted_keys:
        raise ProofError("trusted_keys is empty: pass at least one verifier key, or None to use the document's")
    kind: str = _field(document, "type", str)
    if kind == "inclusion":
        return _check_inclusion(document, trusted_keys)
    if kind == "consistency":
        return _check_consistency(document, trusted_keys)
    raise ProofError(f"field 'type' must be 'inclusion' or 'consistency', not {kind!r}")
