"""What the orchestrator reports: cart ready, purchase failed, bridge events and artifacts.

Callbacks are bound to the intent's actor (``actorUserId`` mismatch → 403) and move the intent
and its request by conditional updates, in one transaction with the audit event.
"""

from __future__ import annotations

from sqlalchemy import select

from app import audit
from app.buyflow import clock
from app.buyflow.callback_schemas import ArtifactIn, Cart, CartReadyIn, EventIn, FailedIn
from app.buyflow.intents import ACTIVE, expire_and_raise, is_expired
from app.buyflow.schemas import IntentStatusOut
from app.buyflow.transitions import transition, transition_or_conflict
from app.db import db
from app.gateway.errors import Conflict, Forbidden, Gone, NotFound, Unprocessable
from app.gateway.tenancy import lock_household
from app.models import (
    IntentArtifact,
    IntentEvent,
    IntentStatus,
    PurchaseIntent,
    PurchaseRequest,
    RequestStatus,
)

INTENT_NOT_FOUND = "Purchase intent not found"


def _intent(intent_id: str) -> PurchaseIntent:
    """The intent, read after its household was locked (the lock order of
    app.gateway.tenancy): a callback during the household's deletion waits, then finds no
    intent (404)."""
    household_id = db.session.scalar(
        select(PurchaseIntent.household_id).where(PurchaseIntent.id == intent_id))
    found = db.session.get(PurchaseIntent, intent_id) if lock_household(household_id) else None
    if found is None:
        raise NotFound(INTENT_NOT_FOUND)
    return found


def _bound(intent_id: str, actor_user_id: str) -> PurchaseIntent:
    intent = _intent(intent_id)
    if intent.actor_user_id != actor_user_id:
        raise Forbidden("actorUserId is not this intent's actor")
    return intent


def _refuse_expired(intent: PurchaseIntent) -> None:
    """410 for an intent past its TTL; the first report after the TTL marks it EXPIRED (and its
    request FAILED), exactly as a late confirmation does."""
    if intent.status == IntentStatus.EXPIRED:
        raise Gone("The purchase intent has expired")
    if intent.status in ACTIVE and is_expired(intent):
        expire_and_raise(intent)


def lines_total(cart: Cart) -> int:
    """What the cart's lines add up to: the sum of ``quantity × amountMinor`` (a unit price)."""
    return sum(line.quantity * line.amount_minor for line in cart.items)


def cart_ready(intent_id: str, body: CartReadyIn) -> IntentStatusOut:
    """PURCHASING → CART_READY. The cart's total must be the sum of its lines, and may not exceed
    the approved amount or change currency."""
    intent = _bound(intent_id, body.actor_user_id)
    _refuse_expired(intent)
    # The state first: a late cart for a finished intent is 409.
    if intent.status != IntentStatus.PURCHASING:
        raise Conflict("The intent is not waiting for a cart")
    summed = lines_total(body.cart)
    if summed != body.cart.total_minor:
        # A self-declared total is not trusted: what is approved is what the lines cost.
        raise Unprocessable("The cart's totalMinor is not the sum of quantity × amountMinor "
                            "over its lines", totalMinor=body.cart.total_minor,
                            linesTotalMinor=summed)
    request = db.session.get(PurchaseRequest, intent.request_id)
    assert request is not None  # noqa: S101 - foreign key
    if body.cart.currency != request.currency or body.cart.total_minor > request.amount_minor:
        raise Unprocessable("The cart does not match the approved amount and currency",
                            approvedMinor=request.amount_minor, currency=request.currency)
    now = clock.now()
    if not transition(PurchaseIntent, intent.id, (IntentStatus.PURCHASING,),
                      IntentStatus.CART_READY, where=[PurchaseIntent.expires_at > now],
                      cart=body.cart.model_dump(mode="json", by_alias=True)):
        raise Conflict("The intent is not waiting for a cart")
    transition_or_conflict(PurchaseRequest, request.id, (RequestStatus.PURCHASING,),
                           RequestStatus.CART_READY, what="Purchase request")
    audit.record("intent.cart_ready", household_id=intent.household_id,
                 resource=f"intent:{intent.id}", principal_id=intent.actor_user_id,
                 details={"totalMinor": body.cart.total_minor, "currency": body.cart.currency})
    return IntentStatusOut(intent_id=intent.id, request_id=request.id,
                           status=IntentStatus.CART_READY)


def failed(intent_id: str, body: FailedIn) -> IntentStatusOut:
    """PURCHASING or CART_READY → FAILED (the request may then start a new intent). An intent
    past its TTL is EXPIRED instead (410): the timeout, not the report, ended it."""
    intent = _bound(intent_id, body.actor_user_id)
    _refuse_expired(intent)
    if not transition(PurchaseIntent, intent.id, ACTIVE, IntentStatus.FAILED,
                      where=[PurchaseIntent.expires_at > clock.now()], failure_reason=body.reason):
        raise Conflict("The intent is not in progress")
    transition_or_conflict(PurchaseRequest, intent.request_id, ACTIVE, RequestStatus.FAILED,
                           what="Purchase request")
    audit.record("intent.failed", household_id=intent.household_id,
                 resource=f"intent:{intent.id}", principal_id=intent.actor_user_id,
                 details={"reason": body.reason[:200]})
    return IntentStatusOut(intent_id=intent.id, request_id=intent.request_id,
                           status=IntentStatus.FAILED)


def record_event(body: EventIn) -> IntentEvent:
    intent = _intent(body.intent_id)
    event = IntentEvent(household_id=intent.household_id, intent_id=intent.id, type=body.type,
                        data=body.data, received_at=clock.now())
    db.session.add(event)
    return event


def record_artifact(body: ArtifactIn) -> IntentArtifact:
    intent = _intent(body.intent_id)
    artifact = IntentArtifact(household_id=intent.household_id, intent_id=intent.id,
                              kind=body.kind, uri=body.uri, sha256=body.sha256)
    db.session.add(artifact)
    db.session.flush()
    audit.record("intent.artifact", household_id=intent.household_id,
                 resource=f"intent:{intent.id}",
                 details={"artifactId": artifact.id, "kind": body.kind, "sha256": body.sha256})
    return artifact
