"""Routes of the webhooks blueprint: Hyperbeam events, verified on the raw bytes first."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import current_app, request
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.db import db
from app.gateway.contracts import Header, endpoint, validation_details
from app.gateway.errors import BadRequest, ServiceUnavailable, Unauthorized, ValidationError
from app.gateway.jsonbody import read_json_body
from app.gateway.schemas import Body, Schema
from app.gateway.tenancy import lock_household
from app.hooktypes import WebhookRejected
from app.models import PurchaseIntent, WebhookEvent
from app.webhooks import bp
from app.webhooks.verification import verifiers

log = logging.getLogger(__name__)

PROVIDER = "hyperbeam"


class HyperbeamEventIn(Body):
    type: str = Field(min_length=1, max_length=100)
    intent_id: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict)


class WebhookAck(Schema):
    id: str
    duplicate: bool


def _authentic_delivery_id(raw: bytes) -> str:
    """The delivery's id once its signature holds (or, unenforced, when it carries none)."""
    config = current_app.config
    headers = {name: request.headers.get(name, "") for name in
               ("webhook-id", "webhook-timestamp", "webhook-signature")}
    signed = bool(headers["webhook-signature"])
    if not config["HYPERBEAM_ENFORCE_EVENT_SIGNATURES"] and not signed:
        if not headers["webhook-id"] or len(headers["webhook-id"]) > 255:
            raise BadRequest("A webhook-id header is required")
        return headers["webhook-id"]
    verify = verifiers(current_app).get(PROVIDER)
    if verify is None:
        raise ServiceUnavailable("No verifier for Hyperbeam webhooks is installed")
    secrets = [str(s) for s in config.get("HYPERBEAM_EVENT_SIGNING_SECRET") or []]
    try:
        return verify(headers, raw, secrets, int(time.time()))
    except WebhookRejected as exc:
        log.info("hyperbeam webhook rejected: %s", exc)
        raise Unauthorized("Invalid webhook signature") from None


def _parse() -> HyperbeamEventIn:
    try:
        return HyperbeamEventIn.model_validate(read_json_body())
    except PydanticValidationError as exc:
        raise ValidationError(
            "Request failed validation", details=validation_details(exc)
        ) from None


def _intent(intent_id: str | None) -> PurchaseIntent | None:
    """The event's intent, read after its household was locked (the lock order of
    app.gateway.tenancy): during the household's deletion the event is stored unattached."""
    if intent_id is None:
        return None
    household_id = db.session.scalar(
        select(PurchaseIntent.household_id).where(PurchaseIntent.id == intent_id))
    return db.session.get(PurchaseIntent, intent_id) if lock_household(household_id) else None


@bp.post("/webhooks/hyperbeam")
@endpoint(
    auth="public", raw_body=True, sensitive=True, body=HyperbeamEventIn, response=WebhookAck,
    rate_limit="{WEBHOOK_RATE_LIMIT}", caller_bucket=False, tags=("webhooks",), errors=(401,),
    headers=(
        Header("webhook-id", required=True, max_length=255,
               description="Delivery id: a repeated one is acknowledged without effect"),
        Header("webhook-timestamp", description="Unix seconds; required when signed"),
        Header("webhook-signature", description="Standard Webhooks signature(s) of the body; "
               "required when HYPERBEAM_ENFORCE_EVENT_SIGNATURES"),
    ),
    summary="Hyperbeam event (Standard Webhooks signature over the raw body, ±5 min). A repeated "
            "webhook-id is acknowledged without effect; an unknown intentId is stored unattached.",
)
def hyperbeam() -> WebhookAck:
    raw = request.get_data(cache=True)
    delivery_id = _authentic_delivery_id(raw)  # before any parsing
    event = _parse()
    intent = _intent(event.intent_id)
    stored = WebhookEvent(
        webhook_id=delivery_id, provider=PROVIDER, type=event.type,
        intent_id=intent.id if intent else None,
        household_id=intent.household_id if intent else None,
        payload=event.model_dump(mode="json", by_alias=True),
    )
    try:
        with db.session.begin_nested():
            db.session.add(stored)
            db.session.flush()
    except IntegrityError:
        if stored in db.session:
            db.session.expunge(stored)
        existing = db.session.scalars(
            select(WebhookEvent.id).where(WebhookEvent.webhook_id == delivery_id)
        ).one()
        return WebhookAck(id=existing, duplicate=True)
    return WebhookAck(id=stored.id, duplicate=False)
