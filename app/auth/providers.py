"""The login request body; the contract of a login provider (``login_providers`` hook) is
``app.hooktypes.LoginProvider``."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from app.gateway.schemas import Body
from app.hooktypes import LoginProvider
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


# The plugins' providers (hook login_providers), in order: a login goes to the first that accepts.
LOGIN_PROVIDERS: Slot[list[LoginProvider]] = Slot("login_providers")
