"""The buy-flow's one table of state transitions, for requests and for intents.

``app.buyflow.transitions`` refuses a move this table does not list (a programming error, not a
client's), and the OpenAPI descriptions of the ``status`` fields are generated from it: the code
and the documentation read the same table. A state with no way out is final.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from app.models import IntentStatus, PurchaseIntent, PurchaseRequest, RequestStatus

Table = Mapping[StrEnum, tuple[StrEnum, ...]]

_R, _I = RequestStatus, IntentStatus

REQUEST_TRANSITIONS: Table = {
    _R.SUBMITTED: (_R.APPROVED, _R.REJECTED, _R.CANCELLED),
    _R.APPROVED: (_R.PURCHASING, _R.CANCELLED),
    _R.PURCHASING: (_R.CART_READY, _R.FAILED),
    _R.CART_READY: (_R.COMPLETED, _R.FAILED),
    _R.COMPLETED: (),
    _R.REJECTED: (),
    _R.CANCELLED: (),
    _R.FAILED: (_R.PURCHASING, _R.CANCELLED),  # a failed or timed-out purchase may be retried
}

INTENT_TRANSITIONS: Table = {
    _I.PURCHASING: (_I.CART_READY, _I.FAILED, _I.EXPIRED),
    _I.CART_READY: (_I.COMPLETED, _I.FAILED, _I.EXPIRED),
    _I.COMPLETED: (),
    _I.FAILED: (),
    _I.EXPIRED: (),
}

TABLES: Mapping[type[PurchaseRequest] | type[PurchaseIntent], Table] = {
    PurchaseRequest: REQUEST_TRANSITIONS,
    PurchaseIntent: INTENT_TRANSITIONS,
}

INITIAL: Mapping[type[PurchaseRequest] | type[PurchaseIntent], StrEnum] = {
    PurchaseRequest: _R.SUBMITTED,
    PurchaseIntent: _I.PURCHASING,
}


def sources(table: Table, target: StrEnum) -> tuple[StrEnum, ...]:
    """The states ``target`` may be reached from, in the table's order."""
    return tuple(state for state, targets in table.items() if target in targets)


def refuse_unlisted(table: Table, expected: Iterable[str], new_status: str) -> None:
    """Raise unless every ``expected → new_status`` is in ``table``."""
    unlisted = [state for state in expected
                if state not in table or new_status not in table[state]]  # type: ignore[index]
    if unlisted:
        raise ValueError(f"transition {unlisted} → {new_status} is not in the state table")


def describe(table: Table, initial: StrEnum) -> str:
    """The table in words, for the OpenAPI description of a ``status`` field."""
    moves = "; ".join(f"{state} → {' | '.join(targets)}"
                      for state, targets in table.items() if targets)
    final = ", ".join(state for state, targets in table.items() if not targets)
    return f"Starts {initial}. Allowed transitions: {moves}. Final: {final}."


REQUEST_STATUS_DESCRIPTION = describe(REQUEST_TRANSITIONS, INITIAL[PurchaseRequest])
INTENT_STATUS_DESCRIPTION = describe(INTENT_TRANSITIONS, INITIAL[PurchaseIntent])
