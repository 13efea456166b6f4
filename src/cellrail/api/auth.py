"""The context of one request: its unit of work, the clock, who is calling, and input the store could not keep.

Each request gets one ``SqlUnitOfWork`` (read-only for GET and HEAD); the use case it calls commits, and leaving
the request rolls back whatever was not committed. Callers identify with ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordBearer
from pydantic import ValidationError

from cellrail.api.errors import UNSTORABLE_TEXT, field_path, unstorable_text
from cellrail.api.schemas import TokenRequest
from cellrail.kernel.clock import Clock
from cellrail.kernel.errors import InvalidInput, Unauthenticated
from cellrail.rail.access_control import Principal
from cellrail.rail.accounts import authenticate
from cellrail.store.uow import SqlUnitOfWork

TOKEN_PATH = "/api/v1/auth/token"
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM = "application/x-www-form-urlencoded"

bearer = OAuth2PasswordBearer(
    tokenUrl=TOKEN_PATH.lstrip("/"),
    auto_error=False,
    description="A token from `POST /api/v1/auth/token`, sent as `Authorization: Bearer <token>`.",
)


def unit_of_work(request: Request) -> Iterator[SqlUnitOfWork]:
    """One transaction per request, on the engine the app was created with."""
    with SqlUnitOfWork(request.app.state.engine, write=request.method not in _READ_ONLY) as uow:
        yield uow


def app_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


Uow = Annotated[SqlUnitOfWork, Depends(unit_of_work, scope="function")]
AppClock = Annotated[Clock, Depends(app_clock)]


def current_principal(uow: Uow, clock: AppClock, token: Annotated[str | None, Depends(bearer)]) -> Principal:
    """The caller, from the bearer token; 401 without one or with an unknown or expired one."""
    if not token:
        raise Unauthenticated("send `Authorization: Bearer <token>`; get a token from POST " + TOKEN_PATH)
    return authenticate(uow, token, clock)


Actor = Annotated[Principal, Depends(current_principal)]


def _refuse_unstorable(document: Any) -> None:
    where = unstorable_text(document)
    if where is not None:
        raise InvalidInput.one(field_path(("body", *where)), UNSTORABLE_TEXT)


async def storable_body(request: Request, actor: Actor) -> Principal:
    """The caller, once the JSON body holds no text the store or the ledger could not keep (422 naming it).

    Runs after authentication and before the body is validated against its model.
    """
    if request.method not in _READ_ONLY:
        try:
            document = await request.json()  # already decoded (and cached) by FastAPI for JSON bodies
        except (ValueError, RecursionError):
            document = None  # not JSON: the body's own validation reports it
        _refuse_unstorable(document)
    return actor


Writer = Annotated[Principal, Depends(storable_body)]


async def credentials(request: Request) -> TokenRequest:
    """Username and password from an OAuth2 password form (as the docs page sends it) or a JSON object."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: Any
    if content_type == _FORM:
        form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        grant = form.get("grant_type", ["password"])[0]
        if grant != "password":
            raise InvalidInput.one("grant_type", f"only the 'password' grant is supported, not '{grant}'")
        data = {key: form[key][0] for key in ("username", "password") if key in form}
    elif content_type in ("", "application/json"):
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidInput.one("body", "the body is neither JSON nor an OAuth2 password form") from None
    else:
        raise InvalidInput.one("body", f"send JSON or {_FORM}, not '{content_type}'")
    _refuse_unstorable(data)
    try:
        return TokenRequest.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False, include_input=False)]
        ) from None


Credentials = Annotated[TokenRequest, Depends(credentials)]
