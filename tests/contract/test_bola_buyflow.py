"""BOLA matrix of the buy-flow routes: every route × owner, adult, child and outsider.

Expectations come from API.md's role table and the buy-flow rules (approval never by the
requester, confirmation only by the intent's actor), written out here rather than read back from
the contracts. Denied calls change nothing but the audit trail's denied events; an outsider's 404
is the same body as for an unknown household.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from app.models import User
from testkit.builders.households import (
    USERS,
    AuthActions,
    assert_unchanged_but_denials,
    json_object,
    make_household,
    snapshot,
    without_volatile,
)

TOKEN = "internal-buyflow-token-for-bola-tests"
BASE = "/api/households/<household_id>/requests"
REQUEST_BODY = {"title": "Boots", "amountMinor": 8900, "currency": "EUR"}


@dataclass(frozen=True)
class Case:
    method: str
    rule: str
    state: str  # which prepared request the call acts on
    expect: dict[str, int]
    body: str | None = None  # "request" or "confirm"


def everyone(status: int) -> dict[str, int]:
    return {"owner": status, "adult": status, "child": status, "outsider": 404}


def deciders(status: int) -> dict[str, int]:
    return {"owner": status, "adult": status, "child": 403, "outsider": 404}


CASES = [
    Case("GET", BASE, "submitted", everyone(200)),
    Case("POST", BASE, "submitted", everyone(201), body="request"),
    Case("GET", BASE + "/<request_id>", "submitted", everyone(200)),
    Case("POST", BASE + "/<request_id>/approve", "submitted", deciders(200)),
    Case("POST", BASE + "/<request_id>/reject", "submitted", deciders(200)),
    # the child is the requester: it may cancel its own request
    Case("POST", BASE + "/<request_id>/cancel", "submitted", everyone(200)),
    Case("POST", BASE + "/<request_id>/purchase-intents", "approved", deciders(201)),
    Case("GET", BASE + "/<request_id>/purchase-intents/<intent_id>", "cart_ready", everyone(200)),
    # only the intent's actor (the owner here) confirms
    Case("POST", BASE + "/<request_id>/confirm-checkout", "cart_ready",
         {"owner": 200, "adult": 403, "child": 403, "outsider": 404}, body="confirm"),
]


pytestmark = pytest.mark.settings(BUYFLOW_INTERNAL_TOKEN=[TOKEN], REQUIRE_BUYFLOW_INTERNAL_TOKEN=True)


@dataclass(frozen=True)
class BuyflowWorld:
    """``users`` by role name (``USERS``) in the household ``household_id``, its ``requests`` by
    state (``submitted``, ``approved``, ``cart_ready``), and the cart-ready request's intent
    (``intent_id``, ``confirmation_token``)."""

    users: dict[str, User]
    household_id: str
    requests: dict[str, str]
    intent_id: str
    confirmation_token: str


@pytest.fixture
def buyflow_world(app: Flask, auth: AuthActions) -> BuyflowWorld:
    users = {name: auth.user(f"{name}@example.test") for name in USERS}
    home = make_household(app, "Home", {users["owner"].id: "owner", users["adult"].id: "adult",
                                        users["child"].id: "child"})
    make_household(app, "Away", {users["outsider"].id: "owner"})
    client = app.test_client()
    h = {name: auth.headers(user) for name, user in users.items()}
    base = f"/api/households/{home}/requests"

    def new_request() -> str:
        r = client.post(base, json=REQUEST_BODY, headers=h["child"])
        assert r.status_code == 201, r.get_json()
        return str(json_object(r)["id"])

    submitted = new_request()
    approved = new_request()
    assert client.post(f"{base}/{approved}/approve", headers=h["adult"]).status_code == 200
    cart_ready = new_request()
    assert client.post(f"{base}/{cart_ready}/approve", headers=h["adult"]).status_code == 200
    intent = json_object(client.post(f"{base}/{cart_ready}/purchase-intents", headers=h["owner"]))
    r = client.post(f"/api/internal/purchase-intents/{intent['intentId']}/cart-ready",
                    json={"actorUserId": users["owner"].id,
                          "cart": {"items": [{"name": "Boots", "quantity": 1, "amountMinor": 8900}],
                                   "totalMinor": 8900, "currency": "EUR"}},
                    headers={"X-Internal-Token": TOKEN})
    assert r.status_code == 200, r.get_json()
    return BuyflowWorld(
        users=users,
        household_id=home,
        requests={"submitted": submitted, "approved": approved, "cart_ready": cart_ready},
        intent_id=intent["intentId"],
        confirmation_token=intent["confirmationToken"],
    )


def _path(rule: str, ids: dict[str, str]) -> str:
    return re.sub(r"<([a-z_]+)>", lambda m: ids[m.group(1)], rule)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.rule.removeprefix(BASE) or '/'}")
def test_matrix(app: Flask, auth: AuthActions, buyflow_world: BuyflowWorld, case: Case, user: str) -> None:
    client = app.test_client()
    ids = {"household_id": buyflow_world.household_id, "request_id": buyflow_world.requests[case.state],
           "intent_id": buyflow_world.intent_id}
    body: dict[str, Any] | None = None
    if case.body == "request":
        body = REQUEST_BODY
    elif case.body == "confirm":
        body = {"intentId": buyflow_world.intent_id, "confirmationToken": buyflow_world.confirmation_token}
    headers = auth.headers(buyflow_world.users[user])
    before = snapshot(app)
    r = client.open(_path(case.rule, ids), method=case.method, json=body, headers=headers)
    expected = case.expect[user]
    assert r.status_code == expected, (r.status_code, r.get_json())
    if expected >= 400:
        assert_unchanged_but_denials(before, snapshot(app))
    if user == "outsider":
        unknown = client.open(_path(case.rule, {**ids, "household_id": "hh_00000000000000000000000000"}),
                              method=case.method, json=body, headers=headers)
        assert without_volatile(r.get_json()) == without_volatile(unknown.get_json())


def test_every_buyflow_route_is_in_the_matrix(app: Flask) -> None:
    covered = {(c.method, c.rule) for c in CASES}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(BASE):
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                assert (method, rule.rule) in covered, f"{method} {rule.rule} missing"
