"""Login sessions: an access token plus an opaque refresh token, grouped in families.

A family (``sid`` in the access token) is one login, recorded as an ``AuthSession`` row with the
time of that login (``auth_time``, carried into every access token of the family for step-up),
when it was last used, and the user agent and IP it was opened from (shown to the person, never
used to decide anything). Every refresh spends the presented token and issues the next one of the
same family. A spent token presented again within ``AUTH_REFRESH_REUSE_GRACE_SECONDS`` of its
rotation is a benign race (two tabs refreshing at once): 409, nothing revoked. Later, it means
the token was copied: the whole family is revoked (and audited) and the caller must log in again.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_request_context, request
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.sql.elements import BindParameter

from app import audit, clock
from app.auth.permissions import effective_permissions
from app.crypto.fields import encode_value
from app.db import db, new_id
from app.gateway.clientip import request_client_ip
from app.gateway.errors import Conflict, Unauthorized
from app.gateway.pagination import keyset
from app.gateway.tokens import ACCESS_TOKENS
from app.models import AuthSession, RefreshToken, User
from app.sqltypes import rows_changed, table_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenPair:
    token: str
    expires_in: int
    refresh_token: str
    user: User
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type name


_REFRESH_TABLE = table_of(RefreshToken)
_SESSION_TABLE = table_of(AuthSession)
_INSERT_SESSION = insert(_SESSION_TABLE)
USER_AGENT_LENGTH = 256
IP_LENGTH = 64

# The columns a login writes (the others keep their defaults).
_REFRESH_COLUMNS = ("id", "user_id", "family_id", "token_hash", "created_at", "expires_at",
                    "login_claims")
_SESSION_COLUMNS = ("id", "user_id", "method", "auth_time", "created_at", "last_used_at",
                    "expires_at", "ended_at", "user_agent", "ip")
_SESSION_PREFIX, _REFRESH_PREFIX = "s_", "r_"


def _bound_values(table: Table, names: tuple[str, ...], prefix: str
                  ) -> dict[str, BindParameter[Any]]:
    """Each of ``names`` as a parameter named ``prefix`` + the column's name, of its type."""
    return {name: bindparam(prefix + name, type_=table.c[name].type) for name in names}


# The token's INSERT, carried by the audit event that records it (``audit.Carried``: on
# PostgreSQL one round trip for both). Built once: each login binds its parameters, so the
# statements are not rebuilt, nor their cache keys computed again, per login.
_INSERT_REFRESH = insert(_REFRESH_TABLE).values(
    _bound_values(_REFRESH_TABLE, _REFRESH_COLUMNS, _REFRESH_PREFIX))
_CARRY_TOKEN = audit.Carried(_INSERT_REFRESH, "minted")
# PostgreSQL: a new session and its first token, the session's INSERT in a WITH clause.
_CARRY_OPENING = audit.Carried(
    _INSERT_REFRESH.add_cte(insert(_SESSION_TABLE).values(
        _bound_values(_SESSION_TABLE, _SESSION_COLUMNS, _SESSION_PREFIX)).cte("opened")),
    "minted")
Writes = tuple[audit.Carried, dict[str, Any]]


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# Per-token mechanics, not statements about the user: not kept with the session.
_TOKEN_MECHANICS = frozenset({"nonce", "at_hash", "c_hash"})


