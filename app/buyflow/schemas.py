"""Request and response bodies of the buy-flow (camelCase on the wire)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, HttpUrl

from app.buyflow.states import INTENT_STATUS_DESCRIPTION, REQUEST_STATUS_DESCRIPTION
from app.gateway.schemas import Body, PageQuery, Schema, Timestamp
from app.models import IntentStatus, RequestStatus

ID_PATTERN = r"^[a-z]{2,4}_[0-9a-z]{26}$"
MAX_AMOUNT_MINOR = 10**10
CURRENCY = r"^[A-Z]{3}$"


class RequestIn(Body):
    title: str = Field(min_length=1, max_length=200)
    amount_minor: int = Field(ge=0, le=MAX_AMOUNT_MINOR)
    currency: str = Field(pattern=CURRENCY)
    # Only http(s) URLs are accepted: the pattern says so in the OpenAPI document.
    url: HttpUrl | None = Field(default=None, json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})
    item_id: str | None = Field(default=None, pattern=ID_PATTERN)
    note: str | None = Field(default=None, max_length=2000)


class RequestListQuery(PageQuery):
    status: str | None = Field(default=None, pattern="^(" + "|".join(RequestStatus) + ")$")


class RequestOut(Schema):
    id: str
    household_id: str
    requested_by: str | None
    title: str
    amount_minor: int
    currency: str
    url: str | None
    item_id: str | None
    note: str | None
    status: RequestStatus = Field(description=REQUEST_STATUS_DESCRIPTION)
    decided_by: str | None
    decided_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


class RequestPage(Schema):
    items: list[RequestOut]
    next_cursor: str | None = None


class IntentCreated(Schema):
    """The only response that ever carries a confirmation token (shown once)."""

    intent_id: str
    confirmation_token: str
    expires_at: Timestamp


class IntentEventOut(Schema):
    id: str
    source: str
    type: str
    data: dict[str, Any]
    received_at: Timestamp


class ArtifactOut(Schema):
    id: str
    intent_id: str
    kind: str
    uri: str
    sha256: str
    created_at: Timestamp


class IntentOut(Schema):
    """An intent as any reader sees it: status and what happened, never the token or its hash."""

    id: str
    request_id: str
    household_id: str
    actor_user_id: str
    status: IntentStatus = Field(description=INTENT_STATUS_DESCRIPTION)
    expires_at: Timestamp
    cart: dict[str, Any] | None = None
    failure_reason: str | None = None
    completed_at: Timestamp | None = None
    created_at: Timestamp
    updated_at: Timestamp
    events: list[IntentEventOut] = []
    artifacts: list[ArtifactOut] = []


class ConfirmIn(Body):
    intent_id: str = Field(pattern=ID_PATTERN)
    confirmation_token: str = Field(min_length=1, max_length=200)


class IntentStatusOut(Schema):
    intent_id: str
    request_id: str
    status: IntentStatus = Field(description=INTENT_STATUS_DESCRIPTION)


class CheckoutOut(IntentStatusOut):
    completed_at: Timestamp | None
