"""Signed notes, transparency-log checkpoints and witness cosignatures (C2SP formats, Ed25519 only).

Implements, byte for byte:

* c2sp.org/signed-note: a UTF-8 text ending in a newline, a blank line, then one or more signature lines
  ``"— <key name> <base64(4-byte key ID || signature)>\\n"``; Ed25519 key IDs are
  ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``; verifier keys are ``<name>+<hex key ID>+<base64(0x01 || key)>``
  and signer keys ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>`` (as golang.org/x/mod/sumdb/note).
* c2sp.org/tlog-checkpoint: a note text of origin, tree size and base64 root hash lines, then extension lines.
* c2sp.org/tlog-cosignature (Ed25519 ``cosignature/v1``, signature type 0x04): the cosigner signs
  ``"cosignature/v1\\ntime <T>\\n" || checkpoint body`` and the signature line carries
  ``key ID || uint64 big-endian T || Ed25519 signature``.

This module depends only on the standard library and ``cryptography`` so an offline verifier can import it alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "MAX_SIGNATURES",
    "SIG_ED25519",
    "SIG_ED25519_COSIGNATURE_V1",
    "Checkpoint",
    "NoteError",
    "NoteSignature",
    "SignedNote",
    "cosign",
    "cosignature_key_id",
    "cosignature_message",
    "cosigner_verifier_key",
    "ed25519_key_id",
    "parse_cosigner_key",
    "parse_signer_key",
    "parse_verifier_key",
    "sign_note",
    "signer_key",
    "validate_key_name",
    "verifier_key",
    "verify_cosignature",
    "verify_cosignatures",
    "verify_note_signatures",
]

SIG_ED25519 = 0x01
"""Signature type byte of plain Ed25519 note signatures (c2sp.org/signed-note)."""
SIG_ED25519_COSIGNATURE_V1 = 0x04
"""Signature type byte of timestamped Ed25519 witness cosignatures (c2sp.org/tlog-cosignature)."""

MAX_SIGNATURES = 100
"""Signature lines accepted in one note: the spec demands at least 16; 100 is golang.org/x/mod/sumdb/note's cap."""

_EM_DASH_PREFIX = "\u2014 "
_KEY_ID_SIZE = 4
_TIMESTAMP_SIZE = 8
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_COSIGNATURE_PAYLOAD_SIZE = _TIMESTAMP_SIZE + _ED25519_SIG_SIZE
_MAX_TIMESTAMP = 2**63 - 1  # c2sp.org/tlog-cosignature: "It MUST NOT exceed 2^63 - 1".
_MAX_TREE_SIZE = 2**64 - 1  # Go implementations parse the size as uint64.
_ROOT_HASH_SIZE = 32  # RFC 6962 / RFC 9162 Merkle trees with SHA-256.
_COSIGNATURE_HEADER = b"cosignature/v1\n"

# Unicode White_Space (what Go's unicode.IsSpace tests), which key names must not contain.
_WHITE_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # ASCII controls other than newline.
_TREE_SIZE = re.compile(r"(?:0|[1-9][0-9]*)", re.ASCII)
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}", re.ASCII)


class NoteError(ValueError):
    """A note, checkpoint, key or signature that is malformed or fails to verify."""


# ---- helpers ---------------------------------------------------------------------------------------------------


def validate_key_name(name: str) -> str:
    """Return ``name`` if it is a valid key name: non-empty, no Unicode spaces, no '+' (c2sp.org/signed-note)."""
    if not isinstance(name, str) or not name:
        raise NoteError("key name must be a non-empty string")
    bad = next((ch for ch in name if ch in _WHITE_SPACE or ch == "+"), None)
    if bad is not None:
        raise NoteError(f"key name {name!r} must not contain whitespace or '+' (found {bad!r})")
    if _CONTROL.search(name):
        raise NoteError(f"key name {name!r} must not contain control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"key name {name!r} is not valid UTF-8") from None
    return name


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 section 4): alphabet, padding and canonical trailing bits."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise NoteError(f"{what} is not valid base64: {text!r}") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64: {text!r}")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _public_bytes(public: Ed25519PublicKey | bytes) -> bytes:
    if isinstance(public, Ed25519PublicKey):
        return public.public_bytes_raw()
    if not isinstance(public, bytes | bytearray) or len(public) != _ED25519_KEY_SIZE:
        raise NoteError(f"an Ed25519 public key is {_ED25519_KEY_SIZE} bytes")
    return bytes(public)


