"""The sites' signing keys on disk: the one secret that must never be in the database.

Each key file holds a C2SP signer key named after its log's origin (``cellrail/<network>/<site>``) and is
readable by its owner only. An attacker who can rewrite the database cannot forge checkpoints without it.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cellrail.kernel.errors import InvalidInput
from cellrail.transparency.keys import KeyFileError, init_key, load_signer


def key_path(keys_dir: Path, log: str) -> Path:
    return keys_dir / (log.replace("/", "__") + ".key")


def create_key(keys_dir: Path, log: str) -> str:
    """Create the signing key of ``log``; returns its verifier key, to list in the network file."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return init_key(key_path(keys_dir, log), log)
    except (KeyFileError, FileExistsError) as error:
        raise InvalidInput.one("key", str(error)) from None


def load_signers(keys_dir: Path) -> dict[str, Ed25519PrivateKey]:
    """Every signing key in ``keys_dir``, by log origin (an empty dict if there is none)."""
    signers: dict[str, Ed25519PrivateKey] = {}
    if not keys_dir.is_dir():
        return signers
    for path in sorted(keys_dir.glob("*.key")):
        try:
            name, private = load_signer(path)
        except KeyFileError as error:
            raise InvalidInput.one("keys_dir", str(error)) from None
        signers[name] = private
    return signers
