"""``GET /api/households/{householdId}/audit``: the household's chain, newest first (owners);
``GET …/audit/{eventId}/proof``: an event's inclusion proof against a signed checkpoint (owners
for any event of the household, members for events whose principal they are);
``GET /.well-known/hearthgate-audit-key``: the public key that checks the proofs (PEM)."""

from __future__ import annotations

import math
from typing import Any

from flask import Response, current_app
from pydantic import Field
from sqlalchemy import bindparam, select

from app import audit
from app.audit.proofs import NotYetCheckpointed, build_proof, find_event
from app.audit.proofs import event_id as public_event_id
from app.audit.signing import public_pem, signer
from app.auth import wellknown
from app.fastread import Read
from app.gateway.contracts import endpoint
from app.gateway.errors import Conflict, Forbidden, NotFound
from app.gateway.pagination import decode_seq_cursor, encode_seq_cursor
from app.gateway.schemas import PageQuery, Schema, Timestamp, Trusted
from app.gateway.tenancy import HouseholdScope
from app.households import bp
from app.models import AuditEvent, HouseholdRole

_CURSOR_PREFIX = "audit:"


class AuditEventOut(Schema):
    id: str
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
    roles=[HouseholdRole.OWNER], summary="The household's audit events, newest first",
    tags=["households"],
)
def list_audit_events(household: HouseholdScope, query: PageQuery) -> Trusted:
    params: dict[str, Any] = {"household_id": household.id, "page_limit": query.limit + 1}
    read = _EVENTS[0]
    if query.cursor is not None:
        params["before"], read = decode_cursor(query.cursor), _EVENTS[1]
    rows = read.rows(params)
    page = rows[: query.limit]
    next_cursor = encode_cursor(page[-1]["seq"]) if len(rows) > query.limit else None
    for row in page:
        row["id"] = public_event_id(row["hash"])
    return Trusted({"items": page, "next_cursor": next_cursor})


# The chain's events, newest first, from the start or before a cursor (app.fastread).
_EVENTS_OF = (
    select(*(getattr(AuditEvent, c) for c in AuditEventOut.model_fields if c != "id"))
    .where(AuditEvent.household_id == bindparam("household_id"),
           AuditEvent.chain == bindparam("household_id"))
)
_EVENTS = tuple(
    Read(statement.order_by(AuditEvent.seq.desc()).limit(bindparam("page_limit")))
    for statement in (_EVENTS_OF, _EVENTS_OF.where(AuditEvent.seq < bindparam("before"))))


class InclusionProofOut(Schema):
    event_id: str
    chain: str
    leaf_index: int
    tree_size: int
    leaf_hash: str
    inclusion_path: list[str] = Field(default_factory=list)
    checkpoint: str


def _retry_after() -> int:
    interval = int(current_app.config.get("AUDIT_CHECKPOINT_INTERVAL_SECONDS") or 0)
    return max(1, math.ceil(interval)) if interval else 60


@bp.get("/households/<household_id>/audit/<event_id>/proof")
@endpoint(
    permissions=["audit:read"], household=True, response=InclusionProofOut, errors=[409],
    summary="An audit event's RFC 9162 inclusion proof against a signed checkpoint",
    tags=["households"],
)
def audit_event_proof(household: HouseholdScope, event_id: str) -> InclusionProofOut:
    event = find_event(event_id)
    if event is None or event["chain"] != household.id:
        raise NotFound("Audit event not found")
    if household.role != HouseholdRole.OWNER and event["principal_id"] != household.user_id:
        audit.record_denial(
            "audit.proof.denied", household_id=household.id,
            resource="GET /api/households/<household_id>/audit/<event_id>/proof",
            details={"role": household.role, "reason": "not the event's principal"},
        )
        raise Forbidden("Members may prove only their own events")
    try:
        proof = build_proof(event, _retry_after())
    except NotYetCheckpointed as pending:
        raise Conflict("The event is newer than the newest signed checkpoint",
                       retryAfter=pending.retry_after,
                       headers={"Retry-After": str(pending.retry_after)}) from None
    return InclusionProofOut.model_validate(proof)


@wellknown.get("/.well-known/hearthgate-audit-key")
def audit_public_key() -> Response:
    """The audit signing key's public half (PEM): checkpoints and proofs verify with it."""
    response = Response(public_pem(signer().public_key), mimetype="application/x-pem-file")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


