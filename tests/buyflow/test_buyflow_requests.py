"""Purchase requests: creation and validation, tenancy, listing, and who may decide or cancel."""

from __future__ import annotations

import pytest

from app.db import SESSIONS
from testkit.builders.families import INTERNAL_CONFIG, Family, build_family
from testkit.builders.households import assert_unchanged_but_denials, json_object, snapshot
from testkit.typing import Json, MakeApp

pytestmark = pytest.mark.settings(**INTERNAL_CONFIG)


def test_create_stores_only_declared_fields(family: Family) -> None:
    item_id = family.add_item()
    r = family.post(family.child, "", {
        "title": "Boots", "amountMinor": 0, "currency": "EUR", "itemId": item_id,
        "status": "APPROVED", "householdId": "hh_x", "requestedBy": family.owner.id,
        "decidedBy": family.owner.id, "id": "req_mine",
    })
    assert r.status_code == 201
    body = json_object(r)
    assert body["status"] == "SUBMITTED" and body["householdId"] == family.household_id
    assert body["requestedBy"] == family.child.id and body["decidedBy"] is None
    assert body["id"].startswith("req_") and body["id"] != "req_mine"
    assert body["itemId"] == item_id
    assert family.audit_actions() == ["request.created"]


@pytest.mark.parametrize("bad", [
    {"amountMinor": -1}, {"amountMinor": 10**10 + 1}, {"amountMinor": "12"}, {"amountMinor": 1.5},
    {"currency": "eur"}, {"currency": "EURO"}, {"title": ""}, {"title": "x" * 201},
    {"url": "javascript:alert(1)"}, {"itemId": "not-an-id"},
])
def test_invalid_bodies_are_400_and_store_nothing(family: Family, bad: dict[str, Json]) -> None:
    before = snapshot(family.app)
    body = {"title": "Boots", "amountMinor": 100, "currency": "EUR", **bad}
    r = family.post(family.child, "", body)
    assert r.status_code == 400 and json_object(r)["error"] == "ValidationError"
    assert snapshot(family.app) == before


def test_item_of_another_household_is_404(make_app: MakeApp) -> None:
    app = make_app(**INTERNAL_CONFIG)
    family = build_family(app)
    other = build_family(app, prefix="o-")
    foreign_item = other.add_item()
    before = snapshot(app)
    r = family.post(family.child, "", {"title": "Boots", "amountMinor": 1, "currency": "EUR",
                                       "itemId": foreign_item})
    assert r.status_code == 404
    assert snapshot(app) == before


def test_list_is_paginated_newest_first_and_children_see_their_own(family: Family) -> None:
    mine = [family.submit(family.child, title=f"child {i}") for i in range(3)]
    theirs = family.submit(family.adult, title="adult")
    r = family.client.get(family.url("?limit=2"), headers=family.headers(family.owner))
    page1 = json_object(r)
    assert [i["id"] for i in page1["items"]] == [theirs, mine[2]]
    r = family.client.get(family.url(f"?limit=2&cursor={page1['nextCursor']}"),
                          headers=family.headers(family.owner))
    page2 = json_object(r)
    assert [i["id"] for i in page2["items"]] == [mine[1], mine[0]]
    assert page2["nextCursor"] is None
    r = family.get(family.child)
    assert {i["id"] for i in json_object(r)["items"]} == set(mine)
    assert family.get(family.child, f"/{theirs}").status_code == 404
    assert family.get(family.adult, f"/{mine[0]}").status_code == 200
    r = family.client.get(family.url("?status=APPROVED"), headers=family.headers(family.owner))
    assert json_object(r)["items"] == []
    bad = family.client.get(family.url("?cursor=%%%"), headers=family.headers(family.owner))
    assert bad.status_code == 400
    assert json_object(bad)["error"] == "ValidationError"  # as on every other list
    assert json_object(bad)["details"][0]["field"] == "cursor"


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_the_requester_never_decides_their_own_request(family: Family, action: str) -> None:
    request_id = family.submit(family.adult)
    before = snapshot(family.app)
    r = family.post(family.adult, f"/{request_id}/{action}")
    assert r.status_code == 403 and json_object(r)["error"] == "Forbidden"
    assert snapshot(family.app) == before
    owner_request = family.submit(family.owner)
    before = snapshot(family.app)
    r = family.post(family.owner, f"/{owner_request}/{action}")
    assert r.status_code == 403  # the owner neither, unless the setting allows it
    assert snapshot(family.app) == before


