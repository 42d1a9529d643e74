"""The endpoint contract's request path: validation, permissions, isolation, serialization."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.db import SESSIONS
from app.gateway.tokens import ACCESS_TOKENS
from app.models import User
from testkit.apps import sample as sample_routes
from testkit.builders.households import (
    AuthActions,
    assert_unchanged_but_denials,
    json_object,
    make_household,
    snapshot,
    without_volatile,
)
from testkit.typing import MakeApp

pytestmark = pytest.mark.blueprints(sample_routes.bp)


def test_body_is_validated_and_unknown_fields_dropped(client: FlaskClient) -> None:
    r = client.post("/api/sample/echo", json={"name": "a", "amountMinor": 3, "id": "x", "role": "o"})
    assert r.status_code == 200
    assert r.get_json() == {"name": "a", "amountMinor": 3}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"amountMinor": 1}, "name"),
        ({"name": "a", "amountMinor": "1"}, "amountMinor"),  # strict: no string coercion
        ({"name": "a", "amountMinor": -1}, "amountMinor"),
        ({"name": "a", "amountMinor": 10**10 + 1}, "amountMinor"),
        ({"name": "a", "amountMinor": True}, "amountMinor"),
        ({"name": "", "amountMinor": 1}, "name"),
    ],
)
def test_schema_violations_are_400_with_details(client: FlaskClient, body: dict[str, object], field: str) -> None:
    r = client.post("/api/sample/echo", json=body)
    assert r.status_code == 400
    data = r.get_json()
    assert data["error"] == "ValidationError"
    assert [d["field"] for d in data["details"]] == [field]
    assert "input" not in json.dumps(data["details"])  # never echoes what was sent


def test_response_schema_strips_undeclared_fields(client: FlaskClient) -> None:
    r = client.get("/api/sample/leaky")
    assert r.get_json() == {"name": "visible", "amountMinor": 5}
    assert b"should-never-leave" not in r.data and b"internal" not in r.data


def test_missing_permission_is_403_with_both_lists(client: FlaskClient, auth: AuthActions) -> None:
    user = auth.user("p@example.test", permissions=["items:read"])
    r = client.get("/api/sample/guarded", headers=auth.headers(user))
    assert r.status_code == 403
    body = r.get_json()
    assert body["error"] == "Forbidden"
    assert body["requiredPermissions"] == ["items:read", "audit:read"]
    assert body["userPermissions"] == ["items:read"]
    assert "audit:read" in body["message"]


def test_all_permissions_present_passes(client: FlaskClient, auth: AuthActions) -> None:
    user = auth.user("q@example.test", permissions=["items:read", "audit:read"])
    assert client.get("/api/sample/guarded", headers=auth.headers(user)).status_code == 200


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic abc", "Bearer not-a-jwt", "Bearer a.b.c", "Token x"],
)
def test_bad_credentials_are_401_with_www_authenticate(client: FlaskClient, header: str) -> None:
    r = client.get("/api/sample/guarded", headers={"Authorization": header} if header else {})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert json_object(r)["error"] in {"Unauthorized", "InvalidToken"}


def test_token_of_another_issuer_or_secret_is_refused(
    make_app: MakeApp, client: FlaskClient, auth: AuthActions
) -> None:
    user = auth.user("r@example.test")
    other = make_app(AUTH_JWT_SECRET="another-secret-0123456789abcdef0123456789")
    forged = AuthActions(other).token(user)
    r = client.get("/api/sample/guarded", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    other_issuer = make_app(AUTH_JWT_ISSUER="someone-else")
    token = AuthActions(other_issuer).token(user)
    assert client.get("/api/sample/guarded", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_expired_token_is_401(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    user = auth.user("s@example.test")
    tokens = ACCESS_TOKENS.get(app)
    old = tokens.mint({"sub": user.id, "permissions": ["items:read"]}, now=1_000_000).token
    r = client.get("/api/sample/guarded", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401


People = tuple[User, User, User, str, str]  # owner, child, outsider, home, away


class TestHouseholdScope:
    @pytest.fixture
    def people(self, app: Flask, auth: AuthActions) -> People:
        owner = auth.user("owner@example.test")
        child = auth.user("child@example.test")
        outsider = auth.user("outsider@example.test")
        home = make_household(app, "Home", {owner.id: "owner", child.id: "child"})
        away = make_household(app, "Away", {outsider.id: "owner"})
        return owner, child, outsider, home, away

    def test_member_creates_in_own_household(self, client: FlaskClient, auth: AuthActions, people: People) -> None:
        owner, _, _, home, _ = people
        r = client.post(f"/api/sample/households/{home}/items", json={"name": "Coat",
                        "householdId": "hh_other", "id": "itm_mine"}, headers=auth.headers(owner))
        assert r.status_code == 201
        item = r.get_json()
        assert item["id"].startswith("itm_") and item["id"] != "itm_mine"
        got = client.get(f"/api/sample/households/{home}/items/{item['id']}", headers=auth.headers(owner))
        assert got.status_code == 200

    def test_outsider_gets_the_unknown_household_404(self, app: Flask, client: FlaskClient, auth: AuthActions, people: People) -> None:
        _, _, outsider, home, _ = people
        before = snapshot(app)
        denied = client.post(f"/api/sample/households/{home}/items", json={"name": "X"},
                             headers=auth.headers(outsider))
        unknown = client.post("/api/sample/households/hh_doesnotexist/items", json={"name": "X"},
                              headers=auth.headers(outsider))
        assert denied.status_code == unknown.status_code == 404
        assert without_volatile(json_object(denied)) == without_volatile(json_object(unknown))
        assert snapshot(app) == before

    def test_child_object_of_other_household_is_404(self, client: FlaskClient, auth: AuthActions, people: People) -> None:
        owner, _, outsider, home, away = people
        r = client.post(f"/api/sample/households/{away}/items", json={"name": "Theirs"},
                        headers=auth.headers(outsider))
        theirs = json_object(r)["id"]
        r = client.get(f"/api/sample/households/{home}/items/{theirs}", headers=auth.headers(owner))
        assert r.status_code == 404

    def test_role_guard_and_before_guard(self, app: Flask, client: FlaskClient, auth: AuthActions, people: People) -> None:
        owner, child, _, home, _ = people
        item = client.post(f"/api/sample/households/{home}/items", json={"name": "Hat"},
                           headers=auth.headers(child)).get_json()
        before = snapshot(app)
        r = client.delete(f"/api/sample/households/{home}/items/{item['id']}", headers=auth.headers(child))
        assert r.status_code == 403 and json_object(r)["requiredRoles"] == ["owner"]
        r = client.post(f"/api/sample/households/{home}/items", json={"name": "taken"},
                        headers=auth.headers(owner))
        assert r.status_code == 409
        assert_unchanged_but_denials(before, snapshot(app))
        r = client.delete(f"/api/sample/households/{home}/items/{item['id']}", headers=auth.headers(owner))
        assert r.status_code == 204 and r.data == b""

    def test_removed_member_loses_access_with_a_valid_token(self, app: Flask, client: FlaskClient, auth: AuthActions, people: People) -> None:
        from sqlalchemy import delete

        from app.models import Member

        _, child, _, home, _ = people
        headers = auth.headers(child)
        assert client.post(f"/api/sample/households/{home}/items", json={"name": "A"},
                           headers=headers).status_code == 201
        with SESSIONS.get(app)() as session:
            session.execute(delete(Member).where(Member.user_id == child.id))
            session.commit()
        assert client.post(f"/api/sample/households/{home}/items", json={"name": "B"},
                           headers=headers).status_code == 404


def test_unexpected_error_is_500_json_without_details(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        r = client.get("/api/sample/boom", headers={"X-Request-ID": "req-12345678"})
    assert r.status_code == 500
    body = r.get_json()
    assert body["error"] == "InternalError" and body["correlationId"] == "req-12345678"
    assert b"secret stack detail" not in r.data and b"Traceback" not in r.data
    assert b"hunter2" not in r.data


def test_permission_and_role_denials_are_audited(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    from sqlalchemy import select

    from app.models import AuditEvent

    user = auth.user("denied@example.test", permissions=["items:read"])
    assert client.get("/api/sample/guarded", headers=auth.headers(user)).status_code == 403
    child = auth.user("kid@example.test")
    home = make_household(app, "Home", {child.id: "child"})
    r = client.delete(f"/api/sample/households/{home}/items/itm_x", headers=auth.headers(child))
    assert r.status_code == 403
    with SESSIONS.get(app)() as session:
        events = {e.action: e for e in session.scalars(select(AuditEvent))}
    permission = events["permission.denied"]
    assert permission.decision == "denied" and permission.principal_id == user.id
    assert permission.chain == user.id and permission.resource == "GET /api/sample/guarded"
    assert permission.details["missing"] == ["audit:read"]
    role = events["role.denied"]
    assert role.chain == home and role.principal_id == child.id and role.details["role"] == "child"
    assert role.resource == "DELETE /api/sample/households/<household_id>/items/<item_id>"
