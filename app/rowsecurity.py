"""Who the database is told is asking: the settings that PostgreSQL's row-level security policies
read (``migrations/versions/r1_row_level_security.py`` describes each policy).

One statement at the start of every transaction of the engine (``app.db`` listens to the
engine's ``begin``, which every session and every raw connection goes through) sets them with
``set_config(name, value, true)``: transaction-local, so a pooled connection returns to the pool
with none of them, and the next request's transaction starts from nothing. They come from:

- the verified principal (``g.principal``, set by the gateway from a bearer token):
  ``hearthgate.user_id``, and computed in SQL in the same statement from that user's own rows:
  ``hearthgate.households`` (member rows) and ``hearthgate.email`` (the user row's address,
  after ``v`` when it is proved, ``u`` when not), by the database function
  ``row_security_user_scope`` (``migrations/versions/r2_row_security_cost.py``);
- the route, for callers that are not a user: the internal routes after the gateway checked
  their token (``hearthgate.service`` is the token setting's name), the signed webhook, and the
  anonymous identity flows (``hearthgate.flow``), each by its endpoint in ``ROUTE_SCOPES``;
- outside any request (command line, the process's timers and queue): ``hearthgate.service =
  'system'``, which the policies admit everywhere. A request never gets it.

A request that is none of these (an unknown public route) sets nothing and sees nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import g, has_request_context, request
from psycopg import pq

from app.libpq import run_simple

SYSTEM = "system"

# Routes whose callers are not a user: endpoint → ("service" | "flow", name). The internal
# routes' names are their token settings (checked by the gateway before the view runs).
ROUTE_SCOPES: dict[str, tuple[str, str]] = {
    "internal.cart_ready": ("service", "BUYFLOW_INTERNAL_TOKEN"),
    "internal.failed": ("service", "BUYFLOW_INTERNAL_TOKEN"),
    "internal.event": ("service", "ORCHESTRATOR_INTERNAL_TOKEN"),
    "internal.artifact": ("service", "ORCHESTRATOR_INTERNAL_TOKEN"),
    "webhooks.hyperbeam": ("service", "webhook:hyperbeam"),
    "auth.login": ("flow", "login"),
    "auth.refresh": ("flow", "refresh"),
    "passwords.register": ("flow", "register"),
    "passwords.verify_email": ("flow", "verify_email"),
    "passwords.reset_password": ("flow", "reset"),
    "passwords.reset_password_confirm": ("flow", "reset"),
    "oidc_flow.authorize": ("flow", "oidc"),
    "oidc_flow.callback": ("flow", "oidc"),
    "oidc_flow.exchange": ("flow", "oidc"),
}

# A user's scope is a function (migration r2 holds its statement): PL/pgSQL plans the statement
# once per connection and keeps the plan. Sent as text with the values quoted in, the statement
# would be parsed, rewritten under the policies and planned at every transaction's start.
_USER = "SELECT row_security_user_scope(%(user)s)"
_SERVICE = "SELECT set_config('hearthgate.service', %(name)s, true)"
_FLOW = "SELECT set_config('hearthgate.flow', %(name)s, true)"


@dataclass(frozen=True)
class Scope:
    """One of: a user, a service (``system`` included), an anonymous flow; or nothing."""

    user_id: str = ""
    service: str = ""
    flow: str = ""


def current_scope() -> Scope:
    """The scope of whatever is running now (module docstring)."""
    if not has_request_context():
        return Scope(service=SYSTEM)
    principal = g.get("principal")
    if principal is not None:
        return Scope(user_id=str(principal.user_id))
    if g.get(_FLOW_KEY):
        return Scope(flow=str(g.get(_FLOW_KEY)))
    kind, name = ROUTE_SCOPES.get(request.endpoint or "", ("", ""))
    if kind == "service":
        return Scope(service=name)
    if kind == "flow":
        return Scope(flow=name)
    return Scope()


_FLOW_KEY = "_rowsecurity_flow"


@contextmanager
def in_flow(name: str) -> Iterator[None]:
    """Transactions begun inside run as the anonymous flow ``name`` (in a request without a
    principal): the development user's sign-in (``development``), which happens before the
    request has its principal."""
    previous = g.get(_FLOW_KEY)
    setattr(g, _FLOW_KEY, name)
    try:
        yield
    finally:
        setattr(g, _FLOW_KEY, previous)


def apply_scope(dbapi_connection: Any, scope: Scope) -> None:
    """Set ``scope`` for the transaction just begun on ``dbapi_connection`` (a psycopg
    connection): one statement, straight to the driver; nothing when the scope is empty (the
    settings start every transaction unset).

    A connection with no transaction open yet (psycopg sends its ``BEGIN`` before the first
    statement, a round trip of its own) gets ``BEGIN`` and the statement in one round trip: one
    simple query, the values quoted by libpq's ``PQescapeLiteral`` for this connection's
    encoding. The connection is then in the transaction, so psycopg sends no ``BEGIN`` of its own,
    and commits or rolls back as usual."""
    if scope.user_id:
        statement, value = _USER, {"user": scope.user_id}
    elif scope.service:
        statement, value = _SERVICE, {"name": scope.service}
    elif scope.flow:
        statement, value = _FLOW, {"name": scope.flow}
    else:
        return
    pgconn = dbapi_connection.pgconn
    if dbapi_connection.autocommit or pgconn.transaction_status != pq.TransactionStatus.IDLE:
        dbapi_connection.execute(statement, value)
        return
    encoding = dbapi_connection.info.encoding
    escaping = pq.Escaping(pgconn)
    literals = {name: escaping.escape_literal(text.encode(encoding)).decode(encoding)
                for name, text in value.items()}
    run_simple(dbapi_connection, "BEGIN; " + statement % literals)


class BypassingRole(RuntimeError):
    """Production connected as a role that row-level security does not bind."""


ROLE_QUERY = "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"


def refuse_bypassing_role(dbapi_connection: Any) -> None:
    """Raise ``BypassingRole`` when the connection's role is a superuser or has BYPASSRLS: the
    policies would not apply to it (FORCE binds the owner, never those)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(ROLE_QUERY)
        superuser, bypass = cursor.fetchone()
    finally:
        cursor.close()
    if superuser or bypass:
        raise BypassingRole(
            "the database role is a superuser or has BYPASSRLS: row-level security would not "
            "apply; production refuses it (connect as the tables' owner or a lesser role)"
        )
