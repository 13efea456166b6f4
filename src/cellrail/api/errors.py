"""CellRail errors as HTTP answers: every refusal is a 4xx that names what went wrong, never a traceback.

Validation problems (ours and FastAPI's) share one shape, ``{"detail": [{"field": "scan.din", "message": ...}]}``,
with the field as a dotted path into the body (``scans[0].label.din``) or the name of a path or query parameter.
Every other refusal is ``{"detail": "<sentence>"}``, with structured fields added where a client can act on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cellrail.kernel.errors import (
    CellRailError,
    Conflict,
    Forbidden,
    IdentityMismatch,
    IllegalTransition,
    InvalidInput,
    NotFound,
    Problem,
    Unauthenticated,
)

_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
UNSTORABLE_TEXT = "text may not contain NUL characters or unpaired surrogates"


def readable(text: str) -> str:
    """``text`` as UTF-8 can carry it: unpaired surrogates from a request must not break the answer."""
    return text.encode("utf-8", "replace").decode("utf-8")


def field_path(loc: Sequence[int | str]) -> str:
    """A Pydantic/FastAPI error location as a dotted path: ``("body", "scans", 0, "din")`` → ``scans[0].din``."""
    parts = list(loc)
    if parts and parts[0] in _LOCATIONS:
        kind = parts.pop(0)
        if not parts:
            return str(kind)
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return readable(path)


def unstorable_text(document: Any) -> tuple[int | str, ...] | None:
    """Where in a decoded JSON document a string holds a character no store or ledger can keep, if anywhere.

    PostgreSQL refuses NUL in text and UTF-8 cannot encode unpaired surrogates (which JSON escapes can produce).
    Walks iteratively, so a deeply nested document cannot exhaust the stack.
    """
    stack: list[tuple[tuple[int | str, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value or (not value.isascii() and _has_surrogate(value)):
                return path
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                stack.append(((*path, str(key)), item))
                stack.append(((*path, str(key)), key))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in reversed(list(enumerate(value))))
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def problems_body(problems: Iterable[Problem]) -> dict[str, Any]:
    return {"detail": [{"field": readable(p.field), "message": readable(p.message)} for p in problems]}


def _validation_message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "json_invalid":
        context = error.get("ctx") or {}
        loc = error.get("loc") or ()
        position = loc[-1] if loc and isinstance(loc[-1], int) else None
        where = f" at character {position}" if position is not None else ""
        return f"the body is not valid JSON: {context.get('error', 'decode error')}{where}"
    return message


def _answer(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(dict(body), status_code=status, headers=dict(headers) if headers else None)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        loc = tuple(error.get("loc") or ())
        if error.get("type") == "json_invalid":
            loc = ("body",)
        problems.append(Problem(field_path(loc) or "body", _validation_message(error)))
    return _answer(422, problems_body(problems))


async def _invalid_input(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    return _answer(422, problems_body(exc.problems or (Problem("", str(exc)),)))


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return _answer(404, {"detail": readable(str(exc))})


async def _forbidden(request: Request, exc: Exception) -> JSONResponse:
    return _answer(403, {"detail": readable(str(exc))})


async def _unauthenticated(request: Request, exc: Exception) -> JSONResponse:
    return _answer(401, {"detail": readable(str(exc))}, {"WWW-Authenticate": "Bearer"})


async def _illegal_transition(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IllegalTransition)
    body = {
        "detail": readable(str(exc)),
        "order": exc.order_id,
        "current": exc.current,
        "attempted": exc.attempted,
        "allowed": list(exc.allowed),
    }
    return _answer(409, body)


async def _identity_mismatch(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IdentityMismatch)
    return _answer(409, {"detail": readable(str(exc)), "order": exc.order_id, "field": exc.field})


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return _answer(409, {"detail": readable(str(exc))})


async def _other(request: Request, exc: Exception) -> JSONResponse:
    return _answer(400, {"detail": readable(str(exc))})


def install_error_handlers(app: FastAPI) -> None:
    """Map every CellRail error (most specific class wins) and FastAPI's validation errors to answers."""
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(InvalidInput, _invalid_input)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(Unauthenticated, _unauthenticated)
    app.add_exception_handler(IllegalTransition, _illegal_transition)
    app.add_exception_handler(IdentityMismatch, _identity_mismatch)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(CellRailError, _other)
