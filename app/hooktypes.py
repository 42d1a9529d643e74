"""The types the hook specifications name: what a login provider and a webhook verifier are.

They live below every feature package so that ``app.hookspecs`` (imported by the plugin manager,
which every layer reaches) can name them without importing upward; ``app.auth.providers`` and
``app.webhooks.verification`` use them from here, and ``app.plugin_api`` offers them to plugins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.models import User


class LoginBody(Protocol):
    """The fields of a ``POST /api/auth/login`` body that a provider reads, validated by
    ``app.auth.providers.LoginIn``: an ``idToken``, or an ``email`` with a ``password``."""

    @property
    def id_token(self) -> str | None: ...

    @property
    def nonce(self) -> str | None: ...

    @property
    def email(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...


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

    def accepts(self, body: LoginBody) -> bool:
        """Whether this provider handles ``body`` (e.g. it carries an ``idToken``)."""

    def account_of(self, body: LoginBody) -> str | None:
        """The account a failed attempt counts against (for throttling), if any."""

    def authenticate(self, body: LoginBody) -> Identity:
        """Verify ``body`` and return the identity, or raise ``LoginFailed``."""


class WebhookRejected(Exception):
    """The delivery is not authentic or not fresh; never say which to the sender."""


class Verifier(Protocol):
    def __call__(
        self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: int
    ) -> str:
        """Return the delivery id of an authentic, fresh delivery, else raise WebhookRejected."""
        ...  # pragma: no cover
