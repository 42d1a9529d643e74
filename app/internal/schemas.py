"""Bodies of the machine-to-machine routes (orchestrator callbacks, events, artifacts)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.buyflow.schemas import CURRENCY, ID_PATTERN, MAX_AMOUNT_MINOR
from app.gateway.schemas import Body, Schema, Timestamp


class CartItem(Body):
    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(ge=1, le=10_000)
    amount_minor: int = Field(ge=0, le=MAX_AMOUNT_MINOR)


class Cart(Body):
    items: list[CartItem] = Field(min_length=1, max_length=200)
    total_minor: int = Field(ge=0, le=MAX_AMOUNT_MINOR)
    currency: str = Field(pattern=CURRENCY)


class CartReadyIn(Body):
    actor_user_id: str = Field(pattern=ID_PATTERN)
    cart: Cart


class FailedIn(Body):
    actor_user_id: str = Field(pattern=ID_PATTERN)
    reason: str = Field(min_length=1, max_length=2000)


class EventIn(Body):
    intent_id: str = Field(pattern=ID_PATTERN)
    type: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    data: dict[str, Any] = Field(default_factory=dict)


class EventAccepted(Schema):
    id: str
    intent_id: str
    type: str
    received_at: Timestamp


class ArtifactIn(Body):
    intent_id: str = Field(pattern=ID_PATTERN)
    kind: str = Field(min_length=1, max_length=50, pattern=r"^[a-z0-9_-]+$")
    # No whitespace, spelled so that the server (Unicode White_Space) and OpenAPI's ECMA-262
    # regexes agree: ECMA's \s lacks U+0085 and has U+FEFF, so both are named.
    uri: str = Field(min_length=1, max_length=2048,
                     pattern=r"^(https|s3|gs)://[^\s\x85\ufeff]+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ArtifactCreated(Schema):
    id: str
    intent_id: str
    kind: str
    uri: str
    sha256: str
    created_at: Timestamp
