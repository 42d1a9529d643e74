"""Routes of the buy-flow's internal blueprint: the orchestrator's callbacks, machine-to-machine,
``X-Internal-Token`` only."""

from __future__ import annotations

from app.buyflow import callbacks
from app.buyflow import internal as bp
from app.buyflow.callback_schemas import (
    ArtifactCreated,
    ArtifactIn,
    CartReadyIn,
    EventAccepted,
    EventIn,
    FailedIn,
)
from app.buyflow.schemas import IntentStatusOut
from app.gateway.contracts import endpoint
from app.models import IntentArtifact, IntentEvent

BUYFLOW_TOKEN = ("BUYFLOW_INTERNAL_TOKEN", "REQUIRE_BUYFLOW_INTERNAL_TOKEN")
ORCHESTRATOR_TOKEN = ("ORCHESTRATOR_INTERNAL_TOKEN", "REQUIRE_INTERNAL_EVENT_TOKEN")
TAGS = ("internal",)


@bp.post("/internal/purchase-intents/<intent_id>/cart-ready")
@endpoint(
    auth="internal", internal_token=BUYFLOW_TOKEN, body=CartReadyIn, response=IntentStatusOut,
    sensitive=True, tags=TAGS, errors=(403, 404, 409, 410, 422),
    summary="PURCHASING → CART_READY; actorUserId must be the intent's actor (else 403); "
            "totalMinor must equal the sum of quantity × amountMinor (a unit price) over the "
            "items, and may not exceed the approved amount nor change its currency (else 422, "
            "and nothing changes)",
)
def cart_ready(intent_id: str, body: CartReadyIn) -> IntentStatusOut:
    return callbacks.cart_ready(intent_id, body)


@bp.post("/internal/purchase-intents/<intent_id>/failed")
@endpoint(
    auth="internal", internal_token=BUYFLOW_TOKEN, body=FailedIn, response=IntentStatusOut,
    sensitive=True, tags=TAGS, errors=(403, 404, 409),
    summary="PURCHASING or CART_READY → FAILED; actorUserId must be the intent's actor",
)
def failed(intent_id: str, body: FailedIn) -> IntentStatusOut:
    return callbacks.failed(intent_id, body)


@bp.post("/internal/events")
@endpoint(
    auth="internal", internal_token=ORCHESTRATOR_TOKEN, body=EventIn, response=EventAccepted,
    status=202, tags=TAGS, errors=(404,),
    summary="A co-browsing bridge event, stored against its intent (shown on the intent's GET)",
)
def event(body: EventIn) -> IntentEvent:
    return callbacks.record_event(body)


@bp.post("/internal/artifacts")
@endpoint(
    auth="internal", internal_token=ORCHESTRATOR_TOKEN, body=ArtifactIn,
    response=ArtifactCreated, status=201, tags=TAGS, errors=(404,),
    summary="An artifact record (receipt, screenshot) of an intent, by URI and SHA-256",
)
def artifact(body: ArtifactIn) -> IntentArtifact:
    return callbacks.record_artifact(body)
