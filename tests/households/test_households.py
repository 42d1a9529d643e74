"""Households, members, items and outfits through HTTP: rules, pagination, cascade, query counts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from app.db import SESSIONS, Database
from app.models import AuditEvent, Household, Item, Member, User
from testkit.builders.households import AuthActions, invite_and_accept, json_object, snapshot


@pytest.fixture
def owner(auth: AuthActions) -> User:
    return auth.user("owner@example.test", "Olive Owner")


@pytest.fixture
def home(client: FlaskClient, auth: AuthActions, owner: User) -> str:
    r = client.post("/api/households", json={"name": "Home"}, headers=auth.headers(owner))
    assert r.status_code == 201
    return str(json_object(r)["id"])


def test_create_makes_the_caller_owner(client: FlaskClient, auth: AuthActions, owner: User) -> None:
    r = client.post("/api/households", json={"name": "  Home  ", "id": "hh_mine", "role": "child"},
                    headers=auth.headers(owner))
    body = r.get_json()
    assert r.status_code == 201 and body["role"] == "owner" and body["name"] == "Home"
    assert body["id"].startswith("hh_") and body["id"] != "hh_mine"
    assert set(body) == {"id", "name", "role", "createdAt"}
    listed = client.get("/api/households", headers=auth.headers(owner)).get_json()
    assert [h["id"] for h in listed["items"]] == [body["id"]] and listed["nextCursor"] is None


def test_list_shows_only_own_households(client: FlaskClient, auth: AuthActions, owner: User, home: str) -> None:
    other = auth.user("other@example.test")
    client.post("/api/households", json={"name": "Theirs"}, headers=auth.headers(other))
    mine = json_object(client.get("/api/households", headers=auth.headers(owner)))["items"]
    assert [h["id"] for h in mine] == [home]


def test_members_lifecycle_and_last_owner(app: Flask, client: FlaskClient, auth: AuthActions, owner: User, home: str) -> None:
    adult = auth.user("Adult@Example.test", "Ada")
    h = auth.headers(owner)
    r = client.post(f"/api/households/{home}/members", json={"email": "adult@example.TEST", "role": "adult"}, headers=h)
    assert r.status_code == 201
    assert set(r.get_json()) == {"id", "email", "role", "status", "expiresAt", "createdAt"}
    assert json_object(r)["email"] == "adult@example.test" and json_object(r)["status"] == "PENDING"
    # Invited, not yet a member; a second invitation of the same address is 409.
    assert [m["userId"] for m in json_object(client.get(f"/api/households/{home}/members", headers=h))["items"]] == [owner.id]
    assert client.post(f"/api/households/{home}/members", json={"email": "adult@example.test", "role": "child"},
                       headers=h).status_code == 409
    accepted = client.post(f"/api/invitations/{json_object(r)['id']}/accept", headers=auth.headers(adult))
    assert accepted.status_code == 200
    assert set(accepted.get_json()) == {"householdId", "userId", "email", "name", "role", "joinedAt"}
    assert client.post(f"/api/households/{home}/members", json={"email": "adult@example.test", "role": "child"},
                       headers=h).status_code == 409  # a member already
    # An address without an account may be invited: whether it has one is not revealed.
    assert client.post(f"/api/households/{home}/members", json={"email": "nobody@example.test", "role": "child"},
                       headers=h).status_code == 201
    before = snapshot(app)
    assert client.delete(f"/api/households/{home}/members/{owner.id}", headers=h).status_code == 409
    r = client.patch(f"/api/households/{home}/members/{owner.id}", json={"role": "adult"}, headers=h)
    assert r.status_code == 409 and json_object(r)["error"] == "Conflict"
    assert snapshot(app) == before
    # With a second owner the first may step down.
    assert client.patch(f"/api/households/{home}/members/{adult.id}", json={"role": "owner"}, headers=h).status_code == 200
    assert client.patch(f"/api/households/{home}/members/{owner.id}", json={"role": "adult"}, headers=h).status_code == 200
    # ... and is no longer allowed to manage members, effective at once with the same token.
    assert client.delete(f"/api/households/{home}/members/{adult.id}", headers=h).status_code == 403
    assert client.delete(f"/api/households/{home}/members/{owner.id}", headers=auth.headers(adult)).status_code == 204
    assert client.get(f"/api/households/{home}", headers=h).status_code == 404
    actions = [e.action for e in _events(app, home)]
    assert actions.count("invitation.created") == 2 and actions.count("invitation.accepted") == 1
    assert actions.count("member.role_changed") == 2
    assert "member.removed" in actions


def _events(app: Flask, household_id: str) -> list[AuditEvent]:
    with SESSIONS.get(app)() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.chain == household_id)
                                    .order_by(AuditEvent.seq)))


def test_items_crud_and_filters(client: FlaskClient, auth: AuthActions, owner: User, home: str) -> None:
    h = auth.headers(owner)
    base = f"/api/households/{home}/items"
    red = client.post(base, json={"name": "Coat", "category": "outer", "color": "red", "size": "M"}, headers=h).get_json()
    client.post(base, json={"name": "Scarf", "category": "acc", "color": "blue"}, headers=h)
    assert [i["name"] for i in json_object(client.get(f"{base}?color=red", headers=h))["items"]] == ["Coat"]
    assert [i["name"] for i in json_object(client.get(f"{base}?category=acc", headers=h))["items"]] == ["Scarf"]
    r = client.patch(f"{base}/{red['id']}", json={"notes": "dry clean", "householdId": "hh_x", "id": "itm_x"}, headers=h)
    assert r.status_code == 200 and json_object(r)["notes"] == "dry clean" and json_object(r)["id"] == red["id"]
    assert client.patch(f"{base}/{red['id']}", json={"name": ""}, headers=h).status_code == 400
    assert client.delete(f"{base}/{red['id']}", headers=h).status_code == 204
    assert client.get(f"{base}/{red['id']}", headers=h).status_code == 404


def test_outfits_need_items_of_the_same_household(app: Flask, client: FlaskClient, auth: AuthActions, owner: User, home: str) -> None:
    h = auth.headers(owner)
    mine = json_object(client.post(f"/api/households/{home}/items", json={"name": "Shirt"}, headers=h))["id"]
    other = auth.user("other@example.test")
    away = json_object(client.post("/api/households", json={"name": "Away"}, headers=auth.headers(other)))["id"]
    theirs = json_object(client.post(f"/api/households/{away}/items", json={"name": "Hat"}, headers=auth.headers(other)))["id"]
    before = snapshot(app)
    r = client.post(f"/api/households/{home}/outfits", json={"name": "Mixed", "itemIds": [mine, theirs]}, headers=h)
    assert r.status_code == 404 and snapshot(app) == before
    r = client.post(f"/api/households/{home}/outfits", json={"name": "Mine", "itemIds": [mine, mine]}, headers=h)
    assert r.status_code == 201 and json_object(r)["itemIds"] == [mine]
    outfit = json_object(r)["id"]
    r = client.patch(f"/api/households/{home}/outfits/{outfit}", json={"itemIds": [theirs]}, headers=h)
    assert r.status_code == 404
    assert json_object(client.get(f"/api/households/{home}/outfits/{outfit}", headers=h))["itemIds"] == [mine]
    client.delete(f"/api/households/{home}/items/{mine}", headers=h)
    assert json_object(client.get(f"/api/households/{home}/outfits/{outfit}", headers=h))["itemIds"] == []


def test_cursor_pagination_is_stable_under_inserts(client: FlaskClient, auth: AuthActions, owner: User, home: str) -> None:
    h = auth.headers(owner)
    base = f"/api/households/{home}/items"
    for n in range(25):
        client.post(base, json={"name": f"item {n:02d}"}, headers=h)
    first = client.get(f"{base}?limit=10", headers=h).get_json()
    client.post(base, json={"name": "late arrival"}, headers=h)
    seen = [i["name"] for i in first["items"]]
    cursor = first["nextCursor"]
    while cursor:
        page = client.get(f"{base}?limit=10&cursor={cursor}", headers=h).get_json()
        seen += [i["name"] for i in page["items"]]
        cursor = page["nextCursor"]
    assert seen == [f"item {n:02d}" for n in range(25)] + ["late arrival"]


def test_outfit_pages_carry_their_own_items_on_every_page(client: FlaskClient, auth: AuthActions, owner: User, home: str) -> None:
    """An outfit page's item ids come from a second read keyed by the same page (and cursor):
    every outfit on every page shows exactly its items, in their order."""
    h = auth.headers(owner)
    items = [json_object(client.post(f"/api/households/{home}/items", json={"name": f"item {n}"},
                                     headers=h))["id"] for n in range(6)]
    expected = {}
    for n in range(7):
        chosen = [items[(n + k) % 6] for k in range(n % 4)][::-1]
        created = client.post(f"/api/households/{home}/outfits",
                              json={"name": f"outfit {n}", "itemIds": chosen}, headers=h)
        assert created.status_code == 201, created.get_json()
        expected[json_object(created)["id"]] = chosen
    seen: dict[str, list[str]] = {}
    pages, cursor = 0, ""
    while True:
        page = client.get(f"/api/households/{home}/outfits?limit=3"
                          + (f"&cursor={cursor}" if cursor else ""), headers=h).get_json()
        pages += 1
        for outfit in page["items"]:
            assert outfit["id"] not in seen
            seen[outfit["id"]] = outfit["itemIds"]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert pages == 3 and seen == expected
    for outfit_id, chosen in expected.items():
        one = client.get(f"/api/households/{home}/outfits/{outfit_id}", headers=h).get_json()
        assert one["itemIds"] == chosen


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "cursor=%%%", "cursor=bm90LWpzb24"])
def test_bad_page_parameters_are_400(client: FlaskClient, auth: AuthActions, owner: User, home: str, query: str) -> None:
    r = client.get(f"/api/households/{home}/items?{query}", headers=auth.headers(owner))
    assert r.status_code == 400 and json_object(r)["error"] == "ValidationError"


@contextmanager
def count_statements(app: Flask) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = Database.engine(app)

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def test_query_count_is_constant_in_list_size(app: Flask, client: FlaskClient, auth: AuthActions, owner: User, home: str) -> None:
    h = auth.headers(owner)
    counts = {}
    for size in (1, 20):
        while True:
            items = json_object(client.get(f"/api/households/{home}/items?limit=100", headers=h))["items"]
            if len(items) >= size:
                break
            item = client.post(f"/api/households/{home}/items", json={"name": "x"}, headers=h).get_json()
            client.post(f"/api/households/{home}/outfits", json={"name": "o", "itemIds": [item["id"]]}, headers=h)
        with count_statements(app) as items_sql:
            assert len(json_object(client.get(f"/api/households/{home}/items?limit=100", headers=h))["items"]) == size
        with count_statements(app) as outfits_sql:
            assert len(json_object(client.get(f"/api/households/{home}/outfits?limit=100", headers=h))["items"]) == size
        counts[size] = (len(items_sql), len(outfits_sql))
    assert counts[1] == counts[20]
    assert counts[1][0] <= 4  # membership + page (+ BEGIN/ROLLBACK bookkeeping)


def _count_rows(app: Flask) -> dict[str, int]:
    return {table: len(rows) for table, rows in snapshot(app).items()}


def test_cascading_deletion_removes_everything_of_one_household(app: Flask, client: FlaskClient, auth: AuthActions, owner: User, home: str) -> None:
    from app.db import utcnow
    from app.models import PurchaseIntent, PurchaseRequest, WebhookEvent

    other = auth.user("other@example.test")
    away = json_object(client.post("/api/households", json={"name": "Away"}, headers=auth.headers(other)))["id"]
    child = auth.user("kid@example.test")
    for hid, user in ((home, owner), (away, other)):
        hh = auth.headers(user)
        if hid == home:
            invite_and_accept(app, auth, hid, user, child, "child")
        item = json_object(client.post(f"/api/households/{hid}/items", json={"name": "Coat"}, headers=hh))["id"]
        client.post(f"/api/households/{hid}/outfits", json={"name": "O", "itemIds": [item]}, headers=hh)
        with SESSIONS.get(app)() as session:
            request = PurchaseRequest(household_id=hid, requested_by=user.id, title="Boots",
                                      amount_minor=100, currency="EUR", item_id=item)
            session.add(request)
            session.flush()
            intent = PurchaseIntent(household_id=hid, request_id=request.id, actor_user_id=user.id,
                                    token_hash="0" * 64, expires_at=utcnow())
            session.add(intent)
            session.flush()
            session.add(WebhookEvent(webhook_id=f"msg_{hid}", household_id=hid, intent_id=intent.id,
                                     type="cart.updated", payload={}))
            session.commit()
    before = snapshot(app)
    away_rows = {t: [r for r in rows if away in repr(r)] for t, rows in before.items()}
    r = client.delete(f"/api/households/{home}", headers=auth.headers(owner))
    assert r.status_code == 204
    after = snapshot(app)
    for table, rows in after.items():
        assert not [row for row in rows if home in repr(row) and table != "audit_events"], table
        assert [row for row in rows if away in repr(row)] == away_rows[table], table
    with SESSIONS.get(app)() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.chain == home)) == 0
        erasure = session.scalars(select(AuditEvent).where(AuditEvent.action == "household.erased")).one()
        assert erasure.chain == "system" and erasure.details["erasedHouseholdId"] == home
        assert erasure.details["finalSeq"] >= 2
        assert session.get(Household, home) is None
        assert session.scalars(select(Member).where(Member.user_id == child.id)).all() == []
        assert session.scalar(select(func.count()).select_from(Item)) == 1


def test_filters_combine_and_page_with_a_cursor(client: FlaskClient, auth: AuthActions, owner: User, home: str) -> None:
    h = auth.headers(owner)
    base = f"/api/households/{home}/items"
    for n in range(7):
        client.post(base, json={"name": f"red {n}", "color": "red", "size": "S" if n % 2 else "M"},
                    headers=h)
        client.post(base, json={"name": f"blue {n}", "color": "blue", "size": "S"}, headers=h)
    names: list[str] = []
    url = f"{base}?color=red&size=S&limit=2"
    while url:
        page = client.get(url, headers=h).get_json()
        names += [i["name"] for i in page["items"]]
        url = page["nextCursor"] and f"{base}?color=red&size=S&limit=2&cursor={page['nextCursor']}"
    assert names == ["red 1", "red 3", "red 5"]
    # The same statement shape with other values answers for those values only.
    blue = json_object(client.get(f"{base}?color=blue&size=S&limit=100", headers=h))["items"]
    assert [i["name"] for i in blue] == [f"blue {n}" for n in range(7)]
    assert client.get(f"{base}?color=green&limit=100", headers=h).get_json() == {
        "items": [], "nextCursor": None}


def test_a_scope_never_takes_the_household_from_its_caller(app: Flask) -> None:
    from datetime import datetime

    from app.gateway.tenancy import HouseholdScope
    from app.models import Item

    scope = HouseholdScope("hh_mine", "Mine", datetime(2026, 1, 1), "usr_me", "owner")
    with app.app_context(), pytest.raises(ValueError, match="scope"):
        scope.rows_page(Item, {"household_id": "hh_theirs"}, limit=10, cursor=None)