def _key_id(name: str, signature_type: int, public: Ed25519PublicKey | bytes) -> bytes:
    validate_key_name(name)
    material = name.encode("utf-8") + b"\n" + bytes([signature_type]) + _public_bytes(public)
    return hashlib.sha256(material).digest()[:_KEY_ID_SIZE]


def _check_note_chars(text: str, what: str) -> None:
    match = _CONTROL.search(text)
    if match is not None:
        raise NoteError(f"{what} contains the control character {match.group()!r} (only newline is allowed)")


def _decode_text(text: bytes, what: str) -> str:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError(f"{what} is not valid UTF-8: {exc.reason} at byte {exc.start}") from exc
    _check_note_chars(decoded, what)
    return decoded


# ---- keys ------------------------------------------------------------------------------------------------------


def ed25519_key_id(name: str, public: Ed25519PublicKey | bytes) -> bytes:
    """Key ID of an Ed25519 note key: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` (c2sp.org/signed-note)."""
    return _key_id(name, SIG_ED25519, public)


def cosignature_key_id(name: str, public: Ed25519PublicKey | bytes) -> bytes:
    """Key ID of an Ed25519 witness: ``SHA-256(name || 0x0A || 0x04 || public key)[:4]`` (c2sp.org/tlog-cosignature)."""
    return _key_id(name, SIG_ED25519_COSIGNATURE_V1, public)


def _vkey(name: str, signature_type: int, public: Ed25519PublicKey | bytes) -> str:
    raw = _public_bytes(public)
    key_id = _key_id(name, signature_type, raw)
    return f"{name}+{key_id.hex()}+{_b64encode(bytes([signature_type]) + raw)}"


def verifier_key(name: str, public: Ed25519PublicKey | bytes) -> str:
    """Verifier key string ``<name>+<hex key ID>+<base64(0x01 || public key)>`` (c2sp.org/signed-note, x/mod note)."""
    return _vkey(name, SIG_ED25519, public)


def cosigner_verifier_key(name: str, public: Ed25519PublicKey | bytes) -> str:
    """A witness's verifier key: ``<name>+<hex key ID>+<base64(0x04 || public key)>`` (c2sp.org/tlog-cosignature)."""
    return _vkey(name, SIG_ED25519_COSIGNATURE_V1, public)


def _parse_vkey(vkey: str) -> tuple[str, bytes, int, Ed25519PublicKey]:
    """Parse a verifier key of type 0x01 or 0x04 into (name, key ID, type, public key), checking the key ID."""
    if not isinstance(vkey, str):
        raise NoteError("a verifier key is a string")
    parts = vkey.split("+", 2)  # base64 key material may itself contain '+'
    if len(parts) != 3:
        raise NoteError(f"verifier key {vkey!r} is not of the form <name>+<hex key ID>+<base64 key>")
    name, hex_id, key64 = parts
    validate_key_name(name)
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise NoteError(f"verifier key {vkey!r}: key ID {hex_id!r} is not 8 hexadecimal digits")
    material = _b64decode(key64, f"verifier key {vkey!r}: key material")
    if not material:
        raise NoteError(f"verifier key {vkey!r} has no key material")
    signature_type, raw = material[0], material[1:]
    if signature_type not in (SIG_ED25519, SIG_ED25519_COSIGNATURE_V1):
        raise NoteError(f"verifier key {vkey!r}: unsupported signature type 0x{signature_type:02x}")
    if len(raw) != _ED25519_KEY_SIZE:
        raise NoteError(f"verifier key {vkey!r}: an Ed25519 public key is {_ED25519_KEY_SIZE} bytes, not {len(raw)}")
    key_id = bytes.fromhex(hex_id)
    if key_id != _key_id(name, signature_type, raw):
        raise NoteError(f"verifier key {vkey!r}: key ID does not match the name and public key")
    return name, key_id, signature_type, Ed25519PublicKey.from_public_bytes(raw)


