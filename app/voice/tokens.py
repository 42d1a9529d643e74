"""Public voice-session tokens: short-lived, signed with itsdangerous, of their own kind.

They are not JWTs, carry their own salt and ``typ``, and are signed with ``VOICE_SESSION_SECRET``
(or a key derived from ``AUTH_JWT_SECRET`` under this salt), so a voice token never passes as an
access token and an access token never passes as a voice token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "hearthgate.voice-live-public-session"
TOKEN_TYPE = "voice-session"  # noqa: S105 - a type name


class VoiceTokenError(Exception):
    """Not a valid, unexpired voice-session token (reason for logs only)."""


@dataclass(frozen=True)
class VoiceSession:
    session_id: str
    token: str
    expires_in: int


def _serializer(config: dict[str, Any]) -> URLSafeTimedSerializer | None:
    key = config.get("VOICE_SESSION_SECRET") or config.get("AUTH_JWT_SECRET")
    if not key:
        return None
    return URLSafeTimedSerializer(str(key), salt=SALT)


def available(config: dict[str, Any]) -> bool:
    return _serializer(config) is not None


def mint(config: dict[str, Any]) -> VoiceSession:
    serializer = _serializer(config)
    if serializer is None:
        raise VoiceTokenError("no signing key configured")
    session_id = "vs_" + secrets.token_urlsafe(16)
    ttl = int(config["VOICE_SESSION_TTL_SECONDS"])
    token = serializer.dumps({"typ": TOKEN_TYPE, "sid": session_id, "ttl": ttl})
    return VoiceSession(session_id=session_id, token=token, expires_in=ttl)


def verify(config: dict[str, Any], token: str) -> dict[str, Any]:
    """The claims of a valid voice token (for the voice service sharing the key)."""
    serializer = _serializer(config)
    if serializer is None:
        raise VoiceTokenError("no signing key configured")
    try:
        claims = serializer.loads(token, max_age=int(config["VOICE_SESSION_TTL_SECONDS"]))
    except SignatureExpired:
        raise VoiceTokenError("expired") from None
    except BadSignature:
        raise VoiceTokenError("bad signature") from None
    if not isinstance(claims, dict) or claims.get("typ") != TOKEN_TYPE:
        raise VoiceTokenError("not a voice-session token")
    return claims
