"""Internal access tokens (RFC 9068 ``at+jwt``): minting and verification with joserfc.

The verifier accepts exactly the configured algorithm, issuer and audience and the ``at+jwt``
type, so an ID token, a refresh token or another issuer's JWT never passes as an access token.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey, import_key

from app.config import ConfigurationRefused
from app.state import Slot

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JOSE type name
ASYMMETRIC = {"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP", "Ed25519": "OKP"}
# RFC 9864 deprecates the polymorphic "EdDSA" name (joserfc warns on it): tokens carry the
# fully specified "Ed25519" whichever of the two names is configured.
JOSE_NAMES = {"EdDSA": "Ed25519"}
MAX_TOKEN_LENGTH = 8192


PEM_END = "-----END PUBLIC KEY-----"


def split_pems(value: str | None) -> list[str]:
    """Several concatenated PEM public keys, one string each."""
    if not value:
        return []
    return [part.strip() + "\n" + PEM_END + "\n" for part in value.split(PEM_END) if part.strip()]


def _import_key(pem: str, algorithm: str, setting: str) -> Any:
    """The key of a PEM setting; one that does not parse refuses the start, naming the setting
    (never its value)."""
    try:
        return import_key(pem, ASYMMETRIC[algorithm])  # type: ignore[call-overload]
    except (ValueError, TypeError):
        raise ConfigurationRefused(
            [f"{setting} is not a key in PEM for AUTH_JWT_ALGORITHM={algorithm}"]
        ) from None


class TokenError(Exception):
    """The token is not a valid access token of this service (the reason is for logs only)."""


@dataclass(frozen=True)
class Minted:
    token: str
    expires_in: int
    jti: str


class AccessTokens:
    """Mints and verifies this service's access tokens."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.algorithm: str = JOSE_NAMES.get(config["AUTH_JWT_ALGORITHM"],
                                             config["AUTH_JWT_ALGORITHM"])
        self.issuer: str = config["AUTH_JWT_ISSUER"]
        self.audience: str = config["AUTH_JWT_AUDIENCE"]
        self.ttl: int = config["AUTH_ACCESS_TOKEN_TTL_SECONDS"]
        self.leeway = 0
        self.public_keys: list[dict[str, Any]] = []
        if self.algorithm == "HS256":
            secret = config.get("AUTH_JWT_SECRET")
            if not secret:
                raise ConfigurationRefused(
                    ["AUTH_JWT_SECRET is unset while AUTH_JWT_ALGORITHM is HS256"]
                )
            self.signing_key: Any = OctKey.import_key(secret)
            self.kid: str | None = None
            self.verify_keys: Any = self.signing_key
        elif self.algorithm in ASYMMETRIC:
            pem = config.get("AUTH_JWT_PRIVATE_KEY")
            if not pem:
                raise ConfigurationRefused(
                    [f"AUTH_JWT_PRIVATE_KEY is unset for AUTH_JWT_ALGORITHM={self.algorithm}"]
                )
            self.signing_key = _import_key(pem, self.algorithm, "AUTH_JWT_PRIVATE_KEY")
            self.signing_key.ensure_kid()
            self.kid = self.signing_key.kid
            public = [self.signing_key.as_dict(private=False)]
            for previous in split_pems(config.get("AUTH_JWT_PREVIOUS_PUBLIC_KEYS")):
                key = _import_key(previous, self.algorithm, "AUTH_JWT_PREVIOUS_PUBLIC_KEYS")
                key.ensure_kid()
                if key.kid != self.kid:
                    public.append(key.as_dict(private=False))
            for jwk in public:
                jwk.update({"alg": self.algorithm, "use": "sig"})
            self.public_keys = public
            self.verify_keys = KeySet.import_key_set({"keys": public})
        else:
            raise ConfigurationRefused([f"AUTH_JWT_ALGORITHM {self.algorithm} is not supported"])

    def jwks(self) -> dict[str, Any]:
        """The public keys (current first, then previous ones) for ``/.well-known/jwks.json``."""
        return {"keys": [dict(key) for key in self.public_keys]}

    def mint(self, claims: dict[str, Any], now: int | None = None) -> Minted:
        now = int(time.time()) if now is None else now
        jti = secrets.token_urlsafe(16)
        payload = {
            **claims,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.ttl,
            "jti": jti,
        }
        header: dict[str, Any] = {"alg": self.algorithm, "typ": ACCESS_TOKEN_TYPE}
        if self.kid:
            header["kid"] = self.kid
        token = jwt.encode(header, payload, self.signing_key, algorithms=[self.algorithm])
        return Minted(token=token, expires_in=self.ttl, jti=jti)

    def verify(self, token: str, now: int | None = None) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("token too long")
        try:
            decoded = jwt.decode(token, self.verify_keys, algorithms=[self.algorithm])
        except (JoseError, ValueError, TypeError) as exc:
            raise TokenError(type(exc).__name__) from None
        if decoded.header.get("typ") != ACCESS_TOKEN_TYPE:
            raise TokenError("not an access token")
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise TokenError(type(exc).__name__) from None
        if not isinstance(decoded.claims.get("permissions", []), list):
            raise TokenError("permissions is not a list")
        return dict(decoded.claims)


ACCESS_TOKENS: Slot[AccessTokens] = Slot("tokens")
