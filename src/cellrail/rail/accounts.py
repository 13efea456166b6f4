"""Users, passwords and API tokens.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106). API tokens are random 256-bit secrets;
only their SHA-256 digest is stored, so a copy of the database does not let anyone log in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from cellrail.kernel.clock import Clock
from cellrail.kernel.errors import Conflict, InvalidInput, SignatureRefused, Unauthenticated
from cellrail.rail.access_control import Action, Principal, Role, role_for
from cellrail.rail.ledger import CustodyEvent, EventKind
from cellrail.rail.ports import UnitOfWork, UnitOfWorkFactory, UserRecord
from cellrail.rail.recording import record

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")
    full_name: str = Field(min_length=1, max_length=200)
    node: str = Field(min_length=1, max_length=64)
    roles: list[Role] = Field(min_length=1)
    password: SecretStr = Field(min_length=12, description="At least 12 characters")


def principal_of(user: UserRecord) -> Principal:
    return Principal(user.username, user.full_name, user.node, user.roles)


def create_user(uow: UnitOfWork, command: NewUser, actor: Principal, clock: Clock) -> Principal:
    role = role_for(actor, Action.MANAGE_USERS, None)
    if Role.QUALIFIED_PERSON in command.roles and Role.NODE_OPERATOR in command.roles:
        raise InvalidInput.one("roles", "a qualified person may not also be a node operator (segregation of duties)")
    password_hash = hash_password(command.password.get_secret_value())  # slow: before the transaction starts
    network = uow.networks.current()
    if network is not None and command.node not in network.node_ids:
        raise InvalidInput.one("node", f"unknown node '{command.node}'")
    if uow.users.get(command.username) is not None:
        raise Conflict(f"user '{command.username}' already exists")
    user = UserRecord(
        username=command.username,
        full_name=command.full_name,
        node=command.node,
        roles=frozenset(command.roles),
        password_hash=password_hash,
    )
    uow.users.add(user)
    data = {"username": user.username, "node": user.node, "roles": sorted(r.value for r in user.roles)}
    record(uow, clock, CustodyEvent(EventKind.USER_CREATED, user.node, actor.username, role, clock.now(), data=data))
    uow.commit()
    return principal_of(user)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


def issue_token(uows: UnitOfWorkFactory, username: str, password: str, clock: Clock, hours: float) -> IssuedToken:
    """Exchange a username and password for a bearer token valid for ``hours``.

    The password is checked (Argon2, deliberately slow) in a read-only transaction, so a stream of failed logins
    never holds the store's write lock; only the token itself is written.
    """
    with uows(write=False) as uow:
        user = uow.users.get(username)
    if user is None or not user.active or not password_matches(user.password_hash, password):
        raise Unauthenticated("wrong username or password")
    token = secrets.token_urlsafe(32)
    expires_at = clock.now() + timedelta(hours=hours)
    with uows(write=True) as uow:
        uow.users.add_token(token_digest(token), username, expires_at)
        uow.commit()
    return IssuedToken(token, expires_at)


def authenticate(uow: UnitOfWork, token: str, clock: Clock) -> Principal:
    user = uow.users.by_token(token_digest(token), clock.now())
    if user is None:
        raise Unauthenticated("the token is unknown or has expired; request a new one")
    return principal_of(user)


def confirm_signature(uow: UnitOfWork, actor: Principal, password: SecretStr | None) -> None:
    """21 CFR 11.200: each signing re-checks both components (user id and password) of the signer."""
    user = uow.users.get(actor.username)
    if password is None:
        raise InvalidInput.one("password", "an electronic signature needs the signer's password")
    if user is None or not password_matches(user.password_hash, password.get_secret_value()):
        raise SignatureRefused("signature refused: the password does not match the signer")
