"""Request and response bodies of the auth endpoints."""

from __future__ import annotations

from pydantic import Field

from app.gateway.schemas import Body, Schema, Timestamp


class UserOut(Schema):
    id: str
    email: str | None
    name: str


class TokenOut(Schema):
    token: str
    token_type: str
    expires_in: int
    refresh_token: str
    user: UserOut


class RefreshIn(Body):
    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutIn(Body):
    all: bool = False


class MeOut(Schema):
    id: str
    email: str | None
    name: str | None
    permissions: list[str]
    email_verified: bool = False


class SessionOut(Schema):
    """A login session (refresh family) of the caller; ``id`` equals access tokens' ``sid``."""

    id: str
    created_at: Timestamp
    last_used_at: Timestamp
    user_agent: str | None
    ip: str | None
    current: bool


class SessionPage(Schema):
    items: list[SessionOut]
    next_cursor: str | None = None
