"""Bodies of the machine-to-machine routes (orchestrator callbacks, events, artifacts)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.buyflow.schemas import CURRENCY, ID_PATTERN, MAX_AMOUNT_MINOR
from app.gateway.schemas import Body, Schema, Timestamp

MAX_QUANTITY = 1_000
MAX_CART_LINES = 200


class CartItem(Body):
    """One cart line. The bounds keep ``quantity × amountMinor`` at most 10^13 per line and
    2 × 10^15 over the largest cart: below 2^53, so the sum is exact in every JSON client too."""

    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(ge=1, le=MAX_QUANTITY, description="Units of this line")
    amount_minor: int = Field(
        ge=0, le=MAX_AMOUNT_MINOR,
        description="Price of one unit, in minor units of the cart's currency",
    )


class Cart(Body):
    items: list[CartItem] = Field(min_length=1, max_length=MAX_CART_LINES)
    total_minor: int = Field(
        ge=0, le=MAX_AMOUNT_MINOR,
        description="Must equal the sum of quantity × amountMinor over the items (else 422), "
                    "and may not exceed the approved amount (422)",
    )
    currency: str = Field(pattern=CURRENCY, description="The approved request's currency")


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
