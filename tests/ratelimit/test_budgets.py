"""Budgets (ATTACKS.md): a failed authentication is counted against the sender's client IP, never
against a victim's or a service's bucket, on every route of the application, for every kind of
credential; a coverage test fails when a route has a kind of credential this sweep does not know.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from app.db import SESSIONS
from app.gateway.tokens import ACCESS_TOKENS, AccessTokens
from app.models import WebhookEvent
from testkit.builders.families import (
    BUYFLOW_TOKEN,
    CART,
    ORCHESTRATOR_TOKEN,
    build_family,
)
from testkit.builders.households import AuthActions, json_object, snapshot
from testkit.builders.routes import EVERY_FEATURE, concrete, credential_kind, live_routes
from testkit.builders.webhooks import event_body, signed

ANONYMOUS = 3  # the anonymous (per client IP) limit in these tests
SERVICE = 50  # the service bucket (RATELIMIT_INTERNAL)
AUTHENTICATED = 50

LIMITS: dict[str, Any] = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_ANONYMOUS": f"{ANONYMOUS}/minute",
    "RATELIMIT_INTERNAL": f"{SERVICE}/minute",
    "RATELIMIT_AUTHENTICATED": f"{AUTHENTICATED}/minute",
    "WEBHOOK_RATE_LIMIT": f"{ANONYMOUS}/minute",
    "VOICE_LIVE_PUBLIC_RATE_LIMIT_MAX_REQUESTS": ANONYMOUS,
}

# Public routes and the credential each one takes in its body, if any. A public contract has no
# principal, so the limiter can only count its calls against the client IP; the sweep below shows
# that it does, with a wrong credential of the route's kind.
PUBLIC_CREDENTIALS: dict[str, str] = {
    "auth.login": "password or ID token",
    "auth.refresh": "refresh token",
    "passwords.register": "none",
    "passwords.reset_password": "none (an email address)",
    "passwords.reset_password_confirm": "reset token",
    "passwords.verify_email": "address-confirmation code",
    "oidc_flow.authorize": "none",
    "oidc_flow.callback": "state and code",
    "oidc_flow.exchange": "one-time code",
    "voice.public_session": "none",
}

# Bodies with a wrong credential, per public route (any other public route gets ``{}``).
PUBLIC_BODIES: dict[str, Any] = {
    "auth.login": {"provider": "password", "email": "victim@example.test", "password": "wrong-1"},
    "auth.refresh": {"refreshToken": "rt_forged"},
    "passwords.reset_password_confirm": {"token": "forged.reset.token", "password": "x" * 16},
    "passwords.verify_email": {"token": "forged.confirmation.code"},
    "oidc_flow.exchange": {"code": "forged-code"},
}


def send(client: FlaskClient, method: str, path: str, ip: str, **kwargs: Any) -> TestResponse:
    return client.open(path, method=method, environ_base={"REMOTE_ADDR": ip}, **kwargs)


pytestmark = pytest.mark.settings(**LIMITS, **EVERY_FEATURE)


# -- nobody spends the orchestrator's bucket with bad guesses ------------------------------------


def test_bad_internal_tokens_are_limited_per_ip_and_never_lock_the_orchestrator_out(
    app: Flask,
) -> None:
    family = build_family(app)
    pending = [family.intent(family.approved())["intentId"] for _ in range(2)]
    before = snapshot(app)
    attacker = "203.0.113.66"
    guesses = [
        ("/api/internal/purchase-intents/{}/cart-ready", "BUYFLOW"),
        ("/api/internal/purchase-intents/{}/failed", "BUYFLOW"),
        ("/api/internal/events", "ORCHESTRATOR"),
        ("/api/internal/artifacts", "ORCHESTRATOR"),
    ]
    statuses = []
    for n in range(SERVICE + 10):  # more guesses than the service's whole budget
        path, _ = guesses[n % len(guesses)]
        token = {} if n % 3 == 0 else {"X-Internal-Token": f"guess-{n:04d}-0123456789abcdef"}
        r = send(family.client, "POST", path.format(pending[0]), attacker, json={}, headers=token)
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert '"anonymous"' in r.headers["RateLimit-Policy"]
            assert json_object(r)["limit"] == ANONYMOUS
    assert statuses == [401] * ANONYMOUS + [429] * (SERVICE + 10 - ANONYMOUS)
    assert snapshot(app) == before  # the guesses changed nothing

    # The orchestrator, from anywhere (the attacker's own address included), is not locked out:
    # its bucket is untouched by the guesses.
    orchestrator = "198.51.100.20"
    r = send(family.client, "POST", f"/api/internal/purchase-intents/{pending[0]}/cart-ready",
             orchestrator, json={"actorUserId": family.adult.id, "cart": CART},
             headers={"X-Internal-Token": BUYFLOW_TOKEN})
    assert r.status_code == 200, r.data
    assert r.headers["RateLimit"] == f'"service";r={SERVICE - 1};t=' + r.headers["RateLimit"].split("t=")[1]
    r = send(family.client, "POST", f"/api/internal/purchase-intents/{pending[1]}/failed",
             attacker, json={"actorUserId": family.adult.id, "reason": "out of stock"},
             headers={"X-Internal-Token": BUYFLOW_TOKEN})
    assert r.status_code == 200, r.data
    assert r.headers["X-RateLimit-Remaining"] == str(SERVICE - 2)
    r = send(family.client, "POST", "/api/internal/events", attacker,
             json={"intentId": pending[0], "type": "page", "data": {"url": "https://shop"}},
             headers={"X-Internal-Token": ORCHESTRATOR_TOKEN})
    assert r.status_code == 202, r.data
    assert r.headers["X-RateLimit-Remaining"] == str(SERVICE - 1)  # its own token's bucket
    assert family.intent_row(pending[0]).status == "CART_READY"
    assert family.intent_row(pending[1]).status == "FAILED"
    # another address still has its own anonymous budget
    r = send(family.client, "POST", "/api/internal/events", "203.0.113.67", json={})
    assert r.status_code == 401


# -- the sweep: every route, by the kind of credential it checks ----------------------------------


def test_every_route_has_a_credential_kind_this_sweep_covers(app: Flask) -> None:
    kinds = {credential_kind(contract) for _, _, contract in live_routes(app)}
    assert kinds <= {"bearer", "internal", "signature", "public"}, kinds
    public = {rule.endpoint for rule, _, contract in live_routes(app)
              if credential_kind(contract) == "public"}
    assert public == set(PUBLIC_CREDENTIALS), (
        "a public route is new or gone: name the credential it takes in PUBLIC_CREDENTIALS"
    )
    assert {"bearer", "internal", "signature"} <= kinds  # the sweep is not empty for any kind


def _victim_remaining(app: Flask, client: FlaskClient, headers: dict[str, str]) -> int:
    r = send(client, "GET", "/api/auth/me", "198.51.100.1", headers=headers)
    assert r.status_code == 200 and '"authenticated"' in r.headers["RateLimit"]
    return int(r.headers["X-RateLimit-Remaining"])


def test_forged_bearer_tokens_spend_the_senders_ip_never_the_victims_bucket(app: Flask) -> None:
    auth = AuthActions(app)
    victim = auth.user("victim@example.test")
    genuine = auth.headers(victim)
    # Tokens that name the victim: signed with another key, expired, and none at all.
    other_key = AccessTokens({**app.config, "AUTH_JWT_SECRET": "another-key-0123456789abcdef-xx"})
    forged = other_key.mint({"sub": victim.id, "email": victim.email, "permissions": []}).token
    expired = ACCESS_TOKENS.get(app).mint(
        {"sub": victim.id, "email": victim.email, "permissions": []}, now=1_000_000_000).token
    credentials = [{"Authorization": f"Bearer {forged}"}, {"Authorization": f"Bearer {expired}"}, {}]
    client = app.test_client()
    before = snapshot(app)
    routes = [(r, m) for r, m, c in live_routes(app) if credential_kind(c) == "bearer"]
    assert len(routes) > 20
    wrong: list[tuple[str, str, object]] = []
    for n, (rule, method) in enumerate(routes):
        ip = f"10.1.{n // 250}.{n % 250 + 1}"
        got = [send(client, method, concrete(rule), ip, json={},
                    headers=credentials[i % len(credentials)]).status_code
               for i in range(ANONYMOUS + 1)]
        if got != [401] * ANONYMOUS + [429]:
            wrong.append((method, rule.rule, got))
    assert not wrong, wrong
    assert snapshot(app) == before
    # ~4 forged calls per route named the victim; the victim's bucket has lost only this read.
    assert _victim_remaining(app, client, genuine) == AUTHENTICATED - 1


def test_wrong_internal_tokens_spend_the_senders_ip_never_the_service_bucket(app: Flask) -> None:
    client = app.test_client()
    tokens = {"BUYFLOW_INTERNAL_TOKEN": BUYFLOW_TOKEN,
              "ORCHESTRATOR_INTERNAL_TOKEN": ORCHESTRATOR_TOKEN}
    spent = dict.fromkeys(tokens, 0)
    before = snapshot(app)
    routes = [(r, m, c) for r, m, c in live_routes(app) if credential_kind(c) == "internal"]
    assert len(routes) >= 4
    for n, (rule, method, contract) in enumerate(routes):
        assert contract.internal_token is not None
        setting = contract.internal_token[0]
        ip = f"10.2.0.{n + 1}"
        wrong = [{"X-Internal-Token": tokens[setting] + "x"}, {"X-Internal-Token": ""},
                 {"X-Internal-Token": next(v for k, v in tokens.items() if k != setting)}]
        got = [send(client, method, concrete(rule), ip, json={},
                    headers=wrong[i % len(wrong)]).status_code for i in range(ANONYMOUS + 1)]
        assert got == [401] * ANONYMOUS + [429], (rule.rule, got)
        # The genuine service, from the same address, has its whole bucket: the rate limit lets
        # it through to validation (400, the body is empty) with the service's own count.
        r = send(client, method, concrete(rule), ip, json={},
                 headers={"X-Internal-Token": tokens[setting]})
        spent[setting] += 1
        assert r.status_code == 400, (rule.rule, r.status_code)
        assert r.headers["X-RateLimit-Remaining"] == str(SERVICE - spent[setting]), rule.rule
        assert '"service"' in r.headers["RateLimit-Policy"]
    assert snapshot(app) == before


def test_bad_webhook_signatures_spend_the_senders_ip_never_the_providers(app: Flask) -> None:
    client = app.test_client()
    routes = [(r, m) for r, m, c in live_routes(app) if credential_kind(c) == "signature"]
    assert routes
    for n, (rule, method) in enumerate(routes):
        body = event_body(msg=n)
        good = signed(body, msg_id=f"msg_budget_{n}")
        bad = [{**good, "webhook-signature": "v1," + "A" * 44}, {**good, "webhook-timestamp": "1"},
               {"Content-Type": "application/json"}]
        got = [send(client, method, rule.rule, "10.3.0.1", data=body,
                    headers=bad[i % len(bad)]).status_code for i in range(ANONYMOUS + 1)]
        assert got == [401] * ANONYMOUS + [429], (rule.rule, got)
        r = send(client, method, rule.rule, "10.3.0.2", data=body, headers=good)
        assert r.status_code == 200, r.data
    with SESSIONS.get(app)() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == len(routes)


def test_public_routes_count_every_call_against_the_senders_ip(app: Flask) -> None:
    client = app.test_client()
    routes = [(r, m) for r, m, c in live_routes(app) if credential_kind(c) == "public"]
    wrong: list[tuple[str, str, object]] = []
    for n, (rule, method) in enumerate(routes):
        body = PUBLIC_BODIES.get(rule.endpoint, {})
        ip = f"10.4.0.{n + 1}"
        got = [send(client, method, concrete(rule), ip, data=json.dumps(body),
                    content_type="application/json").status_code for _ in range(ANONYMOUS + 1)]
        if 429 in got[:ANONYMOUS] or got[ANONYMOUS] != 429:
            wrong.append((method, rule.rule, got))
        # another address is not affected
        other = send(client, method, concrete(rule), f"10.5.0.{n + 1}", data=json.dumps(body),
                     content_type="application/json")
        if other.status_code == 429:
            wrong.append((method, rule.rule, "other address limited"))
    assert not wrong, wrong


def test_a_tolerated_missing_internal_token_is_an_anonymous_call(
    make_app: Callable[..., Flask],
) -> None:
    """With the token not required (development), a call without one is let through as an
    anonymous caller: the client IP's bucket, never the service's."""
    app = make_app(**LIMITS, ORCHESTRATOR_INTERNAL_TOKEN=[ORCHESTRATOR_TOKEN],
                   REQUIRE_INTERNAL_EVENT_TOKEN=False)
    client = app.test_client()
    got = [send(client, "POST", "/api/internal/events", "10.6.0.1", json={})
           for _ in range(ANONYMOUS + 1)]
    assert [r.status_code for r in got] == [400] * ANONYMOUS + [429]
    assert all('"anonymous"' in r.headers["RateLimit-Policy"] for r in got)
    r = send(client, "POST", "/api/internal/events", "10.6.0.1", json={},
             headers={"X-Internal-Token": ORCHESTRATOR_TOKEN})
    assert r.status_code == 400 and r.headers["X-RateLimit-Remaining"] == str(SERVICE - 1)
