"""Endpoint contracts: one decorator per route declares what the gateway enforces.

The request path, top to bottom (DESIGN.md "One request, one path"):

    request id                 app.gateway.headers (a WSGI layer around the app)
    authentication             public, bearer (Principal) or internal token
    client IP                  app.gateway.clientip, when a rate limit or a login asks for it
    rate limit                 RATE_LIMIT (app.ratelimit.policy), when on
    body / query schema        pydantic; unknown fields dropped
    permissions                all of ``permissions`` or 403
    household + role           HouseholdScope from the path's household_id; roles, else 403
    step-up                    a recent login (``auth_time``), when ``step_up``
    before guards              business rules declared on the contract
    handler
    response schema            strips every undeclared field
    after guards               checks of the result, in the same transaction (features audit
                               with audit.record where they change, not here)
    commit                     one transaction per request
    security headers           app.gateway.headers (the same WSGI layer, on every response)

Handlers receive, by parameter name, only what they ask for: the path's arguments, ``body``,
``query``, ``household`` (the scope), ``principal`` and ``call``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import Response, current_app, g, request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from app import audit, clock
from app.context import Principal
from app.db import db
from app.gateway.errors import Forbidden, NotFound, Unauthorized, ValidationError
from app.gateway.jsonbody import read_json_body, refuse_unstorable_pairs
from app.gateway.principal import authenticate_bearer, check_internal_token
from app.gateway.schemas import serialize
from app.gateway.tenancy import HouseholdLock, HouseholdScope, load_scope
from app.state import Slot

Auth = Literal["public", "bearer", "internal"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Guard = Callable[["Call"], None]


@dataclass(frozen=True)
class Header:
    """A request header the handler reads, documented as an OpenAPI header parameter."""

    name: str
    required: bool = False
    max_length: int | None = None
    description: str = ""


@dataclass(frozen=True)
class Contract:
    auth: Auth = "bearer"
    permissions: tuple[str, ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    household: bool = False
    household_lock: HouseholdLock | None = None  # None: "key share" for writes, none for reads
    roles: tuple[str, ...] | None = None
    rate_limit: str | None = None
    caller_bucket: bool = True  # False: only the endpoint's own limit applies (app.ratelimit)
    sensitive: bool = False
    internal_token: tuple[str, str] | None = None  # (token setting, "required" flag setting)
    before: tuple[Guard, ...] = ()
    after: tuple[Guard, ...] = ()
    raw_body: bool = False
    summary: str = ""
    description: str = ""  # OpenAPI's longer text: what the operation reveals, what bounds it
    tags: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    headers: tuple[Header, ...] = ()
    writes: bool = False  # a GET that writes; its transaction then takes SQLite's write lock
    step_up: bool = False  # needs a login at most STEP_UP_MAX_AGE_SECONDS old (RFC 9470)
    # The path parameter that the id a creating operation returns fills, when it is not the one
    # after the creator's own path (OpenAPI links; ``POST …/members`` creates an invitation).
    creates: str | None = None


READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass
class Call:
    """Everything the gateway learned about one request, handed to guards and handlers."""

    contract: Contract
    path: dict[str, Any]
    principal: Principal | None = None
    service: str | None = None  # the internal token's setting, once that token was verified
    household: HouseholdScope | None = None
    body: Any = None
    query: Any = None
    result: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    """A handler's answer when the status or headers differ from the contract's."""

    body: Any = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


def endpoint(
    *,
    auth: Auth = "bearer",
    permissions: Iterable[str] = (),
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    household: bool = False,
    household_lock: HouseholdLock | None = None,
    roles: Iterable[str] | None = None,
    rate_limit: str | None = None,
    caller_bucket: bool = True,
    sensitive: bool = False,
    internal_token: tuple[str, str] | None = None,
    before: Iterable[Guard] = (),
    after: Iterable[Guard] = (),
    raw_body: bool = False,
    summary: str = "",
    description: str = "",
    tags: Iterable[str] = (),
    errors: Iterable[int] = (),
    headers: Iterable[Header] = (),
    writes: bool = False,
    step_up: bool = False,
    creates: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Declare a route's contract; the gateway enforces it and OpenAPI documents it.

    A ``GET`` runs in a read-only transaction (``app.db``: it never waits for SQLite's writer);
    one that writes says so with ``writes=True``. Every other method may write."""
    contract = Contract(
        auth=auth,
        permissions=tuple(permissions),
        body=body,
        query=query,
        response=response,
        status=status,
        household=household,
        household_lock=household_lock,
        roles=tuple(roles) if roles is not None else None,
        rate_limit=rate_limit,
        caller_bucket=caller_bucket,
        sensitive=sensitive,
        internal_token=internal_token,
        before=tuple(before),
        after=tuple(after),
        raw_body=raw_body,
        summary=summary,
        description=description,
        tags=tuple(tags),
        errors=tuple(errors),
        headers=tuple(headers),
        writes=writes,
        step_up=step_up,
        creates=creates,
    )
    if step_up and auth != "bearer":
        raise ValueError("step-up needs a bearer principal")
    if auth == "internal" and internal_token is None:
        raise ValueError("an internal endpoint names its token setting")
    if household and auth != "bearer":
        raise ValueError("household scoping needs a bearer principal")
    if not caller_bucket and rate_limit is None:
        raise ValueError("an endpoint outside the caller's bucket declares its own rate_limit")

    def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
        wanted = set(inspect.signature(view).parameters)

        @functools.wraps(view)
        def wrapper(**path: Any) -> Response:
            if any("\x00" in str(value) for value in path.values()):
                raise NotFound()  # no id holds NUL, and PostgreSQL cannot even compare one
            if request.method in READ_METHODS and not contract.writes:
                db.read_only_request()
            call = Call(contract=contract, path=path, status=contract.status)
            try:
                _authenticate(call)
            finally:
                if (rate_limit := RATE_LIMIT.find()) is not None:
                    rate_limit(call)  # a failed authentication costs the client IP's quota too
            _validate_input(call)
            _check_permissions(call)
            if contract.household:
                assert call.principal is not None  # noqa: S101 - guaranteed by the bearer step
                call.household = load_scope(path.pop("household_id"), call.principal.user_id,
                                            _household_lock(contract))
                _check_role(call)
            if contract.step_up:
                _check_recent_login(call)
            for guard in contract.before:
                guard(call)
            result = view(**_arguments(call, wanted))
            if isinstance(result, Reply):
                call.status = result.status or call.status
                call.headers.update(result.headers)
                result = result.body
            call.result = result
            if g.get("_db_session") is not None:
                db.session.flush()  # ids and defaults of new rows, for the response
            payload = _serialize(contract, result)
            for guard in contract.after:
                guard(call)
            db.commit()
            return _respond(payload, call)

        wrapper.contract = contract  # type: ignore[attr-defined]
        return wrapper

    return decorate


