"""Purchase intents: creation (with the one-time confirmation token), reading, expiry and the
exactly-once checkout confirmation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, select

from app import audit
from app.buyflow import clock
from app.buyflow.purchase_requests import read_request, visible_request
from app.buyflow.schemas import CheckoutOut, ConfirmIn, IntentCreated
from app.buyflow.states import INTENT_TRANSITIONS, REQUEST_TRANSITIONS, sources
from app.buyflow.tokens import new_token, token_hash, token_matches
from app.buyflow.transitions import transition, transition_or_conflict
from app.db import db, new_id
from app.fastread import Read
from app.gateway.errors import Conflict, Forbidden, Gone, NotFound
from app.gateway.tenancy import HouseholdScope
from app.models import (
    IntentArtifact,
    IntentEvent,
    IntentStatus,
    PurchaseIntent,
    PurchaseRequest,
    RequestStatus,
    WebhookEvent,
)

# In progress: the states a purchase fails from, the same two for an intent and its request.
ACTIVE = sources(INTENT_TRANSITIONS, IntentStatus.FAILED)
RESTARTABLE = sources(REQUEST_TRANSITIONS, RequestStatus.PURCHASING)
INTENT_NOT_FOUND = "Purchase intent not found"
EVENTS_SHOWN = 100


def is_expired(intent: PurchaseIntent) -> bool:
    return clock.now() >= intent.expires_at


def expire_and_raise(intent: PurchaseIntent) -> None:
    """Mark a timed-out intent EXPIRED (its request FAILED) and answer 410.

    The request's transaction has only read so far (plus, perhaps, an idempotency key that must
    not outlive this error), so it is rolled back and the expiry committed on its own.
    """
    ids = (intent.id, intent.request_id, intent.household_id, intent.actor_user_id)
    db.session.rollback()
    if _expire(*ids, clock.now()):
        db.session.commit()
    raise Gone("The purchase intent and its confirmation token have expired")


def _expire(intent_id: str, request_id: str, household_id: str, actor: str, now: datetime) -> bool:
    """The one definition of expiry: an active intent past its TTL becomes EXPIRED and its
    request FAILED, audited. ``False`` when another call expired or finished it first."""
    if not transition(
        PurchaseIntent, intent_id, ACTIVE, IntentStatus.EXPIRED,
        where=[PurchaseIntent.expires_at <= now],
    ):
        return False
    transition(PurchaseRequest, request_id, ACTIVE, RequestStatus.FAILED)
    audit.record("intent.expired", household_id=household_id, resource=f"intent:{intent_id}",
                 principal_id=actor)
    return True


def create(household: HouseholdScope, request_id: str) -> IntentCreated:
    """A new intent for an APPROVED request, or to retry a FAILED or timed-out purchase."""
    found = household.get(PurchaseRequest, request_id, "Purchase request")
    now = clock.now()
    from_status = found.status
    if found.status in ACTIVE:
        current = db.session.scalars(
            select(PurchaseIntent)
            .where(PurchaseIntent.request_id == found.id, PurchaseIntent.status.in_(ACTIVE))
            .order_by(PurchaseIntent.created_at.desc())
            .limit(1)
        ).first()
        if current is None or now < current.expires_at:
            raise Conflict("A purchase is already in progress for this request")
        if not _expire(current.id, found.id, household.id, current.actor_user_id, now):
            raise Conflict("Purchase intent changed meanwhile")
        # As _expire left it: a timed-out purchase is a failed one.
        from_status = RequestStatus.FAILED
    elif found.status not in RESTARTABLE:
        raise Conflict(f"A {found.status} request cannot start a purchase")
    transition_or_conflict(
        PurchaseRequest, found.id, (from_status,), RequestStatus.PURCHASING, what="Purchase request"
    )
    token = new_token()
    intent_id = new_id("pi")
    expires_at = now + timedelta(seconds=current_app.config["CHECKOUT_CONFIRMATION_TTL_SECONDS"])
    household.add(
        PurchaseIntent(
            id=intent_id, request_id=found.id, actor_user_id=household.user_id,
            status=IntentStatus.PURCHASING,
            token_hash=token_hash(intent_id, household.user_id, token),
            expires_at=expires_at,
        )
    )
    db.session.flush()
    audit.record("intent.created", household_id=household.id, resource=f"intent:{intent_id}",
                 details={"requestId": found.id, "expiresAt": expires_at.isoformat()})
    return IntentCreated(intent_id=intent_id, confirmation_token=token, expires_at=expires_at)


def _intent_of(household: HouseholdScope, request_id: str, intent_id: str) -> PurchaseIntent:
    found = visible_request(household, request_id)
    intent = household.get(PurchaseIntent, intent_id, "Purchase intent")
    if intent.request_id != found.id:
        raise NotFound(INTENT_NOT_FOUND)
    return intent


_INTENT_COLUMNS = ("id", "request_id", "household_id", "actor_user_id", "status", "expires_at",
                   "cart", "failure_reason", "completed_at", "created_at", "updated_at")
_EVENTS = Read(
    select(IntentEvent.id, IntentEvent.type, IntentEvent.data, IntentEvent.received_at)
    .where(IntentEvent.intent_id == bindparam("intent_id"))
    .order_by(IntentEvent.received_at.desc()).limit(EVENTS_SHOWN))
_WEBHOOK_EVENTS = Read(
    select(WebhookEvent.id, WebhookEvent.provider, WebhookEvent.type, WebhookEvent.payload,
           WebhookEvent.received_at)
    .where(WebhookEvent.intent_id == bindparam("intent_id"))
    .order_by(WebhookEvent.received_at.desc()).limit(EVENTS_SHOWN))
_ARTIFACTS = Read(
    select(IntentArtifact.id, IntentArtifact.intent_id, IntentArtifact.kind, IntentArtifact.uri,
           IntentArtifact.sha256, IntentArtifact.created_at)
    .where(IntentArtifact.intent_id == bindparam("intent_id"))
    .order_by(IntentArtifact.created_at))


def read(household: HouseholdScope, request_id: str, intent_id: str) -> dict[str, Any]:
    """Status, cart, orchestrator and webhook events, artifacts; never the token nor its hash."""
    found = read_request(household, request_id)
    intent = household.row(PurchaseIntent, intent_id, "Purchase intent", columns=_INTENT_COLUMNS)
    if intent["request_id"] != found["id"]:
        raise NotFound(INTENT_NOT_FOUND)
    which = {"intent_id": intent["id"]}
    events: list[dict[str, Any]] = [
        {**e, "source": "orchestrator"} for e in _EVENTS.rows(which)]
    events += [
        {"id": w["id"], "source": w["provider"], "type": w["type"],
         "data": (w["payload"] or {}).get("data") or {}, "received_at": w["received_at"]}
        for w in _WEBHOOK_EVENTS.rows(which)
    ]
    events.sort(key=lambda e: e["received_at"])
    return {**intent, "events": events, "artifacts": _ARTIFACTS.rows(which)}


def confirm(household: HouseholdScope, request_id: str, body: ConfirmIn) -> CheckoutOut:
    """CART_READY → COMPLETED, exactly once; the order of checks decides the status code."""
    intent = _intent_of(household, request_id, body.intent_id)
    resource = f"intent:{intent.id}"
    if intent.actor_user_id != household.user_id:
        audit.record_denial("checkout.confirm", household_id=household.id, resource=resource,
                            details={"reason": "not the intent's actor"})
        raise Forbidden("Only the intent's actor may confirm this checkout")
    if not token_matches(intent.token_hash, intent.id, intent.actor_user_id,
                         body.confirmation_token):
        audit.record_denial("checkout.confirm", household_id=household.id, resource=resource,
                            details={"reason": "wrong confirmation token"})
        raise Forbidden("Invalid confirmation token")
    if intent.status == IntentStatus.EXPIRED:
        raise Gone("The purchase intent and its confirmation token have expired")
    if intent.status in ACTIVE and is_expired(intent):
        expire_and_raise(intent)
    now = clock.now()
    if not transition(PurchaseIntent, intent.id, (IntentStatus.CART_READY,), IntentStatus.COMPLETED,
                      where=[PurchaseIntent.expires_at > now], completed_at=now):
        raise Conflict("This checkout cannot be confirmed now")
    transition_or_conflict(PurchaseRequest, intent.request_id, (RequestStatus.CART_READY,),
                           RequestStatus.COMPLETED,
                           what="Purchase request")
    audit.record("checkout.completed", household_id=household.id, resource=resource,
                 details={"requestId": intent.request_id})
    return CheckoutOut(intent_id=intent.id, request_id=intent.request_id,
                       status=IntentStatus.COMPLETED,
                       completed_at=now)
