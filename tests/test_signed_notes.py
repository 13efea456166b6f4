"""Signed notes, checkpoints and cosignatures against the C2SP specs and published vectors; key files on disk.

Published vectors used here:
* golang.org/x/mod/sumdb/note (package doc and note_test.go): the PeterNeumann signer/verifier keys, the note it
  signs (Ed25519 is deterministic, so we must reproduce the signature exactly) and the EnochRoot co-signature.
* c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature: the example checkpoint and its witness cosignature line
  (whose public key is not published, so only its structure and timestamp are checked).
* github.com/transparency-dev/formats note tests: cosigner and Ed25519 verifier keys whose key IDs we recompute.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cellrail.transparency.keys import KeyFileError, init_key, load_signer, public_verifier_key
from cellrail.transparency.note import (
    Checkpoint,
    NoteError,
    NoteSignature,
    SignedNote,
    cosign,
    cosignature_key_id,
    cosigner_verifier_key,
    ed25519_key_id,
    parse_cosigner_key,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
    signer_key,
    verifier_key,
    verify_cosignature,
    verify_cosignatures,
    verify_note_signatures,
)

# ---- published vectors -----------------------------------------------------------------------------------------

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG64 = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
PETER_SIG = f"— PeterNeumann {PETER_SIG64}\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
PETER_NOTE = TEXT + "\n" + PETER_SIG

SPEC_ROOT = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
SPEC_CHECKPOINT = f"example.com/behind-the-sofa\n20852163\n{SPEC_ROOT}\n"
SPEC_LOG_SIG = (
    "— example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
SPEC_WITNESS_SIG = (
    "— witness.example.com/w1 "
    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)

REMORA_COSIGNER_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
TEST_ED25519_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"

ROOT = hashlib.sha256(b"cellrail").digest()


def peter() -> Ed25519PrivateKey:
    return parse_signer_key(PETER_SKEY)[1]


def verified_by(note: str | bytes, keys: list[str], names: list[str]) -> bool:
    """True if ``note`` parses and all ``names`` have verified signatures; False on any parse or verify failure."""
    try:
        return verify_note_signatures(SignedNote.parse(note), keys) == names
    except NoteError:
        return False


# ---- key IDs and key strings -----------------------------------------------------------------------------------


def test_go_verifier_key_id_is_sha256_of_name_newline_type_and_key() -> None:
    name, key_id, public = parse_verifier_key(PETER_VKEY)
    assert name == "PeterNeumann"
    assert key_id == bytes.fromhex("c74f20a3")
    raw = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    assert raw[0] == 0x01
    assert public.public_bytes_raw() == raw[1:]
    assert hashlib.sha256(b"PeterNeumann\n" + raw).digest()[:4] == key_id
    assert ed25519_key_id("PeterNeumann", public) == key_id
    assert ed25519_key_id("PeterNeumann", raw[1:]) == key_id
    assert verifier_key("PeterNeumann", public) == PETER_VKEY


def test_go_signer_key_round_trips_and_matches_the_verifier_key() -> None:
    name, private = parse_signer_key(PETER_SKEY)
    assert name == "PeterNeumann"
    assert signer_key(name, private) == PETER_SKEY
    assert verifier_key(name, private.public_key()) == PETER_VKEY
    assert parse_verifier_key(ENOCH_VKEY)[1] == bytes.fromhex("af0cfe78")


def test_transparency_dev_key_ids() -> None:
    name, key_id, public = parse_cosigner_key(REMORA_COSIGNER_VKEY)
    assert (name, key_id.hex()) == ("remora.n621.de", "da77ade7")
    assert cosignature_key_id(name, public) == key_id
    assert cosigner_verifier_key(name, public) == REMORA_COSIGNER_VKEY
    # The same key as a plain Ed25519 note key has a different ID (type byte 0x01 instead of 0x04).
    assert ed25519_key_id(name, public) != key_id
    with pytest.raises(NoteError, match="cosigner key"):
        parse_verifier_key(REMORA_COSIGNER_VKEY)
    # Key material containing '+' (split on the first two '+' only).
    name, key_id, public = parse_verifier_key(TEST_ED25519_VKEY)
    assert (name, key_id.hex()) == ("TEST", "7997405c")
    assert verifier_key(name, public) == TEST_ED25519_VKEY
    with pytest.raises(NoteError, match="not a cosigner key"):
        parse_cosigner_key(TEST_ED25519_VKEY)


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hexadecimal"),
        ("PeterNeumann+c74f20a3", "not of the form"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "base64"),
        # x/mod's "wrong length key, with adjusted key hash"; its base64 is also non-canonical.
        ("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==", "canonical"),
        ("PeterNeumann+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEQ==", "32 bytes"),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "signature type 0x65"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "whitespace"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "non-empty"),
    ],
)
def test_malformed_verifier_keys_are_rejected(vkey: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        parse_verifier_key(vkey)


def test_every_truncation_and_single_increment_of_the_go_keys_is_rejected() -> None:
    # The manglings of x/mod note_test.go's TestNewVerifier / TestNewSigner.
    for key, parse in ((PETER_VKEY, parse_verifier_key), (PETER_SKEY, parse_signer_key)):
        for i in range(len(key)):
            for j in range(i + 1, len(key) + 1):
                if (i, j) != (0, len(key)):
                    with pytest.raises(NoteError):
                        parse(key[i:j])
            with pytest.raises(NoteError):
                parse(key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :])


def test_signer_key_errors_do_not_repeat_the_secret() -> None:
    secret = PETER_SKEY.rsplit("+", 1)[1]
    for bad in (PETER_SKEY.replace("c74f20a3", "00000000"), PETER_SKEY[:-2], PETER_SKEY.replace("+AYEK", "+AgEK")):
        with pytest.raises(NoteError) as info:
            parse_signer_key(bad)
        assert secret[:12] not in str(info.value)


@pytest.mark.parametrize(
    "name", ["", "a b", "a+b", "tab\tname", "nbsp\xa0name", "ideographic\u3000space", "nl\n", "ctl\x01", "\udc80"]
)
def test_invalid_key_names(name: str) -> None:
    with pytest.raises(NoteError):
        ed25519_key_id(name, peter().public_key())
    with pytest.raises(NoteError):
        sign_note(b"text\n", name, peter())


# ---- signed notes: the x/mod example ---------------------------------------------------------------------------


def test_signing_reproduces_the_go_example_byte_for_byte() -> None:
    sig = sign_note(TEXT.encode(), "PeterNeumann", peter())
    assert sig.key_id == bytes.fromhex("c74f20a3")
    assert len(sig.payload) == 64
    note = SignedNote(TEXT.encode(), (sig,))
    assert note.render() == PETER_NOTE
    assert sig.line() == PETER_SIG


def test_go_example_parses_and_verifies() -> None:
    note = SignedNote.parse(PETER_NOTE)
    assert note.text == TEXT.encode()
    assert note.signatures == (sign_note(TEXT.encode(), "PeterNeumann", peter()),)
    assert note.render() == PETER_NOTE
    assert verify_note_signatures(note, [PETER_VKEY]) == ["PeterNeumann"]
    assert SignedNote.parse(PETER_NOTE.encode()) == note


def test_doubly_signed_go_example() -> None:
    note = SignedNote.parse(TEXT + "\n" + PETER_SIG + ENOCH_SIG)
    assert verify_note_signatures(note, [PETER_VKEY, ENOCH_VKEY]) == ["PeterNeumann", "EnochRoot"]
    assert verify_note_signatures(note, [PETER_VKEY]) == ["PeterNeumann"]  # unknown EnochRoot ignored
    assert verify_note_signatures(note, [ENOCH_VKEY]) == ["EnochRoot"]
    assert verify_note_signatures(note, []) == []  # unverified: the caller must reject it


def test_a_known_key_with_a_bad_signature_rejects_the_note() -> None:
    raw = (TEXT + "\n" + PETER_SIG).encode()
    split = len(TEXT.encode()) + 1 + 60  # as x/mod note_test.go: peterSig[:60] + "ABCD" + peterSig[60:]
    corrupted = (raw[:split] + b"ABCD" + raw[split:]).decode()
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        verify_note_signatures(SignedNote.parse(corrupted), [PETER_VKEY])
    # The same note with the text changed.
    with pytest.raises(NoteError, match="invalid signature"):
        verify_note_signatures(SignedNote.parse(PETER_NOTE.replace("cryptography", "cryptographY")), [PETER_VKEY])


def test_signatures_sharing_only_name_or_only_key_id_are_ignored() -> None:
    other = Ed25519PrivateKey.generate()
    same_name = sign_note(TEXT.encode(), "PeterNeumann", other)  # same name, another key ID
    forged_id = NoteSignature("Mallory", bytes.fromhex("c74f20a3"), other.sign(TEXT.encode()))
    note = SignedNote(TEXT.encode(), (same_name, forged_id))
    assert verify_note_signatures(note, [PETER_VKEY]) == []


def test_bad_verifier_key_lists_are_an_error() -> None:
    with pytest.raises(NoteError, match="not of the form"):
        verify_note_signatures(SignedNote.parse(PETER_NOTE), ["garbage"])
    assert verify_note_signatures(SignedNote.parse(PETER_NOTE), [PETER_VKEY, PETER_VKEY]) == ["PeterNeumann"]
    with pytest.raises(NoteError, match="list of key strings"):
        verify_note_signatures(SignedNote.parse(PETER_NOTE), PETER_VKEY)
    impostor = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    clash = f"PeterNeumann+c74f20a3+{base64.b64encode(bytes([1]) + impostor).decode()}"
    with pytest.raises(NoteError, match="does not match"):  # a forged key ID is caught when parsing the key
        verify_note_signatures(SignedNote.parse(PETER_NOTE), [PETER_VKEY, clash])


def test_with_signature_replaces_the_same_key() -> None:
    stale = NoteSignature("PeterNeumann", bytes.fromhex("c74f20a3"), b"\x00" * 64)
    note = SignedNote(TEXT.encode(), (stale,)).with_signature(sign_note(TEXT.encode(), "PeterNeumann", peter()))
    assert note.render() == PETER_NOTE


def test_note_text_may_contain_empty_lines() -> None:
    # c2sp.org/signed-note: "the text is separated from the signatures by the last empty line in the note".
    text = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n".encode()
    note = SignedNote(text, (sign_note(text, "PeterNeumann", peter()),))
    parsed = SignedNote.parse(note.render())
    assert parsed == note
    assert verify_note_signatures(parsed, [PETER_VKEY]) == ["PeterNeumann"]


GO_BAD_NOTES = [
    pytest.param(TEXT, "no blank line", id="text only"),
    pytest.param(TEXT + "\n", "no signature lines", id="no signatures"),
    pytest.param(TEXT + "\n" + PETER_SIG[:-1], "must end with a newline", id="no final newline"),
    pytest.param("\x01" + TEXT + "\n" + PETER_SIG, "control character", id="control character"),
    pytest.param(f"{TEXT}\n— Bad Name {PETER_SIG64}\n", "base64", id="name with space"),
    pytest.param(f"{TEXT}\n{PETER_SIG}Unexpected line.\n", "line 2 does not start", id="trailing garbage"),
    pytest.param(TEXT + "\n" + PETER_SIG + "\n", "no signature lines", id="trailing blank line"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("—", "-"), "em dash", id="hyphen for em dash"),
    pytest.param(TEXT + "\n" + PETER_SIG.replace("— ", "—"), "em dash", id="no space after dash"),
    pytest.param(TEXT + "\n— PeterNeumann\n", "no signature", id="name only"),
    pytest.param(TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/Sf!cv\n", "not valid base64", id="bad base64"),
    pytest.param(TEXT + "\n— PeterNeumann x08go/Y\n", "not valid base64", id="bad padding"),
    pytest.param(TEXT + "\n— PeterNeumann x08go/Z=\n", "canonical", id="non-canonical base64"),
    pytest.param(TEXT + "\n— PeterNeumann x08g\n", "4-byte key ID", id="key ID only"),
    pytest.param(f"{TEXT}\n— a+b {PETER_SIG64}\n", "'\\+'", id="plus in name"),
    pytest.param(TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG, "control character", id="carriage return"),
    pytest.param(TEXT + "\n" + PETER_SIG * 101, "at most 100", id="101 signatures"),
]


@pytest.mark.parametrize(("note", "message"), GO_BAD_NOTES)
def test_malformed_notes_are_rejected(note: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        SignedNote.parse(note)


def test_invalid_utf8_is_rejected() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        SignedNote.parse(b"\xff" + PETER_NOTE.encode())
    with pytest.raises(NoteError, match="UTF-8"):
        SignedNote.parse("\udc80" + PETER_NOTE)
    with pytest.raises(NoteError, match="UTF-8"):
        SignedNote(b"\xc3(\n", (sign_note(TEXT.encode(), "PeterNeumann", peter()),))


def test_invalid_note_construction() -> None:
    sig = sign_note(TEXT.encode(), "PeterNeumann", peter())
    with pytest.raises(NoteError, match="end with a newline"):
        SignedNote(b"abc", (sig,))
    with pytest.raises(NoteError, match="at least one signature"):
        SignedNote(TEXT.encode(), ())
    with pytest.raises(NoteError, match="newline"):
        sign_note(b"abc", "PeterNeumann", peter())
    with pytest.raises(NoteError, match="4 bytes"):
        NoteSignature("PeterNeumann", b"\x00" * 3, b"x")


def test_sixteen_signatures_are_accepted() -> None:
    keys = [Ed25519PrivateKey.generate() for _ in range(16)]
    sigs = tuple(sign_note(TEXT.encode(), f"site-{i}.example", key) for i, key in enumerate(keys))
    note = SignedNote.parse(SignedNote(TEXT.encode(), sigs).render())
    vkeys = [verifier_key(f"site-{i}.example", key.public_key()) for i, key in enumerate(keys)]
    assert verify_note_signatures(note, vkeys) == [f"site-{i}.example" for i in range(16)]


# ---- checkpoints -----------------------------------------------------------------------------------------------


def test_spec_checkpoint_body_exact_bytes_and_parse() -> None:
    checkpoint = Checkpoint("example.com/behind-the-sofa", 20852163, base64.b64decode(SPEC_ROOT))
    assert checkpoint.body() == SPEC_CHECKPOINT.encode()
    assert Checkpoint.parse(SPEC_CHECKPOINT.encode()) == checkpoint
    with_ext = Checkpoint("o", 0, ROOT, ("ext one", "ext two"))
    assert with_ext.body() == f"o\n0\n{base64.b64encode(ROOT).decode()}\next one\next two\n".encode()
    assert Checkpoint.parse(with_ext.body()) == with_ext


def test_signed_checkpoint_note_exact_bytes() -> None:
    checkpoint = Checkpoint("cellrail.example/ledger/site-a", 7, ROOT)
    note = SignedNote(checkpoint.body(), (sign_note(checkpoint.body(), "PeterNeumann", peter()),))
    expected_text = "cellrail.example/ledger/site-a\n7\nA64fKQxvS7bbhq2L8QVh1uSWzM1FRg08KzB5kajRAYI=\n"
    assert checkpoint.body() == expected_text.encode()
    rendered = note.render()
    assert rendered == (
        expected_text
        + "\n"
        + "— PeterNeumann "
        + base64.b64encode(bytes.fromhex("c74f20a3") + peter().sign(expected_text.encode())).decode()
        + "\n"
    )
    assert rendered.encode("utf-8").count("\u2014 ".encode()) == 1
    assert "\u2014 ".encode() == b"\xe2\x80\x94\x20"
    assert Checkpoint.parse(SignedNote.parse(rendered).text) == checkpoint


def test_spec_cosigned_checkpoint_parses() -> None:
    note = SignedNote.parse(SPEC_CHECKPOINT + "\n" + SPEC_LOG_SIG + SPEC_WITNESS_SIG)
    assert Checkpoint.parse(note.text).size == 20852163
    log_sig, witness_sig = note.signatures
    assert log_sig.name == "example.com/behind-the-sofa"
    assert len(log_sig.payload) == 64
    assert witness_sig.name == "witness.example.com/w1"
    assert witness_sig.key_id.hex() == "8d66cf3f"
    assert len(witness_sig.payload) == 8 + 64
    assert witness_sig.timestamp == 1679315147  # the spec's "time 1679315147"
    assert note.render() == SPEC_CHECKPOINT + "\n" + SPEC_LOG_SIG + SPEC_WITNESS_SIG
    # transparency-dev/formats TestCoSigV1Timestamp vector.
    raw = base64.b64decode(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
    )
    assert NoteSignature("w", raw[:4], raw[4:]).timestamp == 1727964367
    with pytest.raises(NoteError, match="not an Ed25519 cosignature"):
        _ = log_sig.timestamp


B64_ROOT = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "end with a newline"),
        (f"o\n1\n{B64_ROOT}".encode(), "end with a newline"),
        (b"o\n1\n", "2 line"),
        (f"\n1\n{B64_ROOT}\n".encode(), "line 1 is empty"),
        (f"o\n1\n{B64_ROOT}\n\n".encode(), "line 4 is empty"),
        (f"o\n1\n{B64_ROOT}\next\n\n".encode(), "line 5 is empty"),
        (f"o\n01\n{B64_ROOT}\n".encode(), "leading zeroes"),
        (f"o\n-1\n{B64_ROOT}\n".encode(), "tree size"),
        (f"o\n+1\n{B64_ROOT}\n".encode(), "tree size"),
        (f"o\n 1\n{B64_ROOT}\n".encode(), "tree size"),
        (f"o\n1_000\n{B64_ROOT}\n".encode(), "tree size"),
        (f"o\n\u0661\n{B64_ROOT}\n".encode(), "tree size"),  # ARABIC-INDIC DIGIT ONE: int() would accept it
        (f"o\n0x10\n{B64_ROOT}\n".encode(), "tree size"),
        (f"o\n{2**64}\n{B64_ROOT}\n".encode(), "exceeds"),
        (b"o\n1\nnot base64!\n", "not valid base64"),
        (f"o\n1\n{B64_ROOT[:-1]}\n".encode(), "not valid base64"),
        (f"o\n1\n{B64_ROOT[:-2]}J=\n".encode(), "canonical"),
        (f"o\n1\n{base64.b64encode(ROOT[:20]).decode()}\n".encode(), "20 bytes"),
        (f"o\n1\n{B64_ROOT}\nbad\x7f\x00\n".encode(), "control character"),
        (b"\xffo\n1\n" + B64_ROOT.encode() + b"\n", "UTF-8"),
    ],
)
def test_malformed_checkpoints_are_rejected(body: bytes, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        Checkpoint.parse(body)


def test_invalid_checkpoint_construction() -> None:
    for kwargs in (
        {"origin": "", "size": 1, "root": ROOT},
        {"origin": "a\nb", "size": 1, "root": ROOT},
        {"origin": "o", "size": -1, "root": ROOT},
        {"origin": "o", "size": 2**64, "root": ROOT},
        {"origin": "o", "size": True, "root": ROOT},
        {"origin": "o", "size": 1, "root": ROOT[:31]},
        {"origin": "o", "size": 1, "root": ROOT, "extensions": ("",)},
        {"origin": "o", "size": 1, "root": ROOT, "extensions": ("a\nb",)},
    ):
        with pytest.raises(NoteError):
            Checkpoint(**kwargs)  # type: ignore[arg-type]


# ---- cosignatures ----------------------------------------------------------------------------------------------

WITNESS_NAME = "witness.example/w1"


@pytest.fixture(scope="module")
def witness() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_cosignature_format_against_an_independent_construction() -> None:
    checkpoint = Checkpoint("example.com/behind-the-sofa", 20852163, base64.b64decode(SPEC_ROOT))
    key = peter()  # any deterministic key will do
    sig = cosign(checkpoint, WITNESS_NAME, key, 1679315147)
    public = key.public_key().public_bytes_raw()
    assert sig.key_id == hashlib.sha256(WITNESS_NAME.encode() + b"\n\x04" + public).digest()[:4]
    assert sig.payload[:8] == (1679315147).to_bytes(8, "big") == bytes.fromhex("00000000641850cb")
    message = b"cosignature/v1\ntime 1679315147\n" + SPEC_CHECKPOINT.encode()
    Ed25519PublicKey.from_public_bytes(public).verify(sig.payload[8:], message)  # raises if the format differs
    assert sig.payload[8:] == key.sign(message)
    assert sig.timestamp == 1679315147


def test_cosignature_round_trip_in_a_note(witness: Ed25519PrivateKey) -> None:
    checkpoint = Checkpoint("cellrail.example/ledger/site-a", 42, ROOT, ("extension",))
    log_key = Ed25519PrivateKey.generate()
    log_vkey = verifier_key("cellrail.example/ledger/site-a", log_key.public_key())
    witness_vkey = cosigner_verifier_key(WITNESS_NAME, witness.public_key())
    note = SignedNote(checkpoint.body(), (sign_note(checkpoint.body(), "cellrail.example/ledger/site-a", log_key),))
    note = note.with_signature(cosign(checkpoint, WITNESS_NAME, witness, 1_700_000_000))
    parsed = SignedNote.parse(note.render())
    assert parsed == note
    assert verify_note_signatures(parsed, [log_vkey, witness_vkey]) == ["cellrail.example/ledger/site-a", WITNESS_NAME]
    assert verify_cosignatures(parsed, [witness_vkey]) == {WITNESS_NAME: 1_700_000_000}
    assert verify_cosignature(checkpoint, parsed.signatures[1], witness_vkey) == 1_700_000_000
    # A plain Ed25519 key for the same name and key does not verify cosignatures (different key ID).
    plain = verifier_key(WITNESS_NAME, witness.public_key())
    assert verify_note_signatures(parsed, [plain]) == []
    with pytest.raises(NoteError, match="type 0x01"):
        verify_cosignatures(parsed, [plain])


def test_cosignature_tampering(witness: Ed25519PrivateKey) -> None:
    checkpoint = Checkpoint("log.example", 10, ROOT)
    witness_vkey = cosigner_verifier_key(WITNESS_NAME, witness.public_key())
    sig = cosign(checkpoint, WITNESS_NAME, witness, 1_700_000_000)
    later = NoteSignature(sig.name, sig.key_id, (1_700_000_001).to_bytes(8, "big") + sig.payload[8:])
    with pytest.raises(NoteError, match="invalid cosignature"):
        verify_cosignature(checkpoint, later, witness_vkey)
    for other in (Checkpoint("log.example", 11, ROOT), Checkpoint("log.example", 10, bytes(32))):
        with pytest.raises(NoteError, match="invalid cosignature"):
            verify_cosignature(other, sig, witness_vkey)
    with pytest.raises(NoteError, match="is not from"):
        verify_cosignature(checkpoint, NoteSignature("other.example", sig.key_id, sig.payload), witness_vkey)
    note = SignedNote(checkpoint.body(), (later,))
    with pytest.raises(NoteError, match="invalid signature"):
        verify_cosignatures(note, [witness_vkey])
    with pytest.raises(NoteError):
        verify_cosignatures(SignedNote(b"not a checkpoint\n", (sig,)), [witness_vkey])


@pytest.mark.parametrize("timestamp", [-1, 2**63])
def test_cosignature_timestamp_range(witness: Ed25519PrivateKey, timestamp: int) -> None:
    with pytest.raises(NoteError, match="timestamp"):
        cosign(Checkpoint("log.example", 1, ROOT), WITNESS_NAME, witness, timestamp)


# ---- properties ------------------------------------------------------------------------------------------------

LINE = st.text(alphabet=st.characters(min_codepoint=0x20, blacklist_categories=["Cs"]), min_size=1, max_size=30)
ORIGINS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789./-", min_size=1, max_size=40)
CHECKPOINTS = st.builds(
    Checkpoint,
    origin=ORIGINS,
    size=st.integers(min_value=0, max_value=2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(LINE, max_size=3).map(tuple),
)


@given(CHECKPOINTS)
def test_checkpoint_round_trip(checkpoint: Checkpoint) -> None:
    assert Checkpoint.parse(checkpoint.body()) == checkpoint


@given(st.lists(st.one_of(LINE, st.just("")), min_size=1, max_size=6))
def test_note_round_trip_with_any_text(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines).encode()
    note = SignedNote(text, (sign_note(text, "PeterNeumann", peter()),))
    parsed = SignedNote.parse(note.render())
    assert parsed == note
    assert verify_note_signatures(parsed, [PETER_VKEY]) == ["PeterNeumann"]


@pytest.fixture(scope="module")
def cosigned() -> tuple[str, str, str]:
    checkpoint = Checkpoint("cellrail.example/ledger", 1234, ROOT, ("ext",))
    witness = Ed25519PrivateKey.generate()
    note = SignedNote(checkpoint.body(), (sign_note(checkpoint.body(), "PeterNeumann", peter()),))
    note = note.with_signature(cosign(checkpoint, WITNESS_NAME, witness, 1_700_000_000))
    return note.render(), PETER_VKEY, cosigner_verifier_key(WITNESS_NAME, witness.public_key())


@settings(max_examples=300)
@given(data=st.data())
def test_changing_any_byte_breaks_verification(data: st.DataObject, cosigned: tuple[str, str, str]) -> None:
    # A signature covers the note text, not the other signature lines: so the claim is that after any one-byte
    # change, the note no longer carries valid signatures from *all* of its signers.
    cases = (
        (PETER_NOTE, [PETER_VKEY], ["PeterNeumann"]),
        (cosigned[0], [cosigned[1], cosigned[2]], ["PeterNeumann", WITNESS_NAME]),
    )
    for note, vkeys, names in cases:
        raw = note.encode("utf-8")
        assert verified_by(raw, vkeys, names)
        index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1), label="index")
        flip = data.draw(st.integers(min_value=1, max_value=255), label="xor")
        tampered = raw[:index] + bytes([raw[index] ^ flip]) + raw[index + 1 :]
        assert not verified_by(tampered, vkeys, names)


@settings(max_examples=50)
@given(text=st.lists(LINE, min_size=1, max_size=4), index=st.integers(min_value=0))
def test_changing_a_text_byte_raises_for_the_known_key(text: list[str], index: int) -> None:
    body = "".join(line + "\n" for line in text).encode()
    note = SignedNote(body, (sign_note(body, "PeterNeumann", peter()),))
    i = index % (len(body) - 1)  # keep the final newline
    changed = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
    try:
        forged = SignedNote(changed, note.signatures)
    except NoteError:
        return  # no longer valid note text
    with pytest.raises(NoteError, match="invalid signature"):
        verify_note_signatures(forged, [PETER_VKEY])


# ---- key files -------------------------------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_init_key_creates_a_0600_file_and_returns_the_verifier_key(tmp_path: Path) -> None:
    path = tmp_path / "site-a.key"
    vkey = init_key(path, "cellrail.example/site-a")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_text()
    assert content.startswith("PRIVATE+KEY+cellrail.example/site-a+")
    assert content.endswith("\n")
    assert content.count("\n") == 1
    name, key_id, public = parse_verifier_key(vkey)
    assert name == "cellrail.example/site-a"
    loaded_name, private = load_signer(path)
    assert loaded_name == name
    assert private.public_key().public_bytes_raw() == public.public_bytes_raw()
    assert public_verifier_key(path) == vkey
    assert content.split("+")[3] == key_id.hex()
    text = b"hello\n"
    assert verify_note_signatures(SignedNote(text, (sign_note(text, name, private),)), [vkey]) == [name]


def test_init_key_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "site.key"
    init_key(path, "site")
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        init_key(path, "site")
    assert path.read_bytes() == before
    other = tmp_path / "other"
    other.write_text("not a key")
    with pytest.raises(KeyFileError, match="already exists"):
        init_key(other, "site")
    assert other.read_text() == "not a key"


def test_init_key_refuses_a_symlink_even_dangling(tmp_path: Path) -> None:
    link = tmp_path / "link.key"
    link.symlink_to(tmp_path / "target.key")
    with pytest.raises(KeyFileError, match="already exists"):
        init_key(link, "site")
    assert not (tmp_path / "target.key").exists()


def test_init_key_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="whitespace"):
        init_key(tmp_path / "bad.key", "bad name")
    assert not (tmp_path / "bad.key").exists()
    with pytest.raises(KeyFileError, match="cannot create key file"):
        init_key(tmp_path / "missing" / "x.key", "site")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o601])
def test_load_signer_refuses_group_or_other_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "site.key"
    init_key(path, "site")
    path.chmod(mode)
    with pytest.raises(KeyFileError) as info:
        load_signer(path)
    message = str(info.value)
    assert str(path) in message
    assert f"{mode:04o}" in message
    assert "too open" in message
    assert "chmod 600" in message
    path.chmod(0o400)  # owner read-only is fine
    assert load_signer(path)[0] == "site"


def write_key_file(path: Path, content: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    return path


def test_load_signer_accepts_the_go_signer_key(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "peter.key", PETER_SKEY.encode())  # no trailing newline
    name, private = load_signer(path)
    assert name == "PeterNeumann"
    assert public_verifier_key(path) == PETER_VKEY
    assert sign_note(TEXT.encode(), name, private).line() == PETER_SIG


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"hello\n", "malformed.*PRIVATE\\+KEY"),
        (PETER_VKEY.encode(), "malformed"),
        (PETER_SKEY.replace("c74f20a3", "c74f20a4").encode(), "malformed.*does not match"),
        (PETER_SKEY[:-3].encode(), "malformed.*base64"),
        (PETER_SKEY[:-4].encode(), "malformed.*0x01 followed by a 32-byte"),
        (PETER_SKEY.replace("+AYEK", "+AgEK").encode(), "malformed.*0x01"),
        ((PETER_SKEY + "\n" + PETER_SKEY).encode(), "malformed.*single"),
        (b"\xff\xfe", "not ASCII"),
        (b"A" * 5000, "too large"),
    ],
)
def test_load_signer_rejects_malformed_content(tmp_path: Path, content: bytes, message: str) -> None:
    path = write_key_file(tmp_path / "site.key", content)
    with pytest.raises(KeyFileError, match=message) as info:
        load_signer(path)
    assert str(path) in str(info.value)
    assert "AYEKFALVFGyNhPJEMzD1" not in str(info.value)  # never echo secret key material


def test_load_signer_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_signer(tmp_path / "nope.key")
    directory = tmp_path / "dir.key"
    directory.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_signer(directory)