def contract_of(view: Callable[..., Any]) -> Contract | None:
    return getattr(view, "contract", None)


# -- the steps -------------------------------------------------------------------------------


def _authenticate(call: Call) -> None:
    contract = call.contract
    if contract.auth == "bearer":
        call.principal = authenticate_bearer()
    elif contract.auth == "internal":
        assert contract.internal_token is not None  # noqa: S101 - checked at declaration
        if check_internal_token(*contract.internal_token):
            call.service = contract.internal_token[0]


# The rate limit (429) every contract applies after authentication: app.gateway.limits installs
# its limiter here, unless RATELIMIT_ENABLED is off. The gateway names the step, not the limiter.
RATE_LIMIT: Slot[Callable[[Call], None]] = Slot("rate_limit")


def validation_details(exc: PydanticValidationError) -> list[dict[str, str]]:
    # Never echo the input: it may be a password or a token.
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def _validate_input(call: Call) -> None:
    contract = call.contract
    # Every query parameter, declared or not, and every declared header: NUL and lone surrogates
    # are refused here as in bodies (app.gateway.jsonbody), before anything reads them.
    refuse_unstorable_pairs(request.args.items(multi=True), "(query)")
    refuse_unstorable_pairs(
        ((h.name, request.headers.get(h.name, "")) for h in contract.headers), "(header)"
    )
    try:
        if contract.query is not None:
            call.query = contract.query.model_validate(request.args.to_dict())
        if contract.body is not None and not contract.raw_body:
            call.body = contract.body.model_validate(read_json_body())
    except PydanticValidationError as exc:
        raise ValidationError(
            "Request failed validation", details=validation_details(exc)
        ) from None


