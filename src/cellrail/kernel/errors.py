"""Errors that name what went wrong and where, so no user ever has to read a traceback.

Every adapter maps these to its own medium: the API to 4xx answers, the CLI to a message and an exit code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: the field (a dotted path) and, for files, where it stands."""

    field: str
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class CellRailError(Exception):
    """Base of every error CellRail raises on purpose."""


class InvalidInput(CellRailError):
    """The input breaks one or more rules; each problem names its field."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid input")

    @classmethod
    def one(cls, field: str, message: str) -> InvalidInput:
        return cls([Problem(field, message)])


class NotFound(CellRailError):
    """The thing asked for does not exist (or is not visible to the caller)."""


class Forbidden(CellRailError):
    """The caller's role or node does not allow this action."""


class SignatureRefused(Forbidden):
    """An electronic signature whose password does not match the signer: the session stays valid."""


class Unauthenticated(CellRailError):
    """No valid credentials were given."""


class Conflict(CellRailError):
    """The request is well formed but the current state refuses it."""


class IllegalTransition(Conflict):
    """An order was asked to move to a state its current state does not lead to."""

    def __init__(self, order_id: str, current: str, attempted: str, allowed: Sequence[str]) -> None:
        self.order_id = order_id
        self.current = current
        self.attempted = attempted
        self.allowed = tuple(allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none (the order is closed)"
        super().__init__(
            f"order {order_id} is '{current}' and cannot become '{attempted}'; allowed next steps: {allowed_text}"
        )


class IdentityMismatch(Conflict):
    """A scanned label does not match the order: a hard stop, recorded in the ledger."""

    def __init__(self, order_id: str, field: str, scanned: str) -> None:
        self.order_id = order_id
        self.field = field
        self.scanned = scanned
        super().__init__(
            f"identity mismatch on order {order_id}: scanned {field} '{scanned}' does not match the order; "
            "hard stop recorded, the order was not advanced"
        )


class NoCapacity(Conflict):
    """No chain of free slots could be found for a booking."""