def session_claims(claims: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a session keeps of the verified ID-token claims it was opened with."""
    if claims is None:
        return None
    return {name: value for name, value in claims.items() if name not in _TOKEN_MECHANICS}


def _printable(value: str, length: int) -> str:
    """``value`` without control characters, cut to ``length`` characters (for display)."""
    return "".join(c for c in value if c.isprintable())[:length]


def _device() -> tuple[str | None, str | None]:
    """The user agent and client IP of this request, truncated: for the person's session list."""
    if not has_request_context():
        return None, None
    agent = request.headers.get("User-Agent")
    return (_printable(agent, USER_AGENT_LENGTH) if agent else None,
            _printable(request_client_ip(), IP_LENGTH))


def _mint_pair(user: User, family_id: str, claims: dict[str, Any] | None,
               auth_time: datetime, now: datetime,
               opening: dict[str, Any] | None = None) -> tuple[TokenPair, Writes]:
    """A refresh token of ``family_id`` and an access token; ``claims`` are the family's login
    claims, stored with the refresh token and given to the ``permissions_for_user`` plugins;
    ``auth_time`` is the family's login. ``opening``: the family's new session row, inserted
    first. Returns the pair and the writes that store it, for the audit event that records them
    to carry (``audit.record(..., carried=...)``): nothing is stored until then."""
    refresh = secrets.token_urlsafe(32)
    row_id = new_id("rt")
    row = {
        "id": row_id, "user_id": user.id, "family_id": family_id,
        "token_hash": hash_token(refresh), "created_at": now,
        "expires_at": now + _refresh_ttl(),
        # Plain INSERTs: no unit-of-work flush, so the claims are encrypted here (the ORM's
        # events would do it for a model).
        "login_claims": encode_value("refresh_tokens", "login_claims", row_id, claims),
    }
    params = {_REFRESH_PREFIX + name: row[name] for name in _REFRESH_COLUMNS}
    carried = _CARRY_TOKEN
    # Nothing reads the rows back in this request.
    if opening is not None and db.connection().dialect.name == "postgresql":
        carried = _CARRY_OPENING
        params.update((_SESSION_PREFIX + name, opening[name]) for name in _SESSION_COLUMNS)
    elif opening is not None:  # SQLite has no INSERT in a WITH clause: the session first
        db.session.execute(_INSERT_SESSION, opening)
    minted = ACCESS_TOKENS.get().mint({
        "sub": user.id,
        "email": user.email,
        "name": user.name,
        "permissions": effective_permissions(user, claims),
        "sid": family_id,
        "auth_time": clock.epoch(auth_time),
    })
    return TokenPair(token=minted.token, expires_in=minted.expires_in, refresh_token=refresh,
                     user=user), (carried, params)


def _refresh_ttl() -> timedelta:
    return timedelta(seconds=int(current_app.config["AUTH_REFRESH_TOKEN_TTL_SECONDS"]))


def start_session(user: User, method: str, claims: dict[str, Any] | None = None) -> TokenPair:
    """A new family for ``user``; audited as a successful login in the same transaction.

    ``claims``: the verified ID-token claims of this login (None for local accounts); the family
    keeps them, so every refresh derives the permissions from the same claims as the login.
    """
    family_id = new_id("rtf")
    now = clock.now()
    agent, ip = _device()
    opening = {
        "id": family_id, "user_id": user.id, "method": method[:40], "auth_time": now,
        "created_at": now, "last_used_at": now, "expires_at": now + _refresh_ttl(),
        "ended_at": None,
        "user_agent": encode_value("auth_sessions", "user_agent", family_id, agent),
        "ip": encode_value("auth_sessions", "ip", family_id, ip),
    }
    pair, writes = _mint_pair(user, family_id, session_claims(claims), now, now, opening)
    audit.record("auth.login", resource=f"user:{user.id}", principal_id=user.id,
                 details={"method": method, "sessionId": family_id}, carried=writes)
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
    now = clock.now()
    if row is None:
        raise _deny("unknown")
    if row.revoked_at is not None:
        raise _deny("revoked", row.user_id)
    if row.used_at is not None:
        raise _spent_again(row, now)
    if row.expires_at <= now:
        raise _deny("expired", row.user_id)
    # Lock order, as logout and ending a session take it: the session's row, then its tokens.
    session.execute(select(AuthSession.id).where(AuthSession.id == row.family_id)
                    .with_for_update(key_share=True))
    # Conditional update: of two concurrent refreshes with one token, exactly one wins.
    spent = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None),
               RefreshToken.revoked_at.is_(None))
        .values(used_at=now)
    )
    if rows_changed(spent) != 1:
        # Another refresh spent it (or a revocation ended it) a moment ago: read what it did.
        session.rollback()
        again = session.get(RefreshToken, row.id)
        if again is None or again.revoked_at is not None or again.used_at is None:
            raise _deny("revoked", row.user_id)
        raise _spent_again(again, clock.now())
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        session.rollback()
        raise _deny("user disabled", row.user_id)
    login = session.get(AuthSession, row.family_id)
    auth_time = login.auth_time if login is not None else row.created_at
    if login is not None:
        login.last_used_at = now
        login.expires_at = now + _refresh_ttl()
    pair, writes = _mint_pair(user, row.family_id, row.login_claims, auth_time, now)
    audit.record("auth.refresh", resource=f"user:{user.id}", principal_id=user.id,
                 details={"sessionId": row.family_id}, carried=writes)
    return pair


