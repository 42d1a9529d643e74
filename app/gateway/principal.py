"""Who is calling: bearer verification (once per request) into a ``Principal``, and
``X-Internal-Token`` checks for machine-to-machine routes."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

from flask import current_app, g, request

from app.context import Principal
from app.gateway.errors import Unauthorized
from app.gateway.tokencache import VERIFIED_TOKENS
from app.gateway.tokens import TokenError
from app.state import Slot

log = logging.getLogger(__name__)

INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 - a header name

# The caller of a request without a token, set only while DEVELOPMENT_AUTH_ENABLED (app.auth.dev).
DEVELOPMENT_PRINCIPAL: Slot[Callable[[], Principal]] = Slot("dev_principal")


def authenticate_bearer() -> Principal:
    """Verify the bearer token, or act as the development user when that is enabled."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        dev = DEVELOPMENT_PRINCIPAL.find()
        if dev is not None:
            principal: Principal = dev()
            g.principal = principal
            return principal
        raise Unauthorized("Missing bearer token")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Malformed Authorization header", invalid_token=True)
    try:
        principal = VERIFIED_TOKENS.get().principal(token.strip())
    except TokenError as exc:
        log.info("bearer token rejected: %s", exc)
        raise Unauthorized("Invalid or expired token", invalid_token=True) from None
    g.principal = principal
    return principal


def check_internal_token(setting: str, required_flag: str) -> bool:
    """Compare ``X-Internal-Token`` in constant time with every configured value of ``setting``;
    ``True`` when one matched (an authenticated service call).

    When ``required_flag`` is off (development) a missing token is tolerated (``False``: the call
    is anonymous), but a wrong one never.
    """
    offered = request.headers.get(INTERNAL_TOKEN_HEADER, "")
    accepted: list[str] = current_app.config.get(setting) or []
    if not offered:
        if current_app.config.get(required_flag):
            raise Unauthorized("Missing internal token")
        return False
    matched = False
    for value in accepted:  # no early exit: every value is compared
        matched |= hmac.compare_digest(offered.encode(), str(value).encode())
    if not matched:
        raise Unauthorized("Invalid internal token")
    return True
