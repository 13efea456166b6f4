"""Who may do what, where: roles x actions x nodes.

Node-scoped roles act only on orders that involve their own node (the treatment site or the manufacturing
node). Network roles span every node. Segregation of duties follows GMP practice: the people who make a product
do not certify it (only a qualified person releases), and auditors and administrators never change an order.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from cellrail.kernel.errors import Forbidden


class Role(StrEnum):
    NODE_OPERATOR = "node_operator"
    COURIER = "courier"
    QA_REVIEWER = "qa_reviewer"
    QUALIFIED_PERSON = "qualified_person"
    NETWORK_ADMIN = "network_admin"
    AUDITOR = "auditor"


class Action(StrEnum):
    VIEW_NETWORK = "view_network"
    VIEW_ORDER = "view_order"
    VIEW_PATIENT_IDENTITY = "view_patient_identity"
    ENROLL = "enroll"
    BOOK = "book"
    OPEN_SLOTS = "open_slots"
    COLLECT = "collect"
    HAND_OFF = "hand_off"
    MANUFACTURE = "manufacture"
    REJECT = "reject"
    RELEASE = "release"
    INFUSE = "infuse"
    WITHDRAW = "withdraw"
    VIEW_LEDGER = "view_ledger"
    MANAGE_NETWORK = "manage_network"
    MANAGE_USERS = "manage_users"


A = Action
PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.NODE_OPERATOR: frozenset(
        {
            A.VIEW_NETWORK,
            A.VIEW_ORDER,
            A.VIEW_PATIENT_IDENTITY,
            A.ENROLL,
            A.BOOK,
            A.OPEN_SLOTS,
            A.COLLECT,
            A.HAND_OFF,
            A.MANUFACTURE,
            A.INFUSE,
            A.WITHDRAW,
        }
    ),
    Role.COURIER: frozenset({A.VIEW_NETWORK, A.VIEW_ORDER, A.HAND_OFF}),
    Role.QA_REVIEWER: frozenset({A.VIEW_NETWORK, A.VIEW_ORDER, A.REJECT, A.VIEW_LEDGER}),
    Role.QUALIFIED_PERSON: frozenset({A.VIEW_NETWORK, A.VIEW_ORDER, A.REJECT, A.RELEASE, A.VIEW_LEDGER}),
    Role.NETWORK_ADMIN: frozenset(
        {A.VIEW_NETWORK, A.VIEW_ORDER, A.OPEN_SLOTS, A.VIEW_LEDGER, A.MANAGE_NETWORK, A.MANAGE_USERS}
    ),
    Role.AUDITOR: frozenset({A.VIEW_NETWORK, A.VIEW_ORDER, A.VIEW_LEDGER}),
}

# Roles whose reach is the whole network: couriers carry between nodes, qualified persons release remotely,
# administrators and auditors oversee everything.
NETWORK_ROLES: frozenset[Role] = frozenset({Role.COURIER, Role.QUALIFIED_PERSON, Role.NETWORK_ADMIN, Role.AUDITOR})

# Actions about shared, non-patient information that any role holding them may do wherever it sits.
UNSCOPED_ACTIONS: frozenset[Action] = frozenset({A.VIEW_NETWORK})


@dataclass(frozen=True)
class Principal:
    """An authenticated user as the domain sees it."""

    username: str
    full_name: str
    node: str
    roles: frozenset[Role]


def role_for(principal: Principal, action: Action, nodes: Collection[str] | None) -> Role:
    """The role under which ``principal`` may do ``action`` on something involving ``nodes``.

    ``nodes`` None means a network-level thing (the network itself, the ledger as a whole). Raises Forbidden.
    """
    for role in sorted(principal.roles):
        if action not in PERMISSIONS[role]:
            continue
        if role in NETWORK_ROLES or action in UNSCOPED_ACTIONS:
            return role
        if nodes is not None and principal.node in nodes:
            return role
    raise Forbidden(f"user '{principal.username}' may not {action.value.replace('_', ' ')} here")


def may(principal: Principal, action: Action, nodes: Collection[str] | None) -> bool:
    try:
        role_for(principal, action, nodes)
    except Forbidden:
        return False
    return True


# Whoever runs administrative commands on the store's own machine (the CLI): shell access to the database
# already grants everything a network administrator can do, so the CLI acts under this principal.
SYSTEM = Principal("system", "CellRail command line", "network", frozenset({Role.NETWORK_ADMIN}))