def _spent_again(row: RefreshToken, now: datetime) -> Exception:
    """A spent token came back. Within the reuse grace of its rotation: 409 and nothing revoked
    (another tab of the same person refreshed at the same moment; its new pair stays valid).
    After it: the token was copied, so the family is revoked."""
    grace = int(current_app.config["AUTH_REFRESH_REUSE_GRACE_SECONDS"])
    assert row.used_at is not None  # noqa: S101 - called for spent tokens only
    if grace > 0 and now - row.used_at <= timedelta(seconds=grace):
        db.session.rollback()
        audit.record_denial("auth.refresh", principal_id=row.user_id,
                            details={"reason": "spent within the reuse grace",
                                     "sessionId": row.family_id})
        return Conflict("This refresh token was just used: use the newest one")
    _revoke_on_reuse(row)
    return Unauthorized("Invalid refresh token", invalid_token=True)


def _revoke_on_reuse(row: RefreshToken) -> None:
    """A spent token came back: revoke the family and commit that before refusing."""
    session = db.session
    revoke_family(row.user_id, row.family_id)
    audit.record("auth.refresh.reuse", resource=f"user:{row.user_id}", decision="denied",
                 principal_id=row.user_id,
                 details={"reason": "refresh token reused", "sessionId": row.family_id})
    session.commit()
    log.warning("refresh token reuse detected; session %s revoked", row.family_id)


def end(user_id: str, family_id: str) -> int | None:
    """End one live session of ``user_id`` exactly once, as ``revoke_family`` does; ``None`` when
    it is not a live session of theirs (unknown, someone else's, ended, or ended meanwhile by a
    concurrent call: the conditional update lets one caller win)."""
    now = clock.now()
    ended = db.session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.id == family_id,
               AuthSession.ended_at.is_(None), AuthSession.expires_at > now)
        .values(ended_at=now)
    )
    if rows_changed(ended) != 1:
        return None
    return revoke_family(user_id, family_id)


def revoke_family(user_id: str, family_id: str) -> int:
    """End one session of ``user_id``: its refresh tokens stop working at once (its access
    tokens at their ``exp``). Returns how many tokens were revoked."""
    now = clock.now()
    db.session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.id == family_id,
               AuthSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    result = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.family_id == family_id,
               RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return rows_changed(result)


def revoke_all(user_id: str) -> int:
    """End every session of ``user_id`` (logout everywhere, a password change or reset)."""
    now = clock.now()
    db.session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    result = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return rows_changed(result)


# The user's sessions that can still be refreshed, newest first (app.fastread).
LIVE_SESSIONS = keyset(
    select(AuthSession.id, AuthSession.created_at, AuthSession.last_used_at,
           AuthSession.user_agent, AuthSession.ip)
    .where(AuthSession.user_id == bindparam("user_id"), AuthSession.ended_at.is_(None),
           AuthSession.expires_at > bindparam("now", type_=AuthSession.expires_at.type)),
    AuthSession.created_at, AuthSession.id, newest_first=True)
