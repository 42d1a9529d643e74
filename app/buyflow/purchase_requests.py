"""Purchase requests: creation, reading and the decisions (approve, reject, cancel).

Every decision is one conditional update (app.buyflow.transitions) in the same transaction as its
audit event.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from app import audit
from app.buyflow import clock
from app.buyflow.schemas import RequestIn, RequestListQuery, RequestOut
from app.buyflow.states import REQUEST_TRANSITIONS, sources
from app.buyflow.transitions import transition_or_conflict
from app.db import db
from app.gateway.contracts import Call
from app.gateway.errors import Forbidden, NotFound
from app.gateway.tenancy import HouseholdScope
from app.models import HouseholdRole, Item, PurchaseRequest, RequestStatus

DECIDERS = (HouseholdRole.OWNER, HouseholdRole.ADULT)
CANCELLABLE = sources(REQUEST_TRANSITIONS, RequestStatus.CANCELLED)
REQUEST_NOT_FOUND = "Purchase request not found"


REQUEST_COLUMNS = tuple(RequestOut.model_fields)  # what a reader sees of a request


def _hidden(household: HouseholdScope, requested_by: str | None) -> bool:
    """Children see only their own requests."""
    return household.role not in DECIDERS and requested_by != household.user_id


def visible_request(household: HouseholdScope, request_id: str) -> PurchaseRequest:
    """The request, if the caller may see it (else 404), to change it."""
    found = household.get(PurchaseRequest, request_id, "Purchase request")
    if _hidden(household, found.requested_by):
        raise NotFound(REQUEST_NOT_FOUND)
    return found


def read_request(household: HouseholdScope, request_id: str) -> dict[str, Any]:
    """The request's row, if the caller may see it (else the same 404), to read it."""
    found = household.row(PurchaseRequest, request_id, "Purchase request",
                          columns=REQUEST_COLUMNS)
    if _hidden(household, found["requested_by"]):
        raise NotFound(REQUEST_NOT_FOUND)
    return found


def create(household: HouseholdScope, body: RequestIn) -> PurchaseRequest:
    if body.item_id is not None:
        household.get(Item, body.item_id, "Item", lock="key share")  # not deleted under us
    created = household.add(
        PurchaseRequest(
            title=body.title,
            amount_minor=body.amount_minor,
            currency=body.currency,
            url=str(body.url) if body.url is not None else None,
            item_id=body.item_id,
            note=body.note,
            requested_by=household.user_id,
            status=RequestStatus.SUBMITTED,
        )
    )
    db.session.flush()
    audit.record(
        "request.created", household_id=household.id, resource=f"request:{created.id}",
        details={"amountMinor": created.amount_minor, "currency": created.currency},
    )
    return created


def page(household: HouseholdScope, query: RequestListQuery) -> dict[str, object]:
    """Newest first; children list only their own requests."""
    equal: dict[str, Any] = {}
    if household.role not in DECIDERS:
        equal["requested_by"] = household.user_id
    if query.status is not None:
        equal["status"] = query.status
    rows, next_cursor = household.rows_page(
        PurchaseRequest, equal, limit=query.limit, cursor=query.cursor,
        columns=REQUEST_COLUMNS, newest_first=True)
    return {"items": rows, "next_cursor": next_cursor}


# -- before guards ----------------------------------------------------------------------------


def not_the_requester(call: Call) -> None:
    """Nobody decides on their own request; an owner may when BUYFLOW_ALLOW_OWNER_SELF_APPROVAL."""
    household = call.household
    assert household is not None  # noqa: S101 - household routes only
    found = household.get(PurchaseRequest, call.path["request_id"], "Purchase request")
    if found.requested_by != household.user_id:
        return
    self_approval = current_app.config["BUYFLOW_ALLOW_OWNER_SELF_APPROVAL"]
    if household.role == HouseholdRole.OWNER and self_approval:
        return
    raise Forbidden("A request cannot be decided by its requester")


# -- decisions --------------------------------------------------------------------------------


def decide(household: HouseholdScope, request_id: str, approve: bool) -> PurchaseRequest:
    found = household.get(PurchaseRequest, request_id, "Purchase request")
    new_status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
    transition_or_conflict(
        PurchaseRequest, found.id, (RequestStatus.SUBMITTED,), new_status, what="Purchase request",
        decided_by=household.user_id, decided_at=clock.now(),
    )
    audit.record(
        "request.approved" if approve else "request.rejected",
        household_id=household.id, resource=f"request:{found.id}",
        details={"requestedBy": found.requested_by},
    )
    db.session.refresh(found)
    return found


def cancel(household: HouseholdScope, request_id: str) -> PurchaseRequest:
    """The requester may cancel their own request, an owner or adult any: exactly the requests
    ``visible_request`` shows the caller (anyone else gets its 404)."""
    found = visible_request(household, request_id)
    transition_or_conflict(
        PurchaseRequest, found.id, CANCELLABLE, RequestStatus.CANCELLED, what="Purchase request"
    )
    audit.record(
        "request.cancelled", household_id=household.id, resource=f"request:{found.id}",
        details={"requestedBy": found.requested_by},
    )
    db.session.refresh(found)
    return found
