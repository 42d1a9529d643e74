"""Structured logs carry the request id; tokens and secrets never reach a log line."""

from __future__ import annotations

import io
import json
import logging

import pytest
from flask import Flask

from app.gateway.contracts import endpoint
from app.logs import redactor


def test_json_lines_with_request_id(app: Flask) -> None:
    stream = io.StringIO()
    handler = next(h for h in logging.getLogger().handlers
                   if isinstance(h, logging.StreamHandler) and getattr(h, "_hearthgate", False))
    old_stream = handler.setStream(stream)
    try:
        @app.get("/log-probe")
        @endpoint(auth="public")
        def probe() -> None:
            logging.getLogger("probe").warning("probe line")

        app.test_client().get("/log-probe", headers={"X-Request-ID": "req-log-000001"})
    finally:
        handler.setStream(old_stream)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if "probe line" in line]
    assert lines and lines[0]["request_id"] == "req-log-000001"
    assert lines[0]["level"] == "WARNING" and lines[0]["logger"] == "probe"


def test_bearer_tokens_and_jwts_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfMSJ9.c2lnbmF0dXJlLXZhbHVl"
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("Authorization: Bearer %s", "opaque-token-abc")
        logging.getLogger("t").info("got %s", jwt)
        logging.getLogger("t").info("headers {'X-Internal-Token': 'int-token-xyz'}")
    assert "opaque-token-abc" not in caplog.text
    assert jwt not in caplog.text and "c2lnbmF0dXJl" not in caplog.text
    assert "int-token-xyz" not in caplog.text


def test_webhook_secrets_and_private_keys_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    body = pem.splitlines()[1]
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("hyperbeam secret %s rotated", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        logging.getLogger("t").info("key loaded:\n%s and then some", pem)
        logging.getLogger("t").info("half a key: %s", pem[:60])
    assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in caplog.text and "rotated" in caplog.text
    assert body not in caplog.text and "and then some" in caplog.text
    assert pem[40:60] not in caplog.text


def test_traceback_text_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    redactor.add("tb-secret-value-777")
    with caplog.at_level(logging.ERROR):
        try:
            raise ValueError("failed with tb-secret-value-777")
        except ValueError:
            logging.getLogger("t").exception("boom")
    assert "tb-secret-value-777" not in caplog.text
    assert "ValueError" in caplog.text