def _check_permissions(call: Call) -> None:
    required = call.contract.permissions
    if not required or call.principal is None:
        return
    held = call.principal.permissions
    missing = [p for p in required if p not in held]
    if missing:
        audit.record_denial(
            "permission.denied", resource=_resource(),
            details={"required": list(required), "missing": missing},
        )
        raise Forbidden(
            "Missing required permission: " + ", ".join(missing),
            requiredPermissions=list(required),
            userPermissions=sorted(held),
        )


def _household_lock(contract: Contract) -> HouseholdLock | None:
    """Writes lock the household row first (lock order: app.gateway.tenancy); reads do not."""
    if contract.household_lock is not None:
        return contract.household_lock
    return None if request.method in SAFE_METHODS else "key share"


def _check_role(call: Call) -> None:
    allowed = call.contract.roles
    assert call.household is not None  # noqa: S101 - called only for household routes
    if allowed is not None and call.household.role not in allowed:
        audit.record_denial(
            "role.denied", household_id=call.household.id, resource=_resource(),
            details={"role": call.household.role, "requiredRoles": list(allowed)},
        )
        raise Forbidden(
            f"Household role '{call.household.role}' may not do this",
            requiredRoles=list(allowed),
        )


def _check_recent_login(call: Call) -> None:
    """RFC 9470: the access token's ``auth_time`` (its session's login) must be at most
    ``STEP_UP_MAX_AGE_SECONDS`` old, else 401 ``insufficient_user_authentication``."""
    assert call.principal is not None  # noqa: S101 - step-up contracts are bearer contracts
    max_age = int(current_app.config["STEP_UP_MAX_AGE_SECONDS"])
    auth_time = call.principal.auth_time
    age = None if auth_time is None else clock.epoch(clock.now()) - auth_time
    if age is not None and age <= max_age:
        return
    audit.record_denial(
        "auth.step_up", resource=_resource(),
        household_id=call.household.id if call.household is not None else None,
        details={"maxAge": max_age, "age": age},
    )
    raise Unauthorized(
        "This needs a recent login: please authenticate again", error="StepUpRequired",
        maxAge=max_age,
        headers={"WWW-Authenticate":
                 f'Bearer error="insufficient_user_authentication", max_age={max_age}'},
    )


def _resource() -> str:
    """The route as declared (``POST /api/households/<household_id>/members``), not the path:
    the audit trail names what was refused without copying ids from the URL."""
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    return f"{request.method} {rule}"


def _arguments(call: Call, wanted: set[str]) -> dict[str, Any]:
    available = {
        "body": call.body,
        "query": call.query,
        "household": call.household,
        "principal": call.principal,
        "call": call,
    }
    args = {name: value for name, value in available.items() if name in wanted}
    args.update(call.path)
    return args


def _serialize(contract: Contract, result: Any) -> bytes | None:
    if result is None:
        return None
    if contract.response is None:
        raise TypeError("this endpoint declares no response schema but its handler returned one")
    return serialize(contract.response, result)


def _respond(payload: bytes | None, call: Call) -> Response:
    if payload is None:
        response = Response(status=204 if call.status in (200, 204) else call.status)
    else:
        response = Response(payload, status=call.status, mimetype="application/json")
    for key, value in call.headers.items():
        response.headers[key] = value
    return response
