"""Tokens and the caller's own identity."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request

from cellrail.api.auth import Actor, AppClock, Credentials
from cellrail.api.routers import AUTHENTICATED
from cellrail.api.schemas import ErrorAnswer, MeView, TokenRequest, TokenView, ValidationAnswer
from cellrail.rail.accounts import issue_token
from cellrail.store.uow import SqlUnitOfWork

router = APIRouter(tags=["auth"])

_TOKEN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["password"]},
                        "username": {"type": "string"},
                        "password": {"type": "string", "format": "password"},
                    },
                }
            },
            "application/json": {"schema": TokenRequest.model_json_schema()},
        },
    }
}


@router.post(
    "/auth/token",
    summary="Exchange username and password for a bearer token",
    description="Accepts an OAuth2 password form (as the docs page's *Authorize* button sends it) or JSON "
    "`{username, password}`. The token is valid for the server's configured number of hours.",
    openapi_extra=_TOKEN_BODY,
    responses={
        401: {"model": ErrorAnswer, "description": "Wrong username or password"},
        422: {"model": ValidationAnswer, "description": "Missing or malformed credentials"},
    },
)
def token(request: Request, clock: AppClock, given: Credentials) -> TokenView:
    issued = issue_token(
        partial(SqlUnitOfWork, request.app.state.engine),
        given.username,
        given.password,
        clock,
        request.app.state.token_hours,
    )
    return TokenView(access_token=issued.token, expires_at=issued.expires_at)


@router.get("/me", summary="Who the token belongs to: user, node and roles", responses=AUTHENTICATED)
def me(actor: Actor) -> MeView:
    return MeView.of(actor)
