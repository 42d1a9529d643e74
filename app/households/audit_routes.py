"""``GET /api/households/{householdId}/audit``: the household's chain, newest first (owners)."""

from __future__ import annotations

from typing import Any

from app.db import db
from app.gateway.contracts import endpoint
from app.gateway.pagination import decode_seq_cursor, encode_seq_cursor
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
    return encode_seq_cursor(_CURSOR_PREFIX, seq)


def decode_cursor(cursor: str) -> int:
    return decode_seq_cursor(_CURSOR_PREFIX, cursor)


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


