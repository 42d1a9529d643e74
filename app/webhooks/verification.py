"""The webhook-verifier contract that plugins implement (hook ``webhook_verifiers``).

A verifier checks a delivery's signature over the raw body, before anything parses it, and
returns the delivery id; any failure raises ``WebhookRejected`` (the reason is for logs only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from flask import Flask

from app.plugins import hook
from app.state import Slot


class WebhookRejected(Exception):
    """The delivery is not authentic or not fresh; never say which to the sender."""


class Verifier(Protocol):
    def __call__(
        self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: int
    ) -> str:
        """Return the delivery id of an authentic, fresh delivery, else raise WebhookRejected."""
        ...  # pragma: no cover


VERIFIERS: Slot[dict[str, Verifier]] = Slot("webhook_verifiers")  # filled on first use


def verifiers(app: Flask) -> dict[str, Verifier]:
    """Every plugin's verifiers by provider name, collected once per application."""
    found = VERIFIERS.find(app)
    if found is None:
        found = {}
        for provided in hook(app).webhook_verifiers(app=app):
            found.update(provided or {})
        VERIFIERS.set(app, found)
    return found
