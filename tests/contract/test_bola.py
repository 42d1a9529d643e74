"""BOLA matrix: every household route × every method × owner, adult, child and outsider.

The expected status comes from the role table of API.md (the contract's ``roles``); every denied
call must leave every table untouched, and an outsider's 404 must be byte-identical (ids and
timestamps aside) to the 404 for a household that does not exist. A household-scoped route
without a case here fails ``test_every_household_route_is_in_the_matrix``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from app import audit
from app.audit.checkpoints import checkpoint_all
from app.audit.proofs import event_id
from app.audit.signing import signer
from app.db import SESSIONS
from app.gateway.contracts import contract_of
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


@dataclass(frozen=True)
class Case:
    method: str
    rule: str  # Flask rule, e.g. /api/households/<household_id>/items/<item_id>
    body: Callable[[dict[str, str]], dict[str, Any]] | None = None
    ok: int = 200
    roles: tuple[str, ...] = ("owner", "adult", "child")  # API.md's role table


OWNER_ONLY = ("owner",)  # manage members, rename/delete household, read audit log


CASES = [
    Case("GET", "/api/households/<household_id>"),
    Case("PATCH", "/api/households/<household_id>", lambda w: {"name": "Renamed"}, roles=OWNER_ONLY),
    Case("DELETE", "/api/households/<household_id>", ok=204, roles=OWNER_ONLY),
    Case("GET", "/api/households/<household_id>/members"),
    Case("POST", "/api/households/<household_id>/members",
         lambda w: {"email": "newcomer@example.test", "role": "child"}, ok=201, roles=OWNER_ONLY),
    Case("PATCH", "/api/households/<household_id>/members/<user_id>", lambda w: {"role": "child"},
         roles=OWNER_ONLY),
    Case("DELETE", "/api/households/<household_id>/members/<user_id>", ok=204, roles=OWNER_ONLY),
    Case("GET", "/api/households/<household_id>/invitations", roles=OWNER_ONLY),
    Case("DELETE", "/api/households/<household_id>/invitations/<invitation_id>", ok=204,
         roles=OWNER_ONLY),
    Case("GET", "/api/households/<household_id>/items"),
    Case("POST", "/api/households/<household_id>/items", lambda w: {"name": "Gloves"}, ok=201),
    Case("GET", "/api/households/<household_id>/items/<item_id>"),
    Case("PATCH", "/api/households/<household_id>/items/<item_id>", lambda w: {"color": "green"}),
    Case("DELETE", "/api/households/<household_id>/items/<item_id>", ok=204),
    Case("GET", "/api/households/<household_id>/outfits"),
    Case("POST", "/api/households/<household_id>/outfits",
         lambda w: {"name": "Set", "itemIds": [w["item_id"]]}, ok=201),
    Case("GET", "/api/households/<household_id>/outfits/<outfit_id>"),
    Case("PATCH", "/api/households/<household_id>/outfits/<outfit_id>", lambda w: {"name": "N"}),
    Case("DELETE", "/api/households/<household_id>/outfits/<outfit_id>", ok=204),
    Case("GET", "/api/households/<household_id>/audit", roles=OWNER_ONLY),
    # The world's event is the owner's: members prove only their own events.
    Case("GET", "/api/households/<household_id>/audit/<event_id>/proof", roles=OWNER_ONLY),
]


@dataclass(frozen=True)
class HouseholdWorld:
    """``users`` by role name (``USERS``), and ``ids`` by the URL parameter each fills
    (``household_id``, ``item_id`` …): one of each object in the owner's household."""

    users: dict[str, User]
    ids: dict[str, str]


@pytest.fixture
def household_world(app: Flask, auth: AuthActions) -> HouseholdWorld:
    users = {name: auth.user(f"{name}@example.test") for name in USERS}
    auth.user("newcomer@example.test")
    target = auth.user("target@example.test")  # the member that member routes act on
    home = make_household(app, "Home", {users["owner"].id: "owner", users["adult"].id: "adult",
                                        users["child"].id: "child", target.id: "adult"})
    make_household(app, "Away", {users["outsider"].id: "owner"})
    client = app.test_client()
    h = auth.headers(users["owner"])
    item = json_object(client.post(f"/api/households/{home}/items", json={"name": "Coat"}, headers=h))["id"]
    outfit = json_object(client.post(f"/api/households/{home}/outfits", json={"name": "O", "itemIds": [item]},
                                     headers=h))["id"]
    invitation = json_object(client.post(f"/api/households/{home}/members",
                                         json={"email": "invitee@example.test", "role": "adult"},
                                         headers=h))["id"]
    with app.app_context(), SESSIONS.get(app)() as session:
        event = audit.record("test.event", household_id=home, principal_id=users["owner"].id,
                             session=session)
        checkpoint_all(session, signer(app))
        session.commit()
    return HouseholdWorld(users=users, ids={"household_id": home, "item_id": item,
                                            "outfit_id": outfit, "user_id": target.id,
                                            "event_id": event_id(event.hash),
                                            "invitation_id": invitation})


