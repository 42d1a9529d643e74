"""Public voice sessions: a short-lived signed token of its own kind, and the declared limit."""

from __future__ import annotations

import time

import limits
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.voice import tokens
from app.voice.routes import VOICE_RATE_LIMIT
from testkit.builders.families import build_family
from testkit.builders.households import json_object, snapshot
from testkit.typing import MakeApp

URL = "/api/voice/live/public-session"


def test_mints_a_session_token(client: FlaskClient, app: Flask) -> None:
    r = client.post(URL)
    assert r.status_code == 201
    body = r.get_json()
    assert set(body) == {"sessionId", "token", "expiresIn"}
    assert body["expiresIn"] == app.config["VOICE_SESSION_TTL_SECONDS"] == 120
    assert r.headers["Cache-Control"] == "no-store"
    claims = tokens.verify(dict(app.config), body["token"])
    assert claims["sid"] == body["sessionId"] and claims["typ"] == "voice-session"
    assert json_object(client.post(URL))["sessionId"] != body["sessionId"]


def test_a_voice_token_is_not_a_bearer_token(make_app: MakeApp) -> None:
    app = make_app()
    family = build_family(app)
    voice = json_object(app.test_client().post(URL))["token"]
    before = snapshot(app)
    r = family.client.get(family.url(), headers={"Authorization": f"Bearer {voice}"})
    assert r.status_code == 401 and json_object(r)["error"] == "InvalidToken"
    r = family.client.post(family.url(), json={"title": "x", "amountMinor": 1, "currency": "EUR"},
                           headers={"Authorization": f"Bearer {voice}"})
    assert r.status_code == 401
    assert snapshot(app) == before


def test_an_access_token_is_not_a_voice_token(make_app: MakeApp) -> None:
    app = make_app()
    family = build_family(app)
    with pytest.raises(tokens.VoiceTokenError):
        tokens.verify(dict(app.config), family.auth.token(family.adult))


def test_voice_tokens_expire_and_resist_tampering(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    config = dict(app.config)
    minted = tokens.mint(config)
    with pytest.raises(tokens.VoiceTokenError):
        tokens.verify(config, minted.token[:-2] + ("AA" if not minted.token.endswith("AA") else "BB"))
    with pytest.raises(tokens.VoiceTokenError):
        tokens.verify({**config, "VOICE_SESSION_SECRET": "another-key"}, minted.token)
    later = time.time() + config["VOICE_SESSION_TTL_SECONDS"] + 2
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(tokens.VoiceTokenError, match="expired"):
        tokens.verify(config, minted.token)


def test_without_any_key_the_route_is_503(make_app: MakeApp) -> None:
    app = make_app()
    app.config["AUTH_JWT_SECRET"] = None
    r = app.test_client().post(URL)
    assert r.status_code == 503 and "token" not in r.get_json()


def test_the_rate_limit_is_declared_from_the_settings(make_app: MakeApp) -> None:
    app = make_app(VOICE_LIVE_PUBLIC_RATE_LIMIT_MAX_REQUESTS=3,
                   VOICE_LIVE_PUBLIC_RATE_LIMIT_WINDOW_SECONDS=30)
    operation = json_object(app.test_client().get("/api/openapi.json"))["paths"][URL]["post"]
    assert operation["x-public"] is True and operation["x-rate-limit"] == "3/30 seconds per client IP on this operation"
    item = limits.parse(VOICE_RATE_LIMIT.format(**app.config))
    assert (item.amount, item.get_expiry()) == (3, 30)
