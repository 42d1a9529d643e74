"""Machine-to-machine: internal tokens (missing, wrong, rotated), actor binding, cart checks,
orchestrator events and artifacts stored against their intent."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import TestResponse

from testkit.builders.families import (
    BUYFLOW_TOKEN,
    BUYFLOW_TOKEN_NEXT,
    CART,
    INTERNAL_CONFIG,
    ORCHESTRATOR_TOKEN,
    Family,
    build_family,
)
from testkit.builders.households import json_object, snapshot
from testkit.typing import Json, MakeApp

SHA = "a" * 64


pytestmark = pytest.mark.settings(**INTERNAL_CONFIG)


def purchasing(family: Family) -> tuple[str, dict[str, Any]]:
    request_id = family.approved()
    return request_id, family.intent(request_id)


@pytest.mark.parametrize("callback", ["cart-ready", "failed"])
@pytest.mark.parametrize("token", [None, "", "wrong", ORCHESTRATOR_TOKEN, BUYFLOW_TOKEN + "x"])
def test_callbacks_without_or_with_a_wrong_token_are_401(
    family: Family, callback: str, token: str | None
) -> None:
    _, intent = purchasing(family)
    before = snapshot(family.app)
    headers = {} if token is None else {"X-Internal-Token": token}
    body = {"actorUserId": family.adult.id, "cart": CART, "reason": "x"}
    r = family.client.post(f"/api/internal/purchase-intents/{intent['intentId']}/{callback}",
                           json=body, headers=headers)
    assert r.status_code == 401 and json_object(r)["error"] == "Unauthorized"
    assert snapshot(family.app) == before


def test_both_rotation_values_are_accepted(family: Family) -> None:
    _, first = purchasing(family)
    assert family.cart_ready(first["intentId"], token=BUYFLOW_TOKEN_NEXT).status_code == 200
    _, second = purchasing(family)
    assert family.failed(second["intentId"], token=BUYFLOW_TOKEN).status_code == 200


def test_a_wrong_token_is_refused_even_when_not_required(make_app: MakeApp) -> None:
    family = build_family(make_app(BUYFLOW_INTERNAL_TOKEN=[BUYFLOW_TOKEN]))
    _, intent = purchasing(family)
    assert family.cart_ready(intent["intentId"], token="wrong").status_code == 401
    r = family.client.post(f"/api/internal/purchase-intents/{intent['intentId']}/cart-ready",
                           json={"actorUserId": family.adult.id, "cart": CART})
    assert r.status_code == 200  # development: a missing token is tolerated when not required


@pytest.mark.parametrize("callback", ["cart-ready", "failed"])
def test_callbacks_with_another_actor_are_403(family: Family, callback: str) -> None:
    request_id, intent = purchasing(family)
    before = snapshot(family.app)
    for other in (family.owner, family.child):
        if callback == "cart-ready":
            r = family.cart_ready(intent["intentId"], actor=other)
        else:
            r = family.failed(intent["intentId"], actor=other)
        assert r.status_code == 403
    assert snapshot(family.app) == before
    assert family.request_row(request_id).status == "PURCHASING"


def test_unknown_intent_is_404(family: Family) -> None:
    before = snapshot(family.app)
    assert family.cart_ready("pi_" + "0" * 26).status_code == 404
    assert family.failed("pi_" + "0" * 26).status_code == 404
    assert snapshot(family.app) == before


@pytest.mark.parametrize("cart", [
    {**CART, "totalMinor": 4501},  # more than approved
    {**CART, "currency": "USD"},
    {**CART, "items": []},
])
def test_a_cart_beyond_the_approval_is_refused(family: Family, cart: dict[str, Any]) -> None:
    request_id, intent = purchasing(family)
    before = snapshot(family.app)
    r = family.cart_ready(intent["intentId"], cart=cart)
    assert r.status_code in (400, 422)
    assert snapshot(family.app) == before


LINE = {"name": "Rain boots", "quantity": 1, "amountMinor": 4500}


@pytest.mark.parametrize("cart", [
    # two lines of 4,500 declared as 4,500: the lines cost 9,000
    {**CART, "items": [LINE, {**LINE, "name": "Second pair"}], "totalMinor": 4500},
    # a quantity the total ignores
    {**CART, "items": [{**LINE, "quantity": 3}], "totalMinor": 4500},
    # a total under its lines (still within the approval)
    {**CART, "items": [{**LINE, "amountMinor": 4000}], "totalMinor": 3000},
    # a total over its lines (within the approval): the lines are what is bought
    {**CART, "items": [{**LINE, "amountMinor": 1000}], "totalMinor": 4500},
    # the largest lines the schema accepts, declared as a small total
    {**CART, "items": [{**LINE, "quantity": 1_000, "amountMinor": 10**10}] * 200,
     "totalMinor": 4500},
])
def test_a_total_that_is_not_the_sum_of_its_lines_is_422_and_changes_nothing(
    family: Family, cart: dict[str, Any]
) -> None:
    request_id, intent = purchasing(family)
    before = snapshot(family.app)
    r = family.cart_ready(intent["intentId"], cart=cart)
    assert r.status_code == 422, r.get_json()
    body = json_object(r)
    assert body["error"] == "UnprocessableEntity"
    assert body["totalMinor"] == cart["totalMinor"]
    assert body["linesTotalMinor"] == sum(i["quantity"] * i["amountMinor"] for i in cart["items"])
    assert snapshot(family.app) == before
    assert family.intent_row(intent["intentId"]).status == "PURCHASING"
    assert family.request_row(request_id).status == "PURCHASING"
    confirm = family.confirm(request_id, intent["intentId"], intent["confirmationToken"])
    assert confirm.status_code == 409  # never CART_READY, so nothing to confirm


def test_a_cart_whose_lines_add_up_is_ready_and_stored_as_sent(family: Family) -> None:
    request_id, intent = purchasing(family)
    cart: dict[str, Json] = {"items": [{"name": "Boots", "quantity": 2, "amountMinor": 1500},
                      {"name": "Laces", "quantity": 3, "amountMinor": 500}],
            "totalMinor": 4500, "currency": "EUR"}
    r = family.cart_ready(intent["intentId"], cart=cart)
    assert r.status_code == 200, r.get_json()
    assert family.intent_row(intent["intentId"]).cart == cart
    assert family.request_row(request_id).status == "CART_READY"


def test_the_cart_lines_bounds_are_in_the_openapi_document(family: Family) -> None:
    schemas = json_object(family.client.get("/api/openapi.json"))["components"]["schemas"]
    line = schemas["CartItem-Input"]["properties"]
    quantity, amount = line["quantity"], line["amountMinor"]
    assert quantity["minimum"] == 1 and amount["minimum"] == 0
    assert "unit" in amount["description"]
    cart = schemas["Cart-Input"]["properties"]
    assert "quantity × amountMinor" in cart["totalMinor"]["description"]
    # the largest cart the schema admits still adds up exactly as a JSON number in any client
    assert quantity["maximum"] * amount["maximum"] * cart["items"]["maxItems"] < 2**53
    assert amount["maximum"] == cart["totalMinor"]["maximum"] == 10**10


def test_failed_from_cart_ready_then_a_new_intent(family: Family) -> None:
    request_id, intent = family.cart_ready_intent()
    r = family.failed(intent["intentId"])
    assert r.status_code == 200 and json_object(r) == {
        "intentId": intent["intentId"], "requestId": request_id, "status": "FAILED"}
    assert family.audit_actions()[-1] == "intent.failed"
    assert family.failed(intent["intentId"]).status_code == 409


def orchestrator_post(family: Family, path: str, body: dict[str, Any],
                      token: str | None = ORCHESTRATOR_TOKEN) -> TestResponse:
    headers = {} if token is None else {"X-Internal-Token": token}
    return family.client.post(f"/api/internal/{path}", json=body, headers=headers)


def test_events_and_artifacts_are_stored_and_shown_on_the_intent(family: Family) -> None:
    request_id, intent = purchasing(family)
    intent_id = intent["intentId"]
    r = orchestrator_post(family, "events", {"intentId": intent_id, "type": "cart.item_added",
                                             "data": {"name": "Rain boots"}})
    assert r.status_code == 202 and json_object(r)["intentId"] == intent_id
    r = orchestrator_post(family, "artifacts", {"intentId": intent_id, "kind": "receipt",
                                                "uri": "https://files.example/r/1.pdf",
                                                "sha256": SHA})
    assert r.status_code == 201
    artifact_id = json_object(r)["id"]
    assert artifact_id.startswith("art_")
    view = json_object(family.get(family.owner, f"/{request_id}/purchase-intents/{intent_id}"))
    assert [(e["source"], e["type"], e["data"]) for e in view["events"]] == [
        ("orchestrator", "cart.item_added", {"name": "Rain boots"})]
    assert [a["id"] for a in view["artifacts"]] == [artifact_id]
    assert view["artifacts"][0]["sha256"] == SHA


@pytest.mark.parametrize("path", ["events", "artifacts"])
@pytest.mark.parametrize("token", [None, "wrong", BUYFLOW_TOKEN])
def test_orchestrator_routes_need_their_own_token(family: Family, path: str,
                                                  token: str | None) -> None:
    _, intent = purchasing(family)
    before = snapshot(family.app)
    body = {"intentId": intent["intentId"], "type": "x", "kind": "receipt",
            "uri": "https://files.example/r.pdf", "sha256": SHA}
    r = orchestrator_post(family, path, body, token=token)
    assert r.status_code == 401
    assert snapshot(family.app) == before


@pytest.mark.parametrize("path", ["events", "artifacts"])
def test_orchestrator_routes_with_an_unknown_intent_are_404(family: Family, path: str) -> None:
    before = snapshot(family.app)
    body = {"intentId": "pi_" + "0" * 26, "type": "x", "kind": "receipt",
            "uri": "https://files.example/r.pdf", "sha256": SHA}
    assert orchestrator_post(family, path, body).status_code == 404
    assert snapshot(family.app) == before


@pytest.mark.parametrize("bad", [{"uri": "file:///etc/passwd"}, {"sha256": "xyz"},
                                 {"kind": "Receipt Now"}])
def test_artifact_validation(family: Family, bad: dict[str, str]) -> None:
    _, intent = purchasing(family)
    before = snapshot(family.app)
    body = {"intentId": intent["intentId"], "kind": "receipt",
            "uri": "https://files.example/r.pdf", "sha256": SHA, **bad}
    assert orchestrator_post(family, "artifacts", body).status_code == 400
    assert snapshot(family.app) == before


def test_production_refuses_unset_or_unrequired_internal_tokens() -> None:
    from app.config import configuration_problems

    problems = configuration_problems({"HEARTHGATE_ENV": "production",
                                       "REQUIRE_BUYFLOW_INTERNAL_TOKEN": True,
                                       "REQUIRE_INTERNAL_EVENT_TOKEN": False})
    assert "BUYFLOW_INTERNAL_TOKEN is unset while REQUIRE_BUYFLOW_INTERNAL_TOKEN is true" in problems
    assert "REQUIRE_INTERNAL_EVENT_TOKEN is false" in problems


def test_a_late_cart_is_a_conflict_whatever_its_amount(family: Family) -> None:
    """The state machine answers first: a cart for an intent past PURCHASING is 409, even when
    the cart itself would also be refused (422)."""
    _, intent = family.cart_ready_intent()
    before = snapshot(family.app)
    for cart in (CART, {**CART, "currency": "USD"}, {**CART, "totalMinor": 10**9}):
        r = family.cart_ready(intent["intentId"], cart=cart)
        assert r.status_code == 409, r.get_json()
    assert snapshot(family.app) == before


@pytest.mark.parametrize("report", ["failed", "cart_ready"])
def test_a_report_after_the_ttl_expires_the_intent(
    family: Family, monkeypatch: pytest.MonkeyPatch, report: str
) -> None:
    from datetime import timedelta

    from app.buyflow import clock

    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start)
    request_id, intent = purchasing(family)
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=901))
    r = getattr(family, report)(intent["intentId"])
    assert r.status_code == 410, r.get_json()
    assert family.intent_row(intent["intentId"]).status == "EXPIRED"
    assert family.request_row(request_id).status == "FAILED"
    assert family.audit_actions()[-1] == "intent.expired"
    before = snapshot(family.app)
    again = getattr(family, report)(intent["intentId"])
    assert again.status_code == 410 and snapshot(family.app) == before
