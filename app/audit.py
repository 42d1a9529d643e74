"""The audit trail: hash-chained events, written in the caller's transaction.

One chain per household plus the system chain. Each entry holds its sequence number, the previous
entry's hash and its own hash over a canonical serialization; ``(chain, seq)`` is unique, so
concurrent appends cannot fork a chain (the loser retries on the new head).

``record`` adds the event to the current request's session: it commits with the change it
records, or not at all. ``record_denial`` is for refusals, whose request transaction is rolled
back: it commits the event on a session of its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import current_app, g, has_request_context
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import db, utcnow
from app.models.audit import SYSTEM_CHAIN, AuditEvent

GENESIS = "0" * 64
APPEND_ATTEMPTS = 20
_SENSITIVE_KEYS = (
    "token", "secret", "password", "authorization", "apikey", "privatekey", "signature",
)


def redact_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Drop values under keys that name a credential, recursively."""
    if not details:
        return {}
    clean: dict[str, Any] = {}
    for key, value in details.items():
        if any(word in key.lower() for word in _SENSITIVE_KEYS):
            clean[key] = "[REDACTED]"
        elif isinstance(value, Mapping):
            clean[key] = redact_details(value)
        else:
            clean[key] = value
    return clean


def canonical(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def entry_hash(event: AuditEvent) -> str:
    return hashlib.sha256(canonical(hashed_fields(event))).hexdigest()


def hashed_fields(event: AuditEvent) -> dict[str, Any]:
    created: datetime = event.created_at
    return {
        "chain": event.chain,
        "seq": event.seq,
        "householdId": event.household_id,
        "principalId": event.principal_id,
        "action": event.action,
        "resource": event.resource,
        "decision": event.decision,
        "correlationId": event.correlation_id,
        "details": event.details,
        "createdAt": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "prevHash": event.prev_hash,
    }


def _append(session: Session, event: AuditEvent) -> AuditEvent:
    """Link ``event`` to its chain's head and add it; retries when a concurrent writer wins."""
    for _ in range(APPEND_ATTEMPTS):
        head = session.execute(
            select(AuditEvent.seq, AuditEvent.hash)
            .where(AuditEvent.chain == event.chain)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).first()
        event.seq = (head[0] + 1) if head else 1
        event.prev_hash = head[1] if head else GENESIS
        event.hash = entry_hash(event)
        try:
            with session.begin_nested():
                session.add(event)
            return event
        except IntegrityError:
            if event in session:
                session.expunge(event)
    raise RuntimeError(f"audit chain {event.chain} is contended; event not written")


def _new_event(
    action: str, *, household_id: str | None, resource: str | None, decision: str,
    details: Mapping[str, Any] | None, principal_id: str | None,
) -> AuditEvent:
    if principal_id is None and has_request_context():
        principal = g.get("principal")
        principal_id = principal.user_id if principal is not None else None
    return AuditEvent(
        chain=household_id or SYSTEM_CHAIN,
        household_id=household_id,
        principal_id=principal_id,
        action=action,
        resource=resource,
        decision=decision,
        correlation_id=g.get("request_id") if has_request_context() else None,
        details=redact_details(details),
        created_at=utcnow(),
    )


def record(
    action: str,
    *,
    household_id: str | None = None,
    resource: str | None = None,
    decision: str = "allowed",
    details: Mapping[str, Any] | None = None,
    principal_id: str | None = None,
    session: Session | None = None,
) -> AuditEvent:
    """Append an event in the current transaction (the request's session by default)."""
    event = _new_event(action, household_id=household_id, resource=resource, decision=decision,
                       details=details, principal_id=principal_id)
    return _append(session or db.session, event)


def record_denial(
    action: str,
    *,
    household_id: str | None = None,
    resource: str | None = None,
    details: Mapping[str, Any] | None = None,
    principal_id: str | None = None,
) -> None:
    """Append and commit a ``denied`` event on its own session (the request's will roll back)."""
    factory = current_app.extensions["hearthgate.db"]
    with factory() as session:
        event = _new_event(action, household_id=household_id, resource=resource,
                           decision="denied", details=details, principal_id=principal_id)
        _append(session, event)
        session.commit()


def erase_household(household_id: str, session: Session | None = None) -> AuditEvent | None:
    """Delete a household's chain and append to the system chain an erasure record that carries
    the deleted chain's final head hash, so the erasure itself is provable. Same transaction."""
    from sqlalchemy import delete

    session = session or db.session
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.chain == household_id)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    session.execute(delete(AuditEvent).where(AuditEvent.chain == household_id))
    return record(
        "household.erased",
        resource=f"household:{household_id}",
        details={
            "erasedHouseholdId": household_id,
            "finalSeq": head[0] if head else 0,
            "finalHeadHash": head[1] if head else GENESIS,
        },
        session=session,
    )
