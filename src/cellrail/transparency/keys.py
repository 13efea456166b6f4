"""A site's Ed25519 signing key on disk, stored as a C2SP / x/mod sumdb/note signer key string.

The file holds one line, ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || 32-byte seed)>`` (see
:func:`cellrail.transparency.note.signer_key`). It is created with mode 0600 and never overwritten; like ssh,
loading refuses a file that group or others can access. The matching verifier key string
(``<name>+<hex key ID>+<base64(0x01 || public key)>``, c2sp.org/signed-note) is what goes in the network file.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cellrail.transparency.note import NoteError, parse_signer_key, signer_key, validate_key_name, verifier_key

__all__ = ["KeyFileError", "init_key", "load_signer", "public_verifier_key"]

_MAX_KEY_FILE_BYTES = 4096  # a signer key string is about 100 bytes


class KeyFileError(ValueError):
    """A key file that cannot be created or loaded; the message names the path and never the key."""


def init_key(path: Path, name: str) -> str:
    """Create a new Ed25519 signer key file at ``path`` (mode 0600, never overwriting); return its verifier key."""
    path = Path(path)
    try:
        validate_key_name(name)
    except NoteError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc}") from None
    private = Ed25519PrivateKey.generate()
    content = (signer_key(name, private) + "\n").encode("ascii")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600)  # the umask may have removed owner bits; never adds group/other bits
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror or exc}") from None
    os.close(fd)
    _fsync_directory(path.parent)
    return verifier_key(name, private.public_key())


def _fsync_directory(directory: Path) -> None:
    """Make the new directory entry durable (best effort; not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_signer(path: Path) -> tuple[str, Ed25519PrivateKey]:
    """Load (key name, private key) from a key file written by :func:`init_key`.

    Refuses a file that is not a regular file, that group or others may access (like ssh: ``chmod 600`` it), or
    whose content is not a valid signer key string.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist (create one with init_key)") from None
    except OSError as exc:
        raise KeyFileError(f"cannot open key file {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)  # check the file actually opened, not whatever the path names a moment later
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"permissions {mode:04o} for key file {path} are too open: a private key must not be accessible "
                f"by group or others (run: chmod 600 {path})"
            )
        data = b""
        while len(data) <= _MAX_KEY_FILE_BYTES:
            chunk = os.read(fd, _MAX_KEY_FILE_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"key file {path} is too large to be a signer key")
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise KeyFileError(f"key file {path} is malformed: it is not ASCII text") from None
    if not text:
        raise KeyFileError(f"key file {path} is empty")
    if "\n" in text:
        raise KeyFileError(f"key file {path} is malformed: expected a single PRIVATE+KEY+... line")
    try:
        return parse_signer_key(text)
    except NoteError as exc:
        raise KeyFileError(f"key file {path} is malformed: {exc}") from None


def public_verifier_key(path: Path) -> str:
    """The verifier key string (``<name>+<hex key ID>+<base64(0x01 || public key)>``) of the key file at ``path``."""
    name, private = load_signer(path)
    return verifier_key(name, private.public_key())
