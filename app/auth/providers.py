"""The contract of a login provider (``login_providers`` hook) and the login request body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ConfigDict, Field, model_validator

from app.gateway.schemas import Body
from app.models import User
from app.state import Slot


class LoginIn(Body):
    # The rule of one_way_to_log_in, stated in the OpenAPI document as well.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["idToken"],
                    "properties": {
                        "idToken": {"type": "string"}, "email": {"type": "null"},
                        "password": {"type": "null"},
                    },
                },
                {
                    "required": ["email", "password"],
                    "properties": {
                        "email": {"type": "string"}, "password": {"type": "string"},
                        "idToken": {"type": "null"},
                    },
                },
            ]
        }
    )

    # No length cap here: an oversized token is a token defect (401), not a schema error.
    id_token: str | None = Field(default=None, min_length=1)
    nonce: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, min_length=3, max_length=320)
    password: str | None = Field(default=None, min_length=1, max_length=1024)

    @model_validator(mode="after")
    def one_way_to_log_in(self) -> LoginIn:
        if self.id_token is None and (self.email is None or self.password is None):
            raise ValueError("send idToken, or email and password")
        if self.id_token is not None and (self.email is not None or self.password is not None):
            raise ValueError("send idToken or email and password, not both")
        return self


@dataclass(frozen=True)
class Identity:
    """A verified login: the user (created or updated) and what the provider said."""

    user: User
    method: str
    claims: dict[str, Any] | None = None
    account: str | None = None


class LoginFailed(Exception):
    """Verification failed; ``reason`` is audited, never shown to the client."""

    def __init__(self, reason: str, account: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.account = account


class LoginProvider(Protocol):
    name: str

    def accepts(self, body: LoginIn) -> bool:
        """Whether this provider handles ``body`` (e.g. it carries an ``idToken``)."""

    def account_of(self, body: LoginIn) -> str | None:
        """The account a failed attempt counts against (for throttling), if any."""

    def authenticate(self, body: LoginIn) -> Identity:
        """Verify ``body`` and return the identity, or raise ``LoginFailed``."""


# The plugins' providers (hook login_providers), in order: a login goes to the first that accepts.
LOGIN_PROVIDERS: Slot[list[LoginProvider]] = Slot("login_providers")
