"""``GET /api/households/{householdId}/audit``: the household's chain, newest first (owners)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from app.db import db
from app.gateway.contracts import endpoint
from app.gateway.errors import ValidationError
from app.gateway.schemas import PageQuery, Schema, Timestamp
from app.gateway.tenancy import HouseholdScope
from app.households import bp
from app.models import AuditEvent

_CURSOR_PREFIX = "audit:"


class AuditEventOut(Schema):
    seq: int
    action: str
    resource: str | None
    decision: str
    principal_id: str | None
    correlation_id: str | None
    details: dict[str, Any]
    created_at: Timestamp
    prev_hash: str
    hash: str


class AuditPage(Schema):
    items: list[AuditEventOut]
    next_cursor: str | None = None


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        seq = int(raw[len(_CURSOR_PREFIX):])
        if seq < 1:
            raise ValueError(raw)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationError("Invalid cursor", details=[
            {"field": "cursor", "message": "not a cursor of this list"}]) from None
    return seq


@bp.get("/households/<household_id>/audit")
@endpoint(
    permissions=["audit:read"], query=PageQuery, response=AuditPage, household=True,
    roles=["owner"], summary="The household's audit events, newest first", tags=["households"],
)
def list_audit_events(household: HouseholdScope, query: PageQuery) -> AuditPage:
    select_events = household.select(AuditEvent).where(AuditEvent.chain == household.id)
    if query.cursor is not None:
        select_events = select_events.where(AuditEvent.seq < decode_cursor(query.cursor))
    rows = db.session.scalars(
        select_events.order_by(AuditEvent.seq.desc()).limit(query.limit + 1)
    ).all()
    page = rows[: query.limit]
    next_cursor = encode_cursor(page[-1].seq) if len(rows) > query.limit else None
    return AuditPage(
        items=[AuditEventOut.model_validate(row) for row in page], next_cursor=next_cursor
    )


