"""A blueprint used only by the audit tests: a buy-flow transition audited by an after guard."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import update

from app import audit
from app.db import db, utcnow
from app.gateway.contracts import Call, Reply, endpoint
from app.gateway.errors import Conflict
from app.gateway.tenancy import HouseholdScope
from app.models import PurchaseRequest

bp = Blueprint("audit_sample", __name__, url_prefix="/api/audit-sample")


def audit_transition(call: Call) -> None:
    assert call.household is not None  # noqa: S101 - a household route
    audit.record("request.approved", household_id=call.household.id,
                 resource=f"request:{call.path['request_id']}",
                 details={"from": "SUBMITTED", "to": "APPROVED"})


@bp.post("/households/<household_id>/requests/<request_id>/approve")
@endpoint(permissions=["requests:approve"], household=True, roles=["owner", "adult"],
          after=[audit_transition])
def approve(household: HouseholdScope, request_id: str) -> Reply:
    household.get(PurchaseRequest, request_id, "Request")
    changed = db.session.execute(
        update(PurchaseRequest)
        .where(PurchaseRequest.id == request_id, PurchaseRequest.household_id == household.id,
               PurchaseRequest.status == "SUBMITTED")
        .values(status="APPROVED", decided_by=household.user_id, decided_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        raise Conflict("Request is not SUBMITTED")
    return Reply(status=204)