def parse_verifier_key(vkey: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """Parse an Ed25519 (type 0x01) verifier key into (name, key ID, public key); the key ID must match."""
    name, key_id, signature_type, public = _parse_vkey(vkey)
    if signature_type != SIG_ED25519:
        raise NoteError(f"verifier key {vkey!r} is a cosigner key (type 0x04), not an Ed25519 note key (type 0x01)")
    return name, key_id, public


def parse_cosigner_key(vkey: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """Parse a cosigner (type 0x04) verifier key into (name, key ID, public key); the key ID must match."""
    name, key_id, signature_type, public = _parse_vkey(vkey)
    if signature_type != SIG_ED25519_COSIGNATURE_V1:
        raise NoteError(f"verifier key {vkey!r} is an Ed25519 note key (type 0x01), not a cosigner key (type 0x04)")
    return name, key_id, public


def signer_key(name: str, private: Ed25519PrivateKey) -> str:
    """Secret signer key string ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>`` (x/mod sumdb/note)."""
    key_id = ed25519_key_id(name, private.public_key())
    return f"PRIVATE+KEY+{name}+{key_id.hex()}+{_b64encode(bytes([SIG_ED25519]) + private.private_bytes_raw())}"


def parse_signer_key(skey: str) -> tuple[str, Ed25519PrivateKey]:
    """Parse a signer key string into (name, private key), checking its key ID against the derived public key.

    Error messages never repeat the secret key material.
    """
    if not isinstance(skey, str):
        raise NoteError("a signer key is a string")
    parts = skey.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError("signer key is not of the form PRIVATE+KEY+<name>+<hex key ID>+<base64 key>")
    _, _, name, hex_id, key64 = parts
    validate_key_name(name)
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise NoteError(f"signer key for {name!r}: key ID {hex_id!r} is not 8 hexadecimal digits")
    try:
        material = base64.b64decode(key64.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise NoteError(f"signer key for {name!r}: key material is not valid base64") from None
    if len(material) != 1 + _ED25519_KEY_SIZE or material[0] != SIG_ED25519:
        raise NoteError(f"signer key for {name!r}: key material is not 0x01 followed by a 32-byte Ed25519 seed")
    private = Ed25519PrivateKey.from_private_bytes(material[1:])
    if bytes.fromhex(hex_id) != ed25519_key_id(name, private.public_key()):
        raise NoteError(f"signer key for {name!r}: key ID {hex_id} does not match the key")
    return name, private


# ---- checkpoints -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A transparency-log checkpoint body (c2sp.org/tlog-checkpoint): origin, tree size, root hash, extensions."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise NoteError("checkpoint origin must be a non-empty string")
        if "\n" in self.origin:
            raise NoteError("checkpoint origin must be a single line")
        _check_note_chars(self.origin, "checkpoint origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 0 <= self.size <= _MAX_TREE_SIZE:
            raise NoteError(f"checkpoint tree size must be an integer in [0, 2^64-1], not {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != _ROOT_HASH_SIZE:
            raise NoteError(f"checkpoint root hash must be {_ROOT_HASH_SIZE} bytes (SHA-256)")
        if not isinstance(self.extensions, tuple):
            raise NoteError("checkpoint extensions must be a tuple of lines")
        for i, line in enumerate(self.extensions, start=4):
            if not isinstance(line, str) or not line or "\n" in line:
                raise NoteError(f"checkpoint extension line {i} must be a non-empty single line")
            _check_note_chars(line, f"checkpoint extension line {i}")

    def body(self) -> bytes:
        """The note text: ``<origin>\\n<size>\\n<base64 root>\\n`` followed by one line per extension."""
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def parse(cls, body: bytes) -> Checkpoint:
        """Parse a checkpoint note text, rejecting anything c2sp.org/tlog-checkpoint does not allow."""
        if not isinstance(body, bytes):
            raise NoteError("a checkpoint body is UTF-8 bytes")
        text = _decode_text(body, "checkpoint")
        if not text.endswith("\n"):
            raise NoteError("checkpoint must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError(f"checkpoint has {len(lines)} line(s); it needs origin, tree size and root hash lines")
        for i, line in enumerate(lines, start=1):
            if not line:
                raise NoteError(f"checkpoint line {i} is empty")
        origin, size_line, root_line, *extensions = lines
        if not _TREE_SIZE.fullmatch(size_line):
            raise NoteError(f"checkpoint line 2 (tree size) {size_line!r} is not a decimal without leading zeroes")
        size = int(size_line)
        if size > _MAX_TREE_SIZE:
            raise NoteError(f"checkpoint line 2 (tree size) {size_line} exceeds 2^64-1")
        root = _b64decode(root_line, "checkpoint line 3 (root hash)")
        if len(root) != _ROOT_HASH_SIZE:
            raise NoteError(f"checkpoint line 3 (root hash) decodes to {len(root)} bytes, not {_ROOT_HASH_SIZE}")
        return cls(origin=origin, size=size, root=root, extensions=tuple(extensions))


# ---- signed notes ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the rest of the decoded signature (the payload).

    For Ed25519 the payload is the 64-byte signature; for cosignature/v1 it is the 8-byte big-endian timestamp
    followed by the 64-byte signature. Unknown signature types may carry any non-empty payload.
    """

    name: str
    key_id: bytes
    payload: bytes

    def __post_init__(self) -> None:
        validate_key_name(self.name)
        if not isinstance(self.key_id, bytes) or len(self.key_id) != _KEY_ID_SIZE:
            raise NoteError(f"signature key ID must be {_KEY_ID_SIZE} bytes")
        if not isinstance(self.payload, bytes) or not self.payload:
            raise NoteError("signature payload must be non-empty bytes")

    def line(self) -> str:
        """The signature line, ``"— <name> <base64(key ID || payload)>\\n"``."""
        return f"{_EM_DASH_PREFIX}{self.name} {_b64encode(self.key_id + self.payload)}\n"

    @property
    def timestamp(self) -> int:
        """The POSIX timestamp of a cosignature/v1 signature (first 8 payload bytes, big-endian)."""
        if len(self.payload) != _COSIGNATURE_PAYLOAD_SIZE:
            raise NoteError(f"signature by {self.name!r} is not an Ed25519 cosignature/v1 (wrong length)")
        return int.from_bytes(self.payload[:_TIMESTAMP_SIZE], "big")


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A note text and its signatures (c2sp.org/signed-note).

    The text is valid UTF-8 without ASCII control characters other than newline and ends with a newline. Per the
    spec it may contain empty lines: the signatures start after the *last* blank line of the rendered note.
    """

    text: bytes
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.text, bytes):
            raise NoteError("note text must be bytes")
        decoded = _decode_text(self.text, "note text")
        if not decoded.endswith("\n"):
            raise NoteError("note text must end with a newline")
        if not isinstance(self.signatures, tuple) or not self.signatures:
            raise NoteError("a signed note needs at least one signature")
        if len(self.signatures) > MAX_SIGNATURES:
            raise NoteError(f"a signed note may carry at most {MAX_SIGNATURES} signatures")
        if not all(isinstance(sig, NoteSignature) for sig in self.signatures):
            raise NoteError("note signatures must be NoteSignature values")

    def render(self) -> str:
        """The signed note: text, a blank line, then one signature line each."""
        return self.text.decode("utf-8") + "\n" + "".join(sig.line() for sig in self.signatures)

    def with_signature(self, signature: NoteSignature) -> SignedNote:
        """This note with ``signature`` added, replacing an existing one by the same key (name and key ID)."""
        kept = tuple(s for s in self.signatures if (s.name, s.key_id) != (signature.name, signature.key_id))
        return SignedNote(self.text, (*kept, signature))

    @classmethod
    def parse(cls, note: str | bytes) -> SignedNote:
        """Parse a signed note; signatures are not verified here (see :func:`verify_note_signatures`)."""
        if isinstance(note, bytes):
            note = _decode_text(note, "signed note")
        elif not isinstance(note, str):
            raise NoteError("a signed note is a str or UTF-8 bytes")
        try:
            note.encode("utf-8")
        except UnicodeEncodeError:
            raise NoteError("signed note is not valid UTF-8 (it contains a lone surrogate)") from None
        _check_note_chars(note, "signed note")
        split = note.rfind("\n\n")
        if split < 0:
            raise NoteError("signed note has no blank line between the text and the signatures")
        text, block = note[: split + 1], note[split + 2 :]
        if not block:
            raise NoteError("signed note has no signature lines after the blank line")
        if not block.endswith("\n"):
            raise NoteError("signed note must end with a newline after the last signature line")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise NoteError(f"signed note has {len(lines)} signature lines; at most {MAX_SIGNATURES} are accepted")
        signatures = tuple(_parse_signature_line(line, n) for n, line in enumerate(lines, start=1))
        return cls(text.encode("utf-8"), signatures)


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    where = f"signature line {number}"
    if not line.startswith(_EM_DASH_PREFIX):
        raise NoteError(f"{where} does not start with an em dash (U+2014) and a space: {line!r}")
    name, space, sig64 = line[len(_EM_DASH_PREFIX) :].partition(" ")
    if not space or not sig64:
        raise NoteError(f"{where} has no signature after the key name: {line!r}")
    try:
        validate_key_name(name)
    except NoteError as exc:
        raise NoteError(f"{where}: {exc}") from None
    raw = _b64decode(sig64, f"{where} signature")
    if len(raw) <= _KEY_ID_SIZE:
        raise NoteError(f"{where}: signature is {len(raw)} bytes; it needs a 4-byte key ID and a signature")
    return NoteSignature(name=name, key_id=raw[:_KEY_ID_SIZE], payload=raw[_KEY_ID_SIZE:])


# ---- signing and verifying -------------------------------------------------------------------------------------


def sign_note(text: bytes, name: str, private: Ed25519PrivateKey) -> NoteSignature:
    """Ed25519-sign a note text (c2sp.org/signed-note, signature type 0x01)."""
    validate_key_name(name)
    if not isinstance(text, bytes) or not _decode_text(text, "note text").endswith("\n"):
        raise NoteError("note text must be UTF-8 bytes ending with a newline")
    return NoteSignature(name, ed25519_key_id(name, private.public_key()), private.sign(text))


def cosignature_message(body: bytes, timestamp: int) -> bytes:
    """The message an Ed25519 cosigner signs: ``cosignature/v1\\ntime <T>\\n`` then the checkpoint body."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp must be an integer in [0, 2^63-1], not {timestamp!r}")
    return _COSIGNATURE_HEADER + b"time %d\n" % timestamp + body


def cosign(checkpoint: Checkpoint, name: str, private: Ed25519PrivateKey, timestamp: int) -> NoteSignature:
    """A witness's Ed25519 cosignature/v1 on ``checkpoint`` at POSIX time ``timestamp`` (c2sp.org/tlog-cosignature)."""
    validate_key_name(name)
    signature = private.sign(cosignature_message(checkpoint.body(), timestamp))
    key_id = cosignature_key_id(name, private.public_key())
    return NoteSignature(name, key_id, timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature)


def _verify(public: Ed25519PublicKey, signature_type: int, text: bytes, sig: NoteSignature) -> bool:
    if signature_type == SIG_ED25519:
        if len(sig.payload) != _ED25519_SIG_SIZE:
            return False
        message, signature = text, sig.payload
    else:
        if len(sig.payload) != _COSIGNATURE_PAYLOAD_SIZE:
            return False
        timestamp = int.from_bytes(sig.payload[:_TIMESTAMP_SIZE], "big")
        if timestamp > _MAX_TIMESTAMP:
            return False
        message, signature = cosignature_message(text, timestamp), sig.payload[_TIMESTAMP_SIZE:]
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _known_keys(keys: Sequence[str], types: tuple[int, ...]) -> dict[tuple[str, bytes], tuple[int, Ed25519PublicKey]]:
    if isinstance(keys, str):
        raise NoteError("verifier keys must be given as a list of key strings, not one string")
    known: dict[tuple[str, bytes], tuple[int, Ed25519PublicKey]] = {}
    for vkey in keys:
        name, key_id, signature_type, public = _parse_vkey(vkey)
        if signature_type not in types:
            raise NoteError(f"verifier key {vkey!r} has signature type 0x{signature_type:02x}, not expected here")
        previous = known.get((name, key_id))
        if previous is not None and previous[1].public_bytes_raw() != public.public_bytes_raw():
            raise NoteError(f"two different verifier keys share the name and key ID {name}+{key_id.hex()}")
        known[(name, key_id)] = (signature_type, public)
    return known


def _check_known(note: SignedNote, keys: Sequence[str], types: tuple[int, ...]) -> list[tuple[NoteSignature, int]]:
    """Verify every signature from a known key; return (signature, type) pairs that verified, in note order."""
    if not isinstance(note, SignedNote):
        raise NoteError("expected a SignedNote")
    known = _known_keys(keys, types)
    verified: list[tuple[NoteSignature, int]] = []
    for sig in note.signatures:
        entry = known.get((sig.name, sig.key_id))
        if entry is None:
            continue  # c2sp.org/signed-note: verifiers MUST ignore signatures from unknown keys
        signature_type, public = entry
        if not _verify(public, signature_type, note.text, sig):
            raise NoteError(f"invalid signature for key {sig.name}+{sig.key_id.hex()}")
        verified.append((sig, signature_type))
    return verified


def verify_note_signatures(note: SignedNote, verifier_keys: Sequence[str]) -> list[str]:
    """Names (in note order, without repeats) of the known keys whose signatures on ``note`` verify.

    ``verifier_keys`` holds verifier key strings of type 0x01 (Ed25519) or 0x04 (cosignature/v1). Signatures by
    unknown (name, key ID) pairs are ignored; a signature by a known key that fails to verify raises
    :class:`NoteError` (the spec's "SHOULD reject the whole note"). An empty result means the note is unverified
    and MUST be rejected by the caller.
    """
    names: list[str] = []
    for sig, _ in _check_known(note, verifier_keys, (SIG_ED25519, SIG_ED25519_COSIGNATURE_V1)):
        if sig.name not in names:
            names.append(sig.name)
    return names


def verify_cosignature(checkpoint: Checkpoint, signature: NoteSignature, cosigner_key: str) -> int:
    """Verify one cosignature/v1 on ``checkpoint`` by the cosigner key string (type 0x04); return its timestamp."""
    name, key_id, public = parse_cosigner_key(cosigner_key)
    if (signature.name, signature.key_id) != (name, key_id):
        raise NoteError(f"signature by {signature.name}+{signature.key_id.hex()} is not from {name}+{key_id.hex()}")
    if not _verify(public, SIG_ED25519_COSIGNATURE_V1, checkpoint.body(), signature):
        raise NoteError(f"invalid cosignature for key {name}+{key_id.hex()}")
    return signature.timestamp


def verify_cosignatures(note: SignedNote, cosigner_keys: Sequence[str]) -> dict[str, int]:
    """Cosigner name -> cosignature timestamp for each known witness (type 0x04 keys) whose cosignature verifies.

    The note text must be a checkpoint. Unknown signatures are ignored; a known witness's bad cosignature raises.
    If a witness cosigned twice, the latest timestamp is kept.
    """
    Checkpoint.parse(note.text)
    result: dict[str, int] = {}
    for sig, _ in _check_known(note, cosigner_keys, (SIG_ED25519_COSIGNATURE_V1,)):
        result[sig.name] = max(result.get(sig.name, 0), sig.timestamp)
    return result
