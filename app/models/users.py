from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id, utcnow
from app.models.sealed import Sealed


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "usr"))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # The identity provider's (iss, sub); local accounts use issuer "local".
    issuer: Mapped[str | None] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(default=False)
    # When the address in ``email`` was proved to be this person's: the link mailed at
    # registration (local accounts) or the provider's ``email_verified`` claim (OIDC). NULL: not
    # proved, so no invitation to that address can be accepted with this account.
    email_verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RefreshToken(Base):
    """An opaque refresh token, stored as a SHA-256 hash; ``family_id`` is the login session."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_family", "family_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "rt"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(40))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # The verified ID-token claims the family was opened with (None for local accounts), copied to
    # every rotation: the permissions_for_user plugins see the same claims at every refresh.
    login_claims: Mapped[dict[str, Any] | None] = mapped_column(Sealed)


class AuthSession(Base):
    """A login session: one refresh-token family (``id`` is the family id, the access token's
    ``sid``). ``auth_time`` is the login that opened it and stays through refreshes (step-up);
    ``user_agent`` and ``ip`` are shown to the person only, never used to decide anything."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_user_page", "user_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(40))
    auth_time: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The newest refresh token's expiry: past it, the session is over.
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    user_agent: Mapped[str | None] = mapped_column(Sealed)
    ip: Mapped[str | None] = mapped_column(Sealed)
