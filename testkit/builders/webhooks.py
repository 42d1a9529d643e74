"""Hyperbeam webhook deliveries signed by an independent implementation (PyPI
``standardwebhooks``), for the webhook tests and every sweep that posts a valid event."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"hyperbeam-signing-key-0123456789ab").decode()
"""The signing secret the tests configure (``HYPERBEAM_EVENT_SIGNING_SECRET``)."""


def signed(body: bytes, secret: str | bytes = SECRET, msg_id: str = "msg_1",
           at: int | None = None, signer_body: bytes | None = None) -> dict[str, str]:
    """The headers of a delivery of ``body`` (``signer_body`` signed instead when given)."""
    timestamp = int(time.time()) if at is None else at
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC),
                                     (signer_body or body).decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature, "Content-Type": "application/json"}


def event_body(intent_id: str | None = "pi_" + "0" * 26, **extra: Any) -> bytes:
    return json.dumps({"type": "session.started", "intentId": intent_id,
                       "data": {"sessionId": "hb_1"}, **extra}).encode()
