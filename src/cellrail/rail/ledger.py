"""The custody ledger: append-only events, each chained to the one before by SHA-256.

An event is encoded once, canonically (JSON with sorted keys, no spaces, UTF-8), and those bytes are stored
verbatim and never re-encoded. Its hash is ``SHA-256(previous hash ‖ canonical bytes)``, so the hashed encoding
includes the previous hash and changing, removing or reordering any stored event breaks every later link.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

from cellrail.kernel.clock import iso_utc

GENESIS = bytes(32)


class EventKind(StrEnum):
    NETWORK_REGISTERED = "network.registered"
    ORDER_ENROLLED = "order.enrolled"
    ORDER_BOOKED = "order.booked"
    ORDER_MOVED = "order.moved"
    IDENTITY_MISMATCH = "identity.mismatch"
    CUSTODY_SCAN = "custody.scan"
    USER_CREATED = "user.created"
    SLOTS_OPENED = "slots.opened"


@dataclass(frozen=True)
class Signature:
    """An electronic signature manifest (21 CFR 11.50): who signed, when, and what the signature means."""

    user: str
    full_name: str
    meaning: str
    at: datetime

    def as_dict(self) -> dict[str, str]:
        return {"user": self.user, "full_name": self.full_name, "meaning": self.meaning, "at": iso_utc(self.at)}


@dataclass(frozen=True)
class CustodyEvent:
    """What happened, where, when and by whom: the content of one ledger entry before it is sequenced."""

    kind: EventKind
    node: str
    actor: str
    role: str
    at: datetime
    order: str | None = None
    item: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    signatures: tuple[Signature, ...] = ()


class LedgerEntry(NamedTuple):
    """A sequenced, hashed event as stored, in the log (``origin``) of the site where it happened.

    A NamedTuple rather than a frozen dataclass: as immutable, and built in half the time, once per event.
    """

    seq: int
    body: bytes
    hash: bytes
    log: str = ""

    def content(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded


def encode(event: CustodyEvent, seq: int, recorded_at: datetime | str, log: str = "") -> bytes:
    """The canonical bytes of an event: the only form ever hashed or stored.

    JSON with keys sorted, no insignificant white space, UTF-8 (orjson, which writes exactly that and nothing
    else); ``recorded_at`` may come pre-formatted (``iso_utc``) when a whole batch shares it. Non-finite numbers
    are refused (JSON has no NaN), as are values JSON cannot carry.
    """
    data = event.data if type(event.data) is dict else dict(event.data)
    for value in data.values():
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                _refuse_non_finite(value)
        elif kind is not str and kind is not int:  # text and integers, the common cases, need no check
            _refuse_non_finite(value)
    document = {
        "log": log,
        "seq": seq,
        "kind": event.kind,  # a StrEnum: orjson writes its value
        "order": event.order,
        "node": event.node,
        "actor": event.actor,
        "role": event.role,
        "at": iso_utc(event.at),
        "recorded_at": recorded_at if isinstance(recorded_at, str) else iso_utc(recorded_at),
        "item": event.item,
        "data": data,
        "signatures": [s.as_dict() for s in event.signatures] if event.signatures else [],
    }
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as error:
        raise ValueError(f"event data cannot be encoded canonically: {error}") from error


def _refuse_non_finite(value: Any) -> None:
    """orjson writes NaN and infinities as null; a custody record must not silently change a value, so refuse."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"out of range float value {value!r} is not JSON compliant")
    elif isinstance(value, dict):
        for item in value.values():
            _refuse_non_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_non_finite(item)


def link(previous_hash: bytes, body: bytes) -> bytes:
    return hashlib.sha256(previous_hash + body).digest()


def seal(
    events: Iterable[CustodyEvent], head_seq: int, head_hash: bytes, recorded_at: datetime, log: str = ""
) -> list[LedgerEntry]:
    """Sequence and chain events after the head ``(head_seq, head_hash)`` of ``log``."""
    entries = []
    previous = head_hash
    for offset, event in enumerate(events, start=1):
        body = encode(event, head_seq + offset, recorded_at, log)
        previous = link(previous, body)
        entries.append(LedgerEntry(head_seq + offset, body, previous, log))
    return entries


@dataclass(frozen=True)
class ChainBreak:
    """The first event whose stored form no longer fits the chain, and why."""

    seq: int
    reason: str
    log: str = ""


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head_hash: bytes
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


# Stored row: seq, order column, kind column, body, hash. The order and kind columns are an index for queries;
# they are compared with the body so that editing them is caught too.
StoredRow = tuple[int, str | None, str, bytes, bytes]


def verify_rows(rows: Iterable[StoredRow], log: str = "") -> ChainReport:
    """Re-walk one log's chain from genesis and name the first altered, missing or reordered event."""
    previous = GENESIS
    expected_seq = 1
    checked = 0
    sha256 = hashlib.sha256
    loads = orjson.loads

    def broken(seq: int, reason: str) -> ChainReport:
        return ChainReport(checked, previous, ChainBreak(seq, reason, log))

    for seq, order, kind, body, stored_hash in rows:
        body = bytes(body)
        if seq != expected_seq:
            return broken(expected_seq, f"event {expected_seq} is missing")
        computed = sha256(previous + body).digest()
        if computed != bytes(stored_hash):
            return broken(seq, "content does not match its hash (altered)")
        try:
            content = loads(body)
            indexed = (content["log"], content["seq"], content["order"], content["kind"])
        except (ValueError, TypeError, KeyError):
            return broken(seq, "content is not a CellRail event")
        if indexed != (log, seq, order, kind):
            return broken(seq, "indexed columns differ from the signed content")
        previous = computed
        expected_seq += 1
        checked += 1
    return ChainReport(checked, previous, None)
