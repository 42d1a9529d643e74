"""OpenAPI 3.1, generated from the endpoint contracts so that the documentation cannot drift."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from app.gateway.contracts import Contract, contract_of
from app.gateway.defaultdeny import UNCONTRACTED_ROUTES
from app.gateway.errors import ERROR_NAMES
from app.gateway.schemas import ErrorBody

# What holds for every operation, stated once rather than on each.
API_DESCRIPTION = (
    "Errors are JSON (`error`, `message`, `correlationId`, `timestamp`). "
    "Concurrent writes never answer 5xx: one wins, the others get 409 (or the idempotent replay, "
    "or 401 for a spent refresh token), on SQLite and PostgreSQL alike. 503 means a dependency "
    "is down (on SQLite also: the write lock stayed busy for 15 s). "
    "A body over the size limit is 413 whether it has a `Content-Length` or comes chunked. "
    "A failed authentication of any kind (bearer token, `X-Internal-Token`, webhook signature) "
    "is counted against the client IP, never against the bucket of the user or service it "
    "names. "
    "CORS headers are sent only when the request has an allowed `Origin`, on successes and "
    "errors alike. "
    "Every operation of the service is in this document; besides them, only these routes are "
    "served: "
)


def _description() -> str:
    listed = "; ".join(f"`{route.rule}` ({route.why})" for route in UNCONTRACTED_ROUTES)
    return API_DESCRIPTION + listed + "."


_PATH_ARG = re.compile(r"<(?:[a-z_]+:)?([a-zA-Z_][a-zA-Z0-9_]*)>")
_REF = "#/components/schemas/{model}"
# A state transition of a resource: POST .../<request_id>/approve (the resource, then a verb).
_TRANSITION = re.compile(r"(.*/<(?:[a-z_]+:)?([a-zA-Z_][a-zA-Z0-9_]*)>)/[a-z-]+")


class _QuerySchemas(GenerateJsonSchema):
    """Input strings never hold NUL (``_NulFree``): free strings get a pattern that says so."""

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        value = super().str_schema(schema)
        if self.mode == "validation" and "pattern" not in value:
            value["pattern"] = "^[^\\x00]*$"
        return value


# What the server's trim removes (pydantic's ``str_strip_whitespace``: Unicode White_Space), named
# one by one: ECMA-262's ``\s`` (OpenAPI's regex dialect) differs (it has U+FEFF, lacks U+0085).
_TRIMMED = (
    "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)


def trimmed_pattern(min_length: int, max_length: int | None) -> str:
    """A pattern for a string whose *trimmed* value has ``min_length``..``max_length``
    characters and no NUL: any surrounding whitespace, then the value, which starts and ends with
    a character that is not whitespace."""
    edge = f"[^{_TRIMMED}\\x00]"
    values = [""] if min_length <= 0 else []
    if min_length <= 1 and (max_length is None or max_length >= 1):
        values.append(edge)
    if max_length is None or max_length >= 2:
        longest = "" if max_length is None else str(max_length - 2)
        values.append(f"{edge}[^\\x00]{{{max(min_length, 2) - 2},{longest}}}{edge}")
    return f"^[{_TRIMMED}]*(?:{'|'.join(values)})[{_TRIMMED}]*$"


_NUL_FREE = "^[^\\x00]*$"
_JSON_VALUE = "JsonValue"
# Any JSON value whose strings, keys included, hold no NUL: what a request body may carry in a
# free-form object or an unknown field (app.gateway.jsonbody refuses NUL and lone surrogates in
# every string of a body; JSON Schema cannot name surrogates, which JSON text cannot spell raw).
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": "Any JSON value; no string in it, object keys included, may hold NUL or a "
                   "lone surrogate",
    "anyOf": [
        {"type": "string", "pattern": _NUL_FREE},
        {"type": ["number", "boolean", "null"]},
        {"type": "array", "items": {"$ref": _REF.format(model=_JSON_VALUE)}},
        {"type": "object", "propertyNames": {"pattern": _NUL_FREE},
         "additionalProperties": {"$ref": _REF.format(model=_JSON_VALUE)}},
    ],
}


class _BodySchemas(_QuerySchemas):
    """Request bodies strip surrounding whitespace before checking lengths (``Body``): their
    strings' lengths are stated by a pattern over the trimmed value, since ``minLength`` and
    ``maxLength`` would count the whitespace the server ignores. Unknown fields are accepted (and
    dropped) and free-form objects hold anything: both as ``JsonValue``, whose strings hold no
    NUL."""

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        value = super(_QuerySchemas, self).str_schema(schema)
        if self.mode != "validation" or "pattern" in value:
            return value
        value["pattern"] = trimmed_pattern(value.pop("minLength", 0), value.pop("maxLength", None))
        return value

    def any_schema(self, schema: core_schema.AnySchema) -> JsonSchemaValue:
        if self.mode != "validation":
            return super().any_schema(schema)
        return {"$ref": _REF.format(model=_JSON_VALUE)}

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        value = super().dict_schema(schema)
        if self.mode == "validation":
            value.setdefault("propertyNames", {"pattern": _NUL_FREE})
        return value

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        value = super().model_schema(schema)
        if self.mode == "validation" and value.get("type") == "object":
            value.setdefault("propertyNames", {"pattern": _NUL_FREE})
            value.setdefault("additionalProperties", {"$ref": _REF.format(model=_JSON_VALUE)})
        return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _default_errors(contract: Contract, rule: str) -> list[int]:
    codes = {400, 429, 500, 503}
    if contract.auth != "public":
        codes.add(401)
    if contract.permissions or contract.roles is not None or contract.before:
        codes.add(403)
    if contract.household or "<" in rule:
        codes.add(404)
    if contract.body is not None:
        codes.update({413, 415})
    codes.update(contract.errors)
    return sorted(codes)


def _rate_limit_of(contract: Contract, config: Any) -> str:
    """The limits that apply, as configured: the caller's bucket, then the endpoint's own."""
    limits = []
    if contract.caller_bucket:
        if contract.auth == "bearer":
            limits.append(f"{config['RATELIMIT_AUTHENTICATED']} per user")
        elif contract.auth == "internal":
            limits.append(
                f"{config['RATELIMIT_INTERNAL']} per internal token (a missing or wrong token: "
                f"{config['RATELIMIT_ANONYMOUS']} per client IP)"
            )
        else:
            limits.append(f"{config['RATELIMIT_ANONYMOUS']} per client IP")
    if contract.rate_limit:
        scope = "per user" if contract.auth == "bearer" else "per client IP"
        limits.append(f"{contract.rate_limit.format_map(config)} {scope} on this operation")
    return "; ".join(limits)


@dataclass(frozen=True)
class _Operation:
    rule: str
    method: str
    contract: Contract
    operation: dict[str, Any]

    @property
    def path_parameters(self) -> list[str]:
        return [m.group(1) for m in _PATH_ARG.finditer(self.rule)]


def _created_parameter(source: _Operation, operations: list[_Operation]) -> str | None:
    """The path parameter that names what a creating operation (POST, 201) made: the one that
    follows the creator's path in another route (``POST .../items`` → ``.../items/<item_id>``)."""
    if source.method != "POST" or source.contract.status != 201 or source.contract.response is None:
        return None
    if source.contract.creates is not None:
        return source.contract.creates
    prefix = source.rule.rstrip("/") + "/"
    for other in operations:
        if other.rule.startswith(prefix):
            match = _PATH_ARG.match(other.rule, len(prefix))
            if match is not None:
                return match.group(1)
    return None


