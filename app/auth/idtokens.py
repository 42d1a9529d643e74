"""OpenID Connect ID-token verification with joserfc against the provider's JWKS.

Checks, in order: size, shape, header (algorithm on the asymmetric allow-list, no ``jku``,
``x5u``, ``jwk``, ``x5c`` or ``crit``), a key of the provider for the ``kid``, the signature, then
the claims: ``iss`` exact, ``aud`` holding the client id (``azp`` when present or when there are
several audiences), ``exp``/``iat`` required, ``nbf`` honoured, all with the leeway, ``sub``
required, and ``nonce`` when the client sent one.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.auth.oidc_keys import ProviderKeys

MAX_ID_TOKEN_LENGTH = 8192
ASYMMETRIC_ALGORITHMS = frozenset({
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    "Ed25519",
})
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})


class IdTokenError(Exception):
    """The ID token is not acceptable (the reason goes to the audit log, never to the client)."""


def _segment(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise IdTokenError("bad base64") from None


def read_header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise IdTokenError("not a compact JWS")
    try:
        header = json.loads(_segment(parts[0]))
    except (ValueError, UnicodeDecodeError):
        raise IdTokenError("header is not JSON") from None
    if not isinstance(header, dict):
        raise IdTokenError("header is not an object")
    return header


class IdTokenVerifier:
    def __init__(self, keys: ProviderKeys, audience: str, leeway: int) -> None:
        self.keys = keys
        self.issuer = keys.issuer
        self.audience = audience
        self.leeway = leeway
        self._registry = self._claims_registry(None)  # reads the clock at every validate()

    def allowed_algorithms(self) -> set[str]:
        offered = self.keys.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        return {alg for alg in offered if alg in ASYMMETRIC_ALGORITHMS}

    def verify(
        self, token: str, nonce: str | None = None, now: int | None = None
    ) -> dict[str, Any]:
        if len(token) > MAX_ID_TOKEN_LENGTH:
            raise IdTokenError("token too long")
        header = read_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.allowed_algorithms():
            raise IdTokenError("algorithm not allowed")
        if FORBIDDEN_HEADERS & set(header):
            raise IdTokenError("forbidden header parameter")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > 200):
            raise IdTokenError("bad kid")
        key = self._key_for(alg, kid)
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
        except (JoseError, ValueError, TypeError) as exc:
            raise IdTokenError(f"signature: {type(exc).__name__}") from None
        claims = dict(decoded.claims)
        self._check_claims(claims, nonce, now)
        return claims

    def _key_for(self, alg: str, kid: str | None) -> Any:
        kty = KEY_TYPES[alg[:2]]
        keys: KeySet = self.keys.key_set_with(kid) if kid else self.keys.key_set()
        candidates = [
            key for key in keys.keys
            if key.key_type == kty and (kid is None or key.kid == kid)
            and key.get("alg") in (None, alg)
        ]
        if len(candidates) != 1:
            raise IdTokenError("no single provider key for this kid")
        return candidates[0]

    def _claims_registry(self, now: int | None) -> jwt.JWTClaimsRegistry:
        return jwt.JWTClaimsRegistry(
            now=now,
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )

    def _check_claims(self, claims: dict[str, Any], nonce: str | None, now: int | None) -> None:
        registry = self._registry if now is None else self._claims_registry(now)
        try:
            registry.validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise IdTokenError(f"claims: {type(exc).__name__}") from None
        if not claims["sub"] or len(claims["sub"]) > 255:
            raise IdTokenError("bad sub")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (azp is not None or len(audiences) > 1) and azp != self.audience:
            raise IdTokenError("azp is not this client")
        if nonce is not None:
            offered = claims.get("nonce")
            if not isinstance(offered, str) or not hmac.compare_digest(offered, nonce):
                raise IdTokenError("nonce mismatch")
