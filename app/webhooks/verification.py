"""The webhook verifiers that plugins supply (hook ``webhook_verifiers``; the contract is
``app.hooktypes.Verifier``).

A verifier checks a delivery's signature over the raw body, before anything parses it, and
returns the delivery id; any failure raises ``WebhookRejected`` (the reason is for logs only).
"""

from __future__ import annotations

from flask import Flask

from app.hooktypes import Verifier
from app.plugins import hook
from app.state import Slot

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
