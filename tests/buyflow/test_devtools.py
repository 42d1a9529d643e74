"""The demo SPA's development helper: absent unless DEMO_HELPERS_ENABLED, refused in production,
bound to the intent's actor and household, and the same state change as the internal callback."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from app import create_app
from app.buyflow import clock
from app.config import ConfigurationRefused
from app.db import utcnow
from app.devtools import plugin
from app.gateway.contracts import contract_of
from app.gateway.defaultdeny import UNCONTRACTED_ROUTES
from app.models import User
from testkit.builders.families import Family, build_family
from testkit.builders.households import (
    AuthActions,
    assert_unchanged_but_denials,
    json_object,
    make_household,
    snapshot,
)
from testkit.config import production_config
from testkit.typing import Json, MakeApp

DEV_PATH = "/api/dev/purchase-intents/{}/cart-ready"
TTL = 900


pytestmark = pytest.mark.settings(DEMO_HELPERS_ENABLED=True)


def simulate(family: Family, intent_id: str, user: User | None = None,
             json: Json = None) -> TestResponse:
    headers = family.headers(user or family.adult)
    return family.client.post(DEV_PATH.format(intent_id), json={} if json is None else json,
                              headers=headers)


def purchasing(family: Family) -> tuple[str, dict[str, Any]]:
    request_id = family.approved()
    return request_id, family.intent(request_id)


def dev_rules(app: Flask) -> list[str]:
    return [r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/api/dev/")]


# -- registration ----------------------------------------------------------------------------


LISTED = {route.endpoint for route in UNCONTRACTED_ROUTES}  # served without one, by design


def test_not_registered_unless_enabled(make_app: MakeApp) -> None:
    app = make_app()
    assert app.config["DEMO_HELPERS_ENABLED"] is False
    assert dev_rules(app) == []
    family = build_family(app)
    _, intent = purchasing(family)
    before = snapshot(app)
    r = simulate(family, intent["intentId"])
    assert r.status_code == 404
    assert snapshot(app) == before
    assert family.intent_row(intent["intentId"]).status == "PURCHASING"


def test_registered_with_a_contract_and_documented(family: Family) -> None:
    app = family.app
    assert dev_rules(app) == ["/api/dev/purchase-intents/<intent_id>/cart-ready"]
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") and rule.endpoint not in LISTED:
            assert contract_of(app.view_functions[rule.endpoint]) is not None, rule.rule
    document = json_object(family.client.get("/api/openapi.json"))
    operation = document["paths"]["/api/dev/purchase-intents/{intentId}/cart-ready"]["post"]
    assert "401" in operation["responses"] and "403" in operation["responses"]


def test_production_refuses_the_setting_by_name(database_url: str) -> None:
    with pytest.raises(ConfigurationRefused) as refused:
        create_app(production_config(DATABASE_URL=database_url, DEMO_HELPERS_ENABLED=True))
    assert "DEMO_HELPERS_ENABLED is true" in refused.value.problems


def test_never_registered_in_production_even_if_the_refusal_were_bypassed() -> None:
    class Production:
        config = {"HEARTHGATE_ENV": "production", "DEMO_HELPERS_ENABLED": True}

    class Development:
        config = {"HEARTHGATE_ENV": "development", "DEMO_HELPERS_ENABLED": True}

    assert plugin.register_blueprints(app=Production()) is None  # type: ignore[arg-type]  # not a Flask: only app.config is read
    assert plugin.register_blueprints(app=Development()) is not None  # type: ignore[arg-type]  # as above


# -- the state change ------------------------------------------------------------------------


def test_actor_fills_the_cart_with_the_approved_amount_then_checkout_completes(
    family: Family,
) -> None:
    request_id, intent = purchasing(family)
    r = simulate(family, intent["intentId"])
    assert r.status_code == 200, r.get_json()
    assert json_object(r) == {"intentId": intent["intentId"], "requestId": request_id,
                            "status": "CART_READY"}
    row = family.intent_row(intent["intentId"])
    assert row.status == "CART_READY"
    assert row.cart == {"items": [{"name": "Rain boots", "quantity": 1, "amountMinor": 4500}],
                        "totalMinor": 4500, "currency": "EUR"}
    assert family.request_row(request_id).status == "CART_READY"
    assert family.audit_actions()[-1] == "intent.cart_ready"
    done = family.confirm(request_id, intent["intentId"], intent["confirmationToken"])
    assert done.status_code == 200 and json_object(done)["status"] == "COMPLETED"


def test_the_callbacks_rules_apply_over_the_approved_amount_is_422(family: Family) -> None:
    request_id, intent = purchasing(family)
    before = snapshot(family.app)
    r = simulate(family, intent["intentId"], json={"totalMinor": 4501})
    assert r.status_code == 422 and json_object(r)["approvedMinor"] == 4500
    assert snapshot(family.app) == before
    assert simulate(family, intent["intentId"], json={"totalMinor": 4000}).status_code == 200
    cart = family.intent_row(intent["intentId"]).cart
    assert cart is not None
    assert cart["totalMinor"] == 4000  # one line that reconciles with the total
    assert cart["items"] == [{"name": "Rain boots", "quantity": 1, "amountMinor": 4000}]


def test_a_second_simulation_is_409_and_changes_nothing(family: Family) -> None:
    _, intent = purchasing(family)
    assert simulate(family, intent["intentId"]).status_code == 200
    before = snapshot(family.app)
    assert simulate(family, intent["intentId"]).status_code == 409
    assert snapshot(family.app) == before


def test_expired_intent_is_410_and_expires(family: Family, monkeypatch: pytest.MonkeyPatch) -> None:
    start = utcnow()
    monkeypatch.setattr(clock, "now", lambda: start)
    request_id, intent = purchasing(family)
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=TTL + 1))
    assert simulate(family, intent["intentId"]).status_code == 410
    assert family.intent_row(intent["intentId"]).status == "EXPIRED"
    assert family.request_row(request_id).status == "FAILED"


# -- who may call it -------------------------------------------------------------------------


def test_another_member_is_403_and_nothing_changes(family: Family) -> None:
    _, intent = purchasing(family)  # the adult is the actor
    before = snapshot(family.app)
    for other in (family.owner, family.child):
        r = simulate(family, intent["intentId"], user=other)
        assert r.status_code == 403, other.email
    assert snapshot(family.app) == before


def test_a_non_member_gets_the_same_404_as_an_unknown_intent(family: Family) -> None:
    _, intent = purchasing(family)
    auth = AuthActions(family.app)
    stranger = auth.user("stranger@example.test")
    make_household(family.app, "Elsewhere", {stranger.id: "owner"})
    before = snapshot(family.app)
    foreign = simulate(family, intent["intentId"], user=stranger)
    unknown = simulate(family, "pi_" + "0" * 26)
    assert foreign.status_code == unknown.status_code == 404
    assert json_object(foreign)["message"] == json_object(unknown)["message"]
    assert snapshot(family.app) == before


@pytest.mark.parametrize("header", [None, "Bearer not-a-token"])
def test_without_a_valid_token_is_401(family: Family, header: str | None) -> None:
    _, intent = purchasing(family)
    before = snapshot(family.app)
    headers = {} if header is None else {"Authorization": header}
    r = family.client.post(DEV_PATH.format(intent["intentId"]), json={}, headers=headers)
    assert r.status_code == 401
    assert snapshot(family.app) == before


def test_without_the_purchases_permission_is_403(family: Family) -> None:
    _, intent = purchasing(family)
    before = snapshot(family.app)
    token = family.auth.token(family.adult, permissions=["requests:read"])
    r = family.client.post(DEV_PATH.format(intent["intentId"]), json={},
                           headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert_unchanged_but_denials(before, snapshot(family.app))