def _links_of(
    source: _Operation, operations: list[_Operation], schemas: dict[str, Any]
) -> dict[str, Any]:
    """OpenAPI links, derived from the routes (stateful testing walks them):

    - a creating operation (POST, 201): the new resource's id is followed into every operation
      whose path names it and whose other path parameters the creator's request already holds;
    - a state transition (``POST .../<request_id>/approve``): the same resource onward, into
      every operation that names its id and nothing the transition's request lacks.
    """
    known = set(source.path_parameters)
    created = _created_parameter(source, operations)
    if created is not None:
        id_field = _created_id_field(source, created, schemas)
        follows = created
    else:
        transition = _TRANSITION.fullmatch(source.rule)
        if source.method != "POST" or source.contract.response is None or transition is None:
            return {}
        follows, id_field = transition.group(2), ""
    links: dict[str, Any] = {}
    for target in sorted(operations, key=lambda o: (o.rule, o.method)):
        names = target.path_parameters
        if follows not in names or not set(names) <= known | {follows}:
            continue
        parameters = {
            f"path.{_camel(name)}": f"$response.body#/{id_field}"
            if name == created
            else f"$request.path.{_camel(name)}"
            for name in names
        }
        operation_id = target.operation["operationId"]
        links[operation_id] = {"operationId": operation_id, "parameters": parameters}
    return links


def _created_id_field(source: _Operation, created: str, schemas: dict[str, Any]) -> str:
    """The response field holding the new id: the path parameter's own name (``intentId``,
    ``userId``), else ``id``."""
    assert source.contract.response is not None  # noqa: S101 - _created_parameter checked it
    model = source.contract.response.__name__
    # Through the operation's own $ref: two models may share a class name (pydantic then gives
    # each a longer name in $defs).
    response = source.operation["responses"][str(source.contract.status)]
    ref = response["content"]["application/json"]["schema"]["$ref"]
    properties = schemas.get(ref.rsplit("/", 1)[1], {}).get("properties", {})
    for field in (_camel(created), "id"):
        if field in properties:
            return field
    raise ValueError(f"{model} holds neither {_camel(created)} nor id (links of {source.rule})")