def test_owner_self_approval_only_with_the_setting(make_app: MakeApp) -> None:
    family = build_family(make_app(BUYFLOW_ALLOW_OWNER_SELF_APPROVAL=True, **INTERNAL_CONFIG))
    owner_request = family.submit(family.owner)
    adult_request = family.submit(family.adult)
    assert family.post(family.adult, f"/{adult_request}/approve").status_code == 403
    r = family.post(family.owner, f"/{owner_request}/approve")
    assert r.status_code == 200 and json_object(r)["decidedBy"] == family.owner.id


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_children_cannot_decide(family: Family, action: str) -> None:
    request_id = family.submit(family.adult)
    before = snapshot(family.app)
    r = family.post(family.child, f"/{request_id}/{action}")
    assert r.status_code == 403 and json_object(r)["requiredRoles"] == ["owner", "adult"]
    assert_unchanged_but_denials(before, snapshot(family.app))


def test_permission_is_required_even_for_an_owner(family: Family) -> None:
    request_id = family.submit()
    before = snapshot(family.app)
    headers = {"Authorization": "Bearer " + family.auth.token(family.owner,
                                                                  permissions=["requests:read"])}
    r = family.client.post(family.url(f"/{request_id}/approve"), headers=headers)
    assert r.status_code == 403 and json_object(r)["requiredPermissions"] == ["requests:approve"]
    assert_unchanged_but_denials(before, snapshot(family.app))


def test_reject_then_nothing_more(family: Family) -> None:
    request_id = family.submit()
    r = family.post(family.owner, f"/{request_id}/reject")
    assert r.status_code == 200 and json_object(r)["status"] == "REJECTED"
    before = snapshot(family.app)
    for tail in ("/approve", "/cancel", "/purchase-intents"):
        assert family.post(family.owner, f"/{request_id}{tail}").status_code == 409
    assert snapshot(family.app) == before


def test_who_may_cancel(make_app: MakeApp) -> None:
    app = make_app(**INTERNAL_CONFIG)
    family = build_family(app)
    second_child = family.auth.user("child2@example.test")
    from app.models import Member

    with SESSIONS.get(app)() as session:
        session.add(Member(household_id=family.household_id, user_id=second_child.id, role="child"))
        session.commit()
    request_id = family.submit(family.child)
    before = snapshot(app)
    assert family.post(second_child, f"/{request_id}/cancel").status_code == 404  # not visible
    assert snapshot(app) == before
    adults_own = family.submit(family.adult)
    r = family.post(family.child, f"/{adults_own}/cancel")
    assert r.status_code == 404  # a child does not even see it
    assert family.post(family.owner, f"/{adults_own}/cancel").status_code == 200
    r = family.post(family.child, f"/{request_id}/cancel")
    assert r.status_code == 200 and json_object(r)["status"] == "CANCELLED"


@pytest.mark.parametrize("state", ["PURCHASING", "CART_READY"])
def test_a_purchase_in_progress_cannot_be_cancelled(family: Family, state: str) -> None:
    request_id = family.approved()
    intent = family.intent(request_id)
    if state == "CART_READY":
        assert family.cart_ready(intent["intentId"]).status_code == 200
    before = snapshot(family.app)
    assert family.post(family.owner, f"/{request_id}/cancel").status_code == 409
    assert snapshot(family.app) == before


def test_unknown_request_is_404_for_every_action(family: Family) -> None:
    unknown = "req_" + "0" * 26
    before = snapshot(family.app)
    for tail in ("/approve", "/reject", "/cancel", "/purchase-intents"):
        assert family.post(family.owner, f"/{unknown}{tail}").status_code == 404, tail
    assert family.get(family.owner, f"/{unknown}").status_code == 404
    assert snapshot(family.app) == before


def test_openapi_documents_the_buyflow(family: Family) -> None:
    document = json_object(family.client.get("/api/openapi.json"))
    base = "/api/households/{householdId}/requests/{requestId}"
    cancel = document["paths"][base + "/cancel"]["post"]
    assert "requester" in cancel["summary"] and "owner or adult" in cancel["summary"]
    confirm = document["paths"][base + "/confirm-checkout"]["post"]
    assert confirm["x-rate-limit"] == "100/minute per user; 10/minute per user on this operation"
    assert confirm["x-household-roles"] == ["owner", "adult"]
    assert {"403", "409", "410"} <= set(confirm["responses"])
    intents = document["paths"][base + "/purchase-intents"]["post"]
    assert intents["x-required-permissions"] == ["purchases:create"]
