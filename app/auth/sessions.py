"""Login sessions: an access token plus an opaque refresh token, grouped in families.

A family (``sid`` in the access token) is one login. Every refresh spends the presented token and
issues the next one of the same family; presenting a spent token again means it was copied, so
the whole family is revoked (and audited) and the caller must log in again.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import insert, null, select, update

from app import audit
from app.auth.permissions import effective_permissions
from app.auth.tokens import AccessTokens
from app.db import db, new_id, utcnow
from app.gateway.errors import Unauthorized
from app.models import RefreshToken, User

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenPair:
    token: str
    expires_in: int
    refresh_token: str
    user: User
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type name


_SQL_NULL = null()  # SQL NULL in a JSON column (a bare None would be stored as JSON null)
_INSERT_REFRESH = insert(RefreshToken.__table__)  # type: ignore[arg-type]


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# Per-token mechanics, not statements about the user: not kept with the session.
_TOKEN_MECHANICS = frozenset({"nonce", "at_hash", "c_hash"})


def session_claims(claims: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a session keeps of the verified ID-token claims it was opened with."""
    if claims is None:
        return None
    return {name: value for name, value in claims.items() if name not in _TOKEN_MECHANICS}


def _mint_pair(user: User, family_id: str, claims: dict[str, Any] | None) -> TokenPair:
    """A refresh token of ``family_id`` and an access token; ``claims`` are the family's login
    claims, stored with the refresh token and given to the ``permissions_for_user`` plugins."""
    refresh = secrets.token_urlsafe(32)
    ttl = int(current_app.config["AUTH_REFRESH_TOKEN_TTL_SECONDS"])
    now = utcnow()
    # A plain INSERT (nothing reads the row back in this request): no unit-of-work flush.
    db.session.execute(_INSERT_REFRESH, {
        "id": new_id("rt"), "user_id": user.id, "family_id": family_id,
        "token_hash": hash_token(refresh), "created_at": now,
        "expires_at": now + timedelta(seconds=ttl),
        "login_claims": _SQL_NULL if claims is None else claims,
    })
    tokens: AccessTokens = current_app.extensions["hearthgate.tokens"]
    minted = tokens.mint({
        "sub": user.id,
        "email": user.email,
        "name": user.name,
        "permissions": effective_permissions(user, claims),
        "sid": family_id,
    })
    return TokenPair(token=minted.token, expires_in=minted.expires_in, refresh_token=refresh,
                     user=user)


def start_session(user: User, method: str, claims: dict[str, Any] | None = None) -> TokenPair:
    """A new family for ``user``; audited as a successful login in the same transaction.

    ``claims``: the verified ID-token claims of this login (None for local accounts); the family
    keeps them, so every refresh derives the permissions from the same claims as the login.
    """
    family_id = new_id("rtf")
    pair = _mint_pair(user, family_id, session_claims(claims))
    audit.record("auth.login", resource=f"user:{user.id}", principal_id=user.id,
                 details={"method": method, "sessionId": family_id})
    return pair


def _deny(reason: str, principal_id: str | None = None) -> Unauthorized:
    audit.record_denial("auth.refresh", principal_id=principal_id, details={"reason": reason})
    return Unauthorized("Invalid refresh token", invalid_token=True)


def rotate(presented: str) -> TokenPair:
    """Spend ``presented`` and return the next pair of its family."""
    session = db.session
    row = session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == hash_token(presented))
    ).first()
    now = utcnow()
    if row is None:
        raise _deny("unknown")
    if row.revoked_at is not None:
        raise _deny("revoked", row.user_id)
    if row.used_at is not None:
        _revoke_on_reuse(row)
        raise Unauthorized("Invalid refresh token", invalid_token=True)
    if row.expires_at <= now:
        raise _deny("expired", row.user_id)
    # Conditional update: of two concurrent refreshes with one token, exactly one wins.
    spent = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None),
               RefreshToken.revoked_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        _revoke_on_reuse(row)
        raise Unauthorized("Invalid refresh token", invalid_token=True)
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        session.rollback()
        raise _deny("user disabled", row.user_id)
    pair = _mint_pair(user, row.family_id, row.login_claims)
    audit.record("auth.refresh", resource=f"user:{user.id}", principal_id=user.id,
                 details={"sessionId": row.family_id})
    return pair


def _revoke_on_reuse(row: RefreshToken) -> None:
    """A spent token came back: revoke the family and commit that before refusing."""
    session = db.session
    revoke_family(row.user_id, row.family_id)
    audit.record("auth.refresh.reuse", resource=f"user:{row.user_id}", decision="denied",
                 principal_id=row.user_id,
                 details={"reason": "refresh token reused", "sessionId": row.family_id})
    session.commit()
    log.warning("refresh token reuse detected; session %s revoked", row.family_id)


def revoke_family(user_id: str, family_id: str) -> int:
    result = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.family_id == family_id,
               RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def revoke_all(user_id: str) -> int:
    result = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