def build_openapi(app: Flask) -> dict[str, Any]:
    routes: list[tuple[str, str, Contract, str]] = []
    models: set[type[BaseModel]] = {ErrorBody}
    for url_rule in app.url_map.iter_rules():
        contract = contract_of(app.view_functions[url_rule.endpoint])
        if contract is None:
            continue
        for method in sorted((url_rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((url_rule.rule, method, contract, url_rule.endpoint))
        for model in (contract.body, contract.query, contract.response):
            if model is not None:
                models.add(model)

    ordered = sorted(models, key=lambda m: m.__name__)
    keyed = [(m, "validation") for m in ordered] + [(m, "serialization") for m in ordered]
    refs, definitions = models_json_schema(
        keyed, ref_template=_REF, by_alias=True, schema_generator=_BodySchemas  # type: ignore[arg-type]
    )

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        schema: dict[str, Any] = refs[(model, mode)]  # type: ignore[index]
        return schema

    paths: dict[str, dict[str, Any]] = {}
    operations: list[_Operation] = []
    for rule, method, contract, endpoint_name in routes:
        path = _PATH_ARG.sub(lambda m: "{" + _camel(m.group(1)) + "}", rule)
        operation: dict[str, Any] = {
            "operationId": endpoint_name.replace(".", "_") + "_" + method.lower(),
            "summary": contract.summary or endpoint_name,
            "tags": list(contract.tags) or [endpoint_name.split(".")[0]],
            "x-public": contract.auth == "public",
            "x-required-permissions": list(contract.permissions),
            "x-rate-limit": _rate_limit_of(contract, app.config),
        }
        if contract.description:
            operation["description"] = contract.description
        if contract.roles is not None:
            operation["x-household-roles"] = list(contract.roles)
        if contract.step_up:
            max_age = int(app.config["STEP_UP_MAX_AGE_SECONDS"])
            operation["x-step-up-max-age"] = max_age
            operation["description"] = (operation.get("description", "") + (
                f" Needs a login at most {max_age} s old (`STEP_UP_MAX_AGE_SECONDS`): the access "
                "token's `auth_time`, kept through refreshes. An older one gets 401 "
                "`StepUpRequired` with `WWW-Authenticate: Bearer "
                f'error="insufficient_user_authentication", max_age={max_age}` (RFC 9470); a '
                "fresh login (password or ID token) satisfies it.")).strip()
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in (_camel(m.group(1)) for m in _PATH_ARG.finditer(rule))
        ]
        for header in contract.headers:
            header_schema: dict[str, Any] = {"type": "string"}
            if header.required:
                header_schema["minLength"] = 1
            if header.max_length is not None:
                header_schema["maxLength"] = header.max_length
            parameters.append(
                {
                    "name": header.name,
                    "in": "header",
                    "required": header.required,
                    "description": header.description,
                    "schema": header_schema,
                }
            )
        if contract.query is not None:
            query_schema = contract.query.model_json_schema(
                by_alias=True, schema_generator=_QuerySchemas
            )
            for name, prop in query_schema.get("properties", {}).items():
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in query_schema.get("required", []),
                        "schema": prop,
                    }
                )
        if parameters:
            operation["parameters"] = parameters
        if contract.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(contract.body, "validation")}},
            }
        if contract.auth == "bearer":
            operation["security"] = [{"bearer": []}]
        elif contract.auth == "internal":
            operation["security"] = [{"internalToken": []}]
        else:
            operation["security"] = []
        responses: dict[str, Any] = {}
        ok = str(contract.status)
        if contract.response is not None:
            responses[ok] = {
                "description": "Success",
                "content": {
                    "application/json": {"schema": ref(contract.response, "serialization")}
                },
            }
        else:
            responses["204" if contract.status in (200, 204) else ok] = {"description": "Success"}
        for code in _default_errors(contract, rule):
            responses[str(code)] = {
                "description": ERROR_NAMES.get(code, "Error"),
                "content": {"application/json": {"schema": ref(ErrorBody, "serialization")}},
            }
        operation["responses"] = responses
        paths.setdefault(path, {})[method.lower()] = operation
        operations.append(_Operation(rule, method, contract, operation))

    for source in operations:
        links = _links_of(source, operations, definitions.get("$defs", {}))
        if links:
            source.operation["responses"][str(source.contract.status)]["links"] = links

    return {
        "openapi": "3.1.0",
        "info": {"title": "Hearthgate API", "version": "1", "description": _description()},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {**definitions.get("$defs", {}), _JSON_VALUE: JSON_VALUE_SCHEMA},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "internalToken": {"type": "apiKey", "in": "header", "name": "X-Internal-Token"},
            },
        },
    }
