"""Routes of the buyflow blueprint: purchase requests, decisions, intents and checkout.

Thin: each route declares its contract; the rules live in purchase_requests.py and intents.py.
"""

from __future__ import annotations

from app.buyflow import bp, intents, purchase_requests
from app.buyflow.idempotency import idempotent
from app.buyflow.schemas import (
    CheckoutOut,
    ConfirmIn,
    IntentCreated,
    IntentOut,
    RequestIn,
    RequestListQuery,
    RequestOut,
    RequestPage,
)
from app.gateway.contracts import endpoint
from app.gateway.schemas import Trusted
from app.gateway.tenancy import HouseholdScope
from app.models import PurchaseRequest

DECIDERS = purchase_requests.DECIDERS
BASE = "/households/<household_id>/requests"
CONFIRM_RATE_LIMIT = "10/minute"
TAGS = ("buy-flow",)


@bp.post(BASE)
@endpoint(
    permissions=["requests:create"], body=RequestIn, response=RequestOut, status=201,
    household=True, tags=TAGS, errors=(422,),
    summary="Ask for a purchase (SUBMITTED). Any member; itemId must be an item of this "
            "household. Accepts Idempotency-Key.",
)
@idempotent(RequestOut)
def create_request(household: HouseholdScope, body: RequestIn) -> PurchaseRequest:
    return purchase_requests.create(household, body)


@bp.get(BASE)
@endpoint(
    permissions=["requests:read"], query=RequestListQuery, response=RequestPage, household=True,
    tags=TAGS, summary="Purchase requests, newest first (children see only their own)",
)
def list_requests(household: HouseholdScope, query: RequestListQuery) -> Trusted:
    return Trusted(purchase_requests.page(household, query))


@bp.get(BASE + "/<request_id>")
@endpoint(
    permissions=["requests:read"], response=RequestOut, household=True, tags=TAGS,
    summary="One purchase request (children: only their own)",
)
def get_request(household: HouseholdScope, request_id: str) -> Trusted:
    return Trusted(purchase_requests.read_request(household, request_id))


@bp.post(BASE + "/<request_id>/approve")
@endpoint(
    permissions=["requests:approve"], response=RequestOut, household=True, roles=DECIDERS,
    before=[purchase_requests.not_the_requester], tags=TAGS, errors=(409, 422),
    summary="SUBMITTED → APPROVED. Owner or adult, never the requester (an owner may when "
            "BUYFLOW_ALLOW_OWNER_SELF_APPROVAL). Accepts Idempotency-Key.",
)
@idempotent(RequestOut)
def approve_request(household: HouseholdScope, request_id: str) -> PurchaseRequest:
    return purchase_requests.decide(household, request_id, approve=True)


@bp.post(BASE + "/<request_id>/reject")
@endpoint(
    permissions=["requests:approve"], response=RequestOut, household=True, roles=DECIDERS,
    before=[purchase_requests.not_the_requester], tags=TAGS, errors=(409, 422),
    summary="SUBMITTED → REJECTED. Same rule as approve. Accepts Idempotency-Key.",
)
@idempotent(RequestOut)
def reject_request(household: HouseholdScope, request_id: str) -> PurchaseRequest:
    return purchase_requests.decide(household, request_id, approve=False)


@bp.post(BASE + "/<request_id>/cancel")
@endpoint(
    permissions=["requests:create"], response=RequestOut, household=True,
    tags=TAGS, errors=(409, 422),
    summary="SUBMITTED, APPROVED or FAILED → CANCELLED. Who: the requester, or any owner or "
            "adult. A purchase in progress (PURCHASING, CART_READY) cannot be cancelled: it "
            "ends by the orchestrator's failed callback or by expiry. Accepts Idempotency-Key.",
)
@idempotent(RequestOut)
def cancel_request(household: HouseholdScope, request_id: str) -> PurchaseRequest:
    return purchase_requests.cancel(household, request_id)


@bp.post(BASE + "/<request_id>/purchase-intents")
@endpoint(
    permissions=["purchases:create"], response=IntentCreated, status=201, household=True,
    roles=DECIDERS, tags=TAGS, sensitive=True, errors=(409, 422), step_up=True,
    summary="Start a purchase of an APPROVED request (or retry a FAILED or expired one); the "
            "caller becomes the intent's actor. The confirmation token is in this response only. "
            "Idempotency-Key: a replay answers 409 with the intentId (the token is never shown "
            "twice, nor stored in clear).",
)
@idempotent(IntentCreated, replay="conflict", withhold=("confirmationToken",))
def create_intent(household: HouseholdScope, request_id: str) -> IntentCreated:
    return intents.create(household, request_id)


@bp.get(BASE + "/<request_id>/purchase-intents/<intent_id>")
@endpoint(
    permissions=["requests:read"], response=IntentOut, household=True, tags=TAGS,
    summary="An intent's status, cart, events and artifacts (never its token)",
)
def get_intent(household: HouseholdScope, request_id: str, intent_id: str) -> Trusted:
    return Trusted(intents.read(household, request_id, intent_id))


@bp.post(BASE + "/<request_id>/confirm-checkout")
@endpoint(
    permissions=["purchases:confirm"], body=ConfirmIn, response=CheckoutOut, household=True,
    roles=DECIDERS, rate_limit=CONFIRM_RATE_LIMIT, sensitive=True, tags=TAGS,
    errors=(409, 410, 422), step_up=True,
    summary="CART_READY → COMPLETED, exactly once, by the intent's actor with its confirmation "
            "token. Wrong token or another intent's token 403, expired 410 (the intent becomes "
            "EXPIRED), any other state 409. Accepts Idempotency-Key.",
)
@idempotent(CheckoutOut)
def confirm_checkout(household: HouseholdScope, request_id: str, body: ConfirmIn) -> CheckoutOut:
    return intents.confirm(household, request_id, body)
