"""A patient's order and its lifecycle, vein to vein, as an explicit state machine.

The table below is the whole lifecycle; nothing else moves an order. Every move is recorded as a custody event
in the same transaction, so the ledger is the history and the order row is only its current view.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from cellrail.kernel.errors import IllegalTransition


class OrderState(StrEnum):
    ENROLLED = "enrolled"
    APHERESIS_SCHEDULED = "apheresis_scheduled"
    COLLECTED = "collected"
    SHIPPED_TO_MANUFACTURING = "shipped_to_manufacturing"
    RECEIVED_AT_MANUFACTURING = "received_at_manufacturing"
    MANUFACTURING = "manufacturing"
    QC_PENDING = "qc_pending"
    RELEASED = "released"
    REJECTED = "rejected"
    SHIPPED_TO_SITE = "shipped_to_site"
    RECEIVED_AT_SITE = "received_at_site"
    INFUSED = "infused"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"


S = OrderState
TERMINAL: frozenset[OrderState] = frozenset({S.INFUSED, S.CANCELLED, S.WITHDRAWN})

# Forward steps. Withdrawal (the patient leaves the pathway) is allowed from every open state and added below.
_FORWARD: dict[OrderState, tuple[OrderState, ...]] = {
    S.ENROLLED: (S.APHERESIS_SCHEDULED,),
    S.APHERESIS_SCHEDULED: (S.COLLECTED,),
    S.COLLECTED: (S.SHIPPED_TO_MANUFACTURING,),
    S.SHIPPED_TO_MANUFACTURING: (S.RECEIVED_AT_MANUFACTURING,),
    S.RECEIVED_AT_MANUFACTURING: (S.MANUFACTURING,),
    S.MANUFACTURING: (S.QC_PENDING,),
    S.QC_PENDING: (S.RELEASED, S.REJECTED),
    S.REJECTED: (S.MANUFACTURING, S.CANCELLED),  # remanufacture from retained cells, or give up
    S.RELEASED: (S.SHIPPED_TO_SITE,),
    S.SHIPPED_TO_SITE: (S.RECEIVED_AT_SITE,),
    S.RECEIVED_AT_SITE: (S.INFUSED,),
}

TRANSITIONS: dict[OrderState, tuple[OrderState, ...]] = {
    state: (*_FORWARD.get(state, ()), *(() if state in TERMINAL else (S.WITHDRAWN,))) for state in OrderState
}


def allowed_next(state: OrderState) -> tuple[OrderState, ...]:
    return TRANSITIONS[state]


class LabelKind(StrEnum):
    """Which unit's label a hand-off scan must show."""

    COLLECTION = "collection"
    PRODUCT = "product"


# The hand-offs at which a label must be scanned and compared with the order, and which unit it must show.
SCAN_REQUIRED: dict[OrderState, LabelKind] = {
    S.SHIPPED_TO_MANUFACTURING: LabelKind.COLLECTION,
    S.RECEIVED_AT_MANUFACTURING: LabelKind.COLLECTION,
    S.MANUFACTURING: LabelKind.COLLECTION,
    S.SHIPPED_TO_SITE: LabelKind.PRODUCT,
    S.RECEIVED_AT_SITE: LabelKind.PRODUCT,
    S.INFUSED: LabelKind.PRODUCT,
}


# Which bag is in custody, by state: the collection until a product exists, then the product; after a rejection
# the retained collection again, for remanufacture.
_PRODUCT_IN_CUSTODY = frozenset({S.QC_PENDING, S.RELEASED, S.SHIPPED_TO_SITE, S.RECEIVED_AT_SITE, S.INFUSED})


def custody_label(state: OrderState) -> LabelKind:
    """The label a custody checkpoint must show for an order in ``state``."""
    return LabelKind.PRODUCT if state in _PRODUCT_IN_CUSTODY else LabelKind.COLLECTION


@dataclass(frozen=True)
class Order:
    """One patient's therapy. Identified by its ISBT 128 Chain of Identity id; holds no patient data."""

    coi: str
    patient_key: str
    treatment_site: str
    state: OrderState = OrderState.ENROLLED
    manufacturing_node: str | None = None
    collection_din: str | None = None
    product_din: str | None = None
    manufacturing_attempts: int = 0

    @property
    def nodes(self) -> frozenset[str]:
        """The nodes that take part in this order and so may see it."""
        return frozenset(n for n in (self.treatment_site, self.manufacturing_node) if n is not None)

    @property
    def is_open(self) -> bool:
        return self.state not in TERMINAL

    def move_to(self, target: OrderState) -> Order:
        """The same order in ``target``; refused with the allowed next steps if the lifecycle forbids it."""
        if target not in TRANSITIONS[self.state]:
            raise IllegalTransition(
                self.coi, self.state.value, target.value, [s.value for s in allowed_next(self.state)]
            )
        attempts = self.manufacturing_attempts + (1 if target is S.MANUFACTURING else 0)
        return replace(self, state=target, manufacturing_attempts=attempts)

    def expected_label(self, kind: LabelKind) -> str | None:
        return self.collection_din if kind is LabelKind.COLLECTION else self.product_din


def label_mismatch(order: Order, target: OrderState, scanned_coi: str, scanned_din: str) -> str | None:
    """The field that does not match (``coi`` or ``din``) when moving ``order`` to ``target``, else None.

    Both arguments are canonical identifier strings (code + check character), already parsed.
    """
    if scanned_coi != order.coi:
        return "coi"
    kind = SCAN_REQUIRED.get(target)
    if kind is not None and scanned_din != order.expected_label(kind):
        return "din"
    return None