def _path(rule: str, ids: dict[str, str]) -> str:
    return re.sub(r"<([a-z_]+)>", lambda m: ids[m.group(1)], rule)


def _expected(case: Case, user: str) -> int:
    if user == "outsider":
        return 404
    return case.ok if user in case.roles else 403


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.rule.removeprefix('/api/households/<household_id>') or '/'}")
def test_matrix(app: Flask, auth: AuthActions, household_world: HouseholdWorld, case: Case, user: str) -> None:
    client = app.test_client()
    ids = household_world.ids
    headers = auth.headers(household_world.users[user])
    body = case.body(ids) if case.body else None
    expected = _expected(case, user)
    before = snapshot(app)
    r = client.open(_path(case.rule, ids), method=case.method, json=body, headers=headers)
    assert r.status_code == expected, (r.status_code, r.get_json())
    if expected == 403:  # refused by role: nothing changed, and the refusal is on the record
        after = snapshot(app)
        assert_unchanged_but_denials(before, after)
        assert len(after["audit_events"]) == len(before["audit_events"]) + 1
    elif expected == 404:  # not a member: nothing at all changed
        assert snapshot(app) == before
    if expected == 404:
        unknown = client.open(_path(case.rule, {**ids, "household_id": "hh_00000000000000000000000000"}),
                              method=case.method, json=body, headers=headers)
        assert unknown.status_code == 404
        assert without_volatile(r.get_json()) == without_volatile(unknown.get_json())


def test_every_household_route_is_in_the_matrix(app: Flask) -> None:
    covered = {(c.method, c.rule) for c in CASES}
    for rule in app.url_map.iter_rules():
        contract = contract_of(app.view_functions[rule.endpoint])
        if contract is None or not contract.household:
            continue
        for method in rule.methods or set():
            if method not in {"HEAD", "OPTIONS"} and rule.rule.startswith("/api/households/<household_id>"):
                if "/requests" in rule.rule:
                    continue  # tests/contract/test_bola_buyflow.py covers the buy-flow routes
                assert (method, rule.rule) in covered, f"{method} {rule.rule} missing from the matrix"


@pytest.mark.parametrize("kind", ["items", "outfits"])
def test_child_object_of_another_household_is_404(app: Flask, auth: AuthActions, household_world: HouseholdWorld, kind: str) -> None:
    client = app.test_client()
    outsider = auth.headers(household_world.users["outsider"])
    away = json_object(client.get("/api/households", headers=outsider))["items"][0]["id"]
    object_id = household_world.ids["item_id" if kind == "items" else "outfit_id"]
    before = snapshot(app)
    for method, body in (("GET", None), ("PATCH", {"name": "Stolen"}), ("DELETE", None)):
        r = client.open(f"/api/households/{away}/{kind}/{object_id}", method=method, json=body, headers=outsider)
        unknown = client.open(f"/api/households/{away}/{kind}/{kind[:3]}_00000000000000000000000000",
                              method=method, json=body, headers=outsider)
        assert r.status_code == unknown.status_code == 404
        assert without_volatile(r.get_json()) == without_volatile(unknown.get_json())
    assert snapshot(app) == before


MASS_ASSIGNMENT = {"id": "x_forged", "householdId": "hh_forged", "role": "owner", "createdBy": "usr_forged",
                   "status": "COMPLETED", "permissions": ["users:admin"], "createdAt": "2000-01-01T00:00:00Z"}


def test_mass_assignment_changes_nothing(app: Flask, auth: AuthActions, household_world: HouseholdWorld) -> None:
    client = app.test_client()
    ids = household_world.ids
    child = household_world.users["child"]
    h = auth.headers(child)
    home = ids["household_id"]
    item = client.post(f"/api/households/{home}/items", json={"name": "Cap", **MASS_ASSIGNMENT}, headers=h).get_json()
    assert item["id"].startswith("itm_") and item["createdAt"] != "2000-01-01T00:00:00Z"
    r = client.patch(f"/api/households/{home}/items/{item['id']}", json={"notes": "n", **MASS_ASSIGNMENT}, headers=h)
    assert json_object(r)["id"] == item["id"]
    created = client.post("/api/households", json={"name": "Mine", **MASS_ASSIGNMENT}, headers=h).get_json()
    assert created["id"].startswith("hh_") and created["id"] != "hh_forged"
    members = json_object(client.get(f"/api/households/{home}/members", headers=h))["items"]
    assert {m["userId"]: m["role"] for m in members}[child.id] == "child"
    me = auth.find_user(child.email or "")
    assert me is not None and "users:admin" not in me.permissions
    with SESSIONS.get(app)() as session:
        from app.models import Item

        stored = session.get(Item, item["id"])
        assert stored is not None and stored.household_id == home and stored.created_by == child.id
