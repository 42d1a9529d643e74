"""Hyperbeam webhooks, signed the Standard Webhooks way (https://www.standardwebhooks.com/).

Written here rather than taken from the ``standardwebhooks`` package so that the tests can use
that package as an independent signer; the scheme itself is a few lines of stdlib HMAC:

* signed content: the raw bytes ``{webhook-id}.{webhook-timestamp}.{body}``;
* ``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` (other versions ignored);
* secrets: ``whsec_<base64>`` or raw; several are tried during a rotation;
* ``webhook-timestamp``: unix seconds, at most five minutes off, either way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from app.hookspecs import hookimpl
from app.hooktypes import Verifier, WebhookRejected

TOLERANCE_SECONDS = 5 * 60
SECRET_PREFIX = "whsec_"  # noqa: S105 - a format marker
MAX_ID_LENGTH = 255
MAX_SIGNATURES = 20


def secret_bytes(secret: str) -> bytes:
    if secret.startswith(SECRET_PREFIX):
        try:
            encoded = secret[len(SECRET_PREFIX):].rstrip("=")
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            raise WebhookRejected("a configured whsec_ secret is not base64") from None
    return secret.encode()


def _usable_keys(secrets: Sequence[str]) -> list[bytes]:
    keys = []
    for secret in secrets:
        try:
            keys.append(secret_bytes(secret))
        except WebhookRejected:
            continue
    return keys


def _offered_signatures(header: str) -> list[bytes]:
    offered = []
    for part in header.split(" ")[:MAX_SIGNATURES]:
        version, _, encoded = part.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            offered.append(base64.b64decode(encoded, validate=True))
        except binascii.Error:
            continue
    return offered


def verify(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: int) -> str:
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signature = headers.get("webhook-signature", "")
    if not webhook_id or not timestamp or not signature:
        raise WebhookRejected("missing webhook headers")
    if len(webhook_id) > MAX_ID_LENGTH or not webhook_id.isprintable():
        raise WebhookRejected("malformed webhook-id")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise WebhookRejected("malformed webhook-timestamp")
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise WebhookRejected("webhook-timestamp outside the tolerance")
    if not secrets:
        raise WebhookRejected("no signing secret configured")
    signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + body
    # A malformed secret is refused at start (startup_checks) and skipped here: one bad value
    # during a rotation must not reject deliveries signed with a good one.
    expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in _usable_keys(secrets)]
    offered = _offered_signatures(signature)
    matched = False
    for candidate in offered:  # no early exit: every pair is compared
        for digest in expected:
            matched |= hmac.compare_digest(candidate, digest)
    if not matched:
        raise WebhookRejected("no valid signature")
    return webhook_id


@hookimpl
def startup_checks(config: dict[str, Any]) -> list[str]:
    secrets = config.get("HYPERBEAM_EVENT_SIGNING_SECRET") or []
    if len(_usable_keys(secrets)) < len(secrets):
        return ["HYPERBEAM_EVENT_SIGNING_SECRET has a whsec_ value that is not valid base64"]
    return []


@hookimpl
def webhook_verifiers(app: Any) -> dict[str, Verifier]:
    return {"hyperbeam": verify}
