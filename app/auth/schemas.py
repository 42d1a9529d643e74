"""Request and response bodies of the auth endpoints."""

from __future__ import annotations

from pydantic import Field

from app.gateway.schemas import Body, Schema


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
