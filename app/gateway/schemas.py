"""Base classes of request and response schemas (camelCase on the wire, snake_case in code)."""

from __future__ import annotations

import enum
import functools
import json
import re
import types
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, TypeAdapter, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticSerializationError
from typing_extensions import TypedDict

_SURROGATE = re.compile(r"[\ud800-\udfff]")


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
        for name, value in self.__dict__.items():  # the fields' values, as validated
            if value is not None and _holds_nul(value):
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
    # The first 19 characters of isoformat() are the date and time to the second (the year is
    # always four digits): a fifth cheaper than isoformat(timespec="seconds"), once per value.
    return value.isoformat()[:19] + "Z"


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


# -- serialising trusted rows ----------------------------------------------------------------
#
# A read's rows come from the application's own database, through columns the response schema
# names: validating them again as they leave would check what was checked when they were
# written. ``Trusted`` answers are serialised by a mirror of the response schema instead: the same
# fields, aliases and serializers as a ``TypedDict``, so pydantic-core writes exactly the declared
# fields (anything else in a row is left out) without building or validating a model.


@dataclass(frozen=True)
class Trusted:
    """A handler's answer of plain dicts and lists shaped like its response schema, built from
    stored rows; serialised by ``row_serializer`` of the contract's response schema."""

    value: Any


@functools.cache
def row_serializer(model: type[BaseModel]) -> TypeAdapter[Any]:
    """The serializer of ``model``'s shape over plain dicts (section comment)."""
    return TypeAdapter(_mirror(model))


@functools.cache
def _mirror_model(model: type[BaseModel]) -> Any:
    if model.__pydantic_decorators__.model_serializers or model.model_computed_fields:
        raise TypeError(f"{model.__name__} serialises itself: answer with the model instead")
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = _mirror(info.annotation)
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        alias = info.serialization_alias or info.alias
        if alias is not None:
            annotation = Annotated[annotation, Field(serialization_alias=alias)]
        fields[name] = annotation
    if model.__pydantic_decorators__.field_serializers:
        raise TypeError(f"{model.__name__} has field serializers: answer with the model instead")
    mirror = TypedDict(f"{model.__name__}Row", fields)  # type: ignore[misc]
    mirror.__pydantic_config__ = ConfigDict(extra="ignore")  # type: ignore[attr-defined]
    return mirror


def serialize(response: type[BaseModel], result: Any) -> bytes:
    """The response body: ``result`` (a ``Trusted`` answer, an instance of ``response``, or
    anything ``response`` validates from) as ``response`` declares it, undeclared fields left out.
    """
    if isinstance(result, Trusted):
        serializer, value = row_serializer(response), result.value
    else:
        value = (result if isinstance(result, response)
                 else response.model_validate(result, from_attributes=True))
        serializer = _model_serializer(response)
    try:
        return serializer.dump_json(value, by_alias=True)
    except PydanticSerializationError:
        # A stored string that UTF-8 cannot encode (a lone surrogate, from a row written before
        # input was checked): served with U+FFFD in its place rather than failing every read.
        data = _replace_surrogates(serializer.dump_python(value, mode="json", by_alias=True))
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


@functools.cache
def _model_serializer(response: type[BaseModel]) -> TypeAdapter[Any]:
    return TypeAdapter(response)


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    return value


def _mirror(annotation: Any) -> Any:
    """``annotation`` with every response model in it replaced by its ``TypedDict`` mirror."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _mirror_model(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum) and \
            issubclass(annotation, str):
        return str  # a stored state is its value (a str); the schema's enum documents the set
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is None or not args:
        return annotation
    if origin is Annotated:
        return Annotated[(_mirror(args[0]), *annotation.__metadata__)]
    if origin in (Union, types.UnionType):
        return Union[tuple(_mirror(arg) for arg in args)]  # noqa: UP007 - built at run time
    if origin in (list, tuple, dict, set, frozenset):
        return origin[tuple(_mirror(arg) for arg in args)]
    return annotation
