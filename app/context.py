"""Request-scoped context that every layer may read: this request's id and the caller
(``Principal``, the type the gateway makes of a verified bearer token).

The gateway's WSGI layer (``app/gateway/headers.py``) assigns the id; logging, error bodies and
the audit trail read it from here, below the gateway, so that they need not import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import has_request_context, request

REQUEST_ID_KEY = "hearthgate.request_id"


def request_id() -> str | None:
    """This request's id (the caller's sane ``X-Request-ID`` or a new one), else ``None``."""
    if not has_request_context():
        return None
    value: str | None = request.environ.get(REQUEST_ID_KEY)
    return value


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str | None
    name: str | None
    permissions: frozenset[str] = field(default_factory=frozenset)
    session_id: str | None = None
    kind: str = "user"  # "user" or "service"
    auth_time: int | None = None  # unix seconds of the login that opened the session


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """The caller named by a verified access token's claims."""
    return Principal(
        user_id=str(claims["sub"]),
        email=claims.get("email"),
        name=claims.get("name"),
        permissions=frozenset(str(p) for p in claims.get("permissions", [])),
        session_id=claims.get("sid"),
        auth_time=_auth_time(claims.get("auth_time")),
    )


def _auth_time(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
