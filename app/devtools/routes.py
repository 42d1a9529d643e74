"""The simulated orchestrator: a member fills the cart of their own purchase intent.

The state change is the internal cart-ready callback's (``app.buyflow.callbacks.cart_ready``),
called with a cart built from the approved request, so every rule of the real callback (actor
binding, expiry, amount and currency, the conditional transition, the audit event) applies.
"""

from __future__ import annotations

from flask import Blueprint

from app.buyflow import callbacks
from app.buyflow.callback_schemas import Cart, CartItem, CartReadyIn
from app.buyflow.schemas import IntentStatusOut
from app.context import Principal
from app.db import db
from app.devtools.schemas import SimulatedCartIn
from app.gateway.contracts import endpoint
from app.gateway.errors import Forbidden, NotFound
from app.models import Member, PurchaseIntent, PurchaseRequest

bp = Blueprint("devtools", __name__, url_prefix="/api/dev")

INTENT_NOT_FOUND = callbacks.INTENT_NOT_FOUND


def _own_intent(intent_id: str, user_id: str) -> tuple[PurchaseIntent, PurchaseRequest]:
    """The intent if the caller is a member of its household (else the same 404 as an unknown
    id) and its actor (else 403)."""
    intent = db.session.get(PurchaseIntent, intent_id)
    if intent is None or db.session.get(Member, (intent.household_id, user_id)) is None:
        raise NotFound(INTENT_NOT_FOUND)
    if intent.actor_user_id != user_id:
        raise Forbidden("Only the intent's actor may simulate its cart")
    request = db.session.get(PurchaseRequest, intent.request_id)
    assert request is not None  # noqa: S101 - foreign key
    return intent, request


@bp.post("/purchase-intents/<intent_id>/cart-ready")
@endpoint(
    permissions=["purchases:create"], body=SimulatedCartIn, response=IntentStatusOut,
    tags=("development",), errors=(403, 404, 409, 410, 422),
    summary="Development only (DEMO_HELPERS_ENABLED): act as the orchestrator and report the "
            "cart of the caller's own intent ready (PURCHASING → CART_READY), through the same "
            "service as the internal cart-ready callback",
)
def simulate_cart_ready(intent_id: str, body: SimulatedCartIn,
                        principal: Principal) -> IntentStatusOut:
    intent, request = _own_intent(intent_id, principal.user_id)
    total = request.amount_minor if body.total_minor is None else body.total_minor
    cart = Cart(items=[CartItem(name=request.title, quantity=1, amount_minor=total)],
                total_minor=total, currency=request.currency)
    return callbacks.cart_ready(intent.id, CartReadyIn(actor_user_id=principal.user_id, cart=cart))
