"""Base classes of request and response schemas (camelCase on the wire, snake_case in code)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator
from pydantic.alias_generators import to_camel


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_holds_nul(v) for v in value)
    return False


class _NulFree(BaseModel):
    """NUL cannot be stored in a PostgreSQL text column: refused as input, and the OpenAPI
    document says so (app.gateway.openapi). The request path already refuses NUL and lone
    surrogates in every string of a body or query, free-form objects included
    (app.gateway.jsonbody); this check holds for a model validated from any other source."""

    @model_validator(mode="after")
    def _refuse_nul(self) -> _NulFree:
        for name in type(self).model_fields:
            if _holds_nul(getattr(self, name)):
                raise ValueError(f"{name}: NUL characters are not accepted")
        return self


class Schema(BaseModel):
    """Response schema: built from ORM objects; only the declared fields are serialized."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, from_attributes=True, extra="ignore"
    )


class Body(_NulFree):
    """Request body: strict types, unknown fields dropped (never stored)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", strict=True,
        str_strip_whitespace=True,
    )


class Query(_NulFree):
    """Query string: values arrive as strings, so types are coerced; unknown keys ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


def _rfc3339(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


# Stored naive UTC; rendered as RFC 3339 with a Z.
Timestamp = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str)]


class PageQuery(Query):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(
        default=None, max_length=200,
        description="Opaque: the nextCursor of the previous page; any other value is a 400",
    )


class ErrorBody(Schema):
    error: str
    message: str
    correlation_id: str | None = None
    timestamp: str
