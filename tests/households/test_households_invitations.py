"""Invitations instead of silent adds: an owner invites an address; only the person whose
verified address it names accepts or declines, before it expires or is revoked. Effects are
asserted on the tables, and every refusal leaves them as they were (denials aside)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app import clock
from app.db import SESSIONS
from app.models import AuditEvent, Invitation, Member
from testkit.builders.households import (
    AuthActions,
    assert_unchanged_but_denials,
    invite_and_accept,
    make_household,
    snapshot,
    without_volatile,
)


@pytest.fixture
def home(app: Flask, auth: AuthActions) -> dict[str, Any]:
    owner = auth.user("owner@example.test", "Olive")
    grandma = auth.user("grandma@example.test", "Gran")
    household = make_household(app, "Home", {owner.id: "owner"})
    return {"id": household, "owner": owner, "grandma": grandma, "app": app, "auth": auth}


def invite(home: dict[str, Any], email: str = "grandma@example.test", role: str = "adult") -> Any:
    return home["app"].test_client().post(
        f"/api/households/{home['id']}/members", json={"email": email, "role": role},
        headers=home["auth"].headers(home["owner"]))


def answer(home: dict[str, Any], who: Any, invitation_id: str, verb: str = "accept") -> Any:
    return home["app"].test_client().post(f"/api/invitations/{invitation_id}/{verb}",
                                          headers=home["auth"].headers(who))


def members(app: Flask, household_id: str) -> dict[str, str]:
    with SESSIONS.get(app)() as session:
        rows = session.scalars(select(Member).where(Member.household_id == household_id))
        return {m.user_id: m.role for m in rows}


def invitation_row(app: Flask, invitation_id: str) -> Invitation:
    with SESSIONS.get(app)() as session:
        row = session.get(Invitation, invitation_id)
        assert row is not None
        session.expunge(row)
        return row


def actions(app: Flask, household_id: str) -> list[tuple[str, str]]:
    with SESSIONS.get(app)() as session:
        return [(e.action, e.decision) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.household_id == household_id)
            .order_by(AuditEvent.id))]


def test_invite_list_accept(home: dict[str, Any]) -> None:
    app, auth, grandma = home["app"], home["auth"], home["grandma"]
    created = invite(home, "Grandma@EXAMPLE.test", "adult")
    assert created.status_code == 201
    body = created.get_json()
    assert set(body) == {"id", "email", "role", "status", "expiresAt", "createdAt"}
    assert body["id"].startswith("inv_") and body["email"] == "grandma@example.test"
    assert body["status"] == "PENDING" and body["role"] == "adult"
    assert members(app, home["id"]) == {home["owner"].id: "owner"}  # not a member yet

    client = app.test_client()
    owners = client.get(f"/api/households/{home['id']}/invitations",
                        headers=auth.headers(home["owner"])).get_json()["items"]
    assert [i["id"] for i in owners] == [body["id"]]
    mine = client.get("/api/invitations", headers=auth.headers(grandma)).get_json()["items"]
    assert [(i["id"], i["householdId"], i["householdName"], i["role"], i["invitedByName"])
            for i in mine] == [(body["id"], home["id"], "Home", "adult", "Olive")]

    accepted = answer(home, grandma, body["id"])
    assert accepted.status_code == 200
    assert accepted.get_json()["householdId"] == home["id"]
    assert accepted.get_json()["userId"] == grandma.id and accepted.get_json()["role"] == "adult"
    assert members(app, home["id"]) == {home["owner"].id: "owner", grandma.id: "adult"}
    row = invitation_row(app, body["id"])
    assert row.status == "ACCEPTED" and row.decided_by == grandma.id
    assert client.get("/api/invitations", headers=auth.headers(grandma)).get_json()["items"] == []
    assert ("invitation.created", "allowed") in actions(app, home["id"])
    assert ("invitation.accepted", "allowed") in actions(app, home["id"])
    # Once only.
    before = snapshot(app)
    again = answer(home, grandma, body["id"])
    assert again.status_code == 409
    assert snapshot(app) == before


def test_decline(home: dict[str, Any]) -> None:
    app = home["app"]
    invitation = invite(home).get_json()["id"]
    assert answer(home, home["grandma"], invitation, "decline").status_code == 204
    assert invitation_row(app, invitation).status == "DECLINED"
    assert members(app, home["id"]) == {home["owner"].id: "owner"}
    assert answer(home, home["grandma"], invitation).status_code == 409
    assert ("invitation.declined", "allowed") in actions(app, home["id"])


def test_someone_elses_invitation_is_404_like_an_unknown_one(home: dict[str, Any]) -> None:
    app, auth = home["app"], home["auth"]
    invitation = invite(home).get_json()["id"]
    impostor = auth.user("grandma@example.test.evil", "Not gran")
    before = snapshot(app)
    for verb in ("accept", "decline"):
        theirs = answer(home, impostor, invitation, verb)
        unknown = answer(home, impostor, "inv_00000000000000000000000000", verb)
        assert theirs.status_code == unknown.status_code == 404
        assert without_volatile(theirs.get_json()) == without_volatile(unknown.get_json())
    assert snapshot(app) == before
    assert app.test_client().get("/api/invitations",
                                 headers=auth.headers(impostor)).get_json()["items"] == []


def test_an_unverified_address_cannot_accept_or_decline(app: Flask, auth: AuthActions) -> None:
    owner = auth.user("owner@example.test")
    claimant = auth.user("grandma@example.test", verified=False)
    household = make_household(app, "Home", {owner.id: "owner"})
    home = {"id": household, "owner": owner, "app": app, "auth": auth}
    invitation = invite(home).get_json()["id"]
    before = snapshot(app)
    for verb in ("accept", "decline"):
        refused = answer(home, claimant, invitation, verb)
        assert refused.status_code == 403 and refused.get_json()["reason"] == "EmailNotVerified"
    after = snapshot(app)
    assert_unchanged_but_denials(before, after)
    assert len(after["audit_events"]) == len(before["audit_events"]) + 2
    assert app.test_client().get("/api/invitations",
                                 headers=auth.headers(claimant)).get_json()["items"] == []
    assert members(app, household) == {owner.id: "owner"}


def test_an_expired_invitation_is_refused(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(INVITATION_TTL_SECONDS=60)
    auth = AuthActions(app)
    owner, grandma = auth.user("owner@example.test"), auth.user("grandma@example.test")
    home = {"id": make_household(app, "Home", {owner.id: "owner"}), "owner": owner,
            "app": app, "auth": auth}
    at = [clock.now()]
    monkeypatch.setattr(clock, "now", lambda: at[0])
    invitation = invite(home).get_json()
    at[0] += timedelta(seconds=59)
    assert [i["id"] for i in app.test_client().get(
        "/api/invitations", headers=auth.headers(grandma)).get_json()["items"]] == [
        invitation["id"]]
    at[0] += timedelta(seconds=1)  # exactly at expiresAt: expired
    before = snapshot(app)
    for verb in ("accept", "decline"):
        assert answer(home, grandma, invitation["id"], verb).status_code == 410
    assert snapshot(app) == before
    client = app.test_client()
    assert client.get("/api/invitations", headers=auth.headers(grandma)).get_json()["items"] == []
    listed = client.get(f"/api/households/{home['id']}/invitations",
                        headers=auth.headers(owner)).get_json()["items"]
    assert [i["status"] for i in listed] == ["EXPIRED"]
    revoked = client.delete(f"/api/households/{home['id']}/invitations/{invitation['id']}",
                            headers=auth.headers(owner))
    assert revoked.status_code == 409
    # An expired invitation no longer blocks a new one.
    assert invite(home).status_code == 201


def test_revoke(home: dict[str, Any]) -> None:
    app, auth = home["app"], home["auth"]
    invitation = invite(home).get_json()["id"]
    client = app.test_client()
    url = f"/api/households/{home['id']}/invitations/{invitation}"
    assert client.delete(url, headers=auth.headers(home["owner"])).status_code == 204
    assert invitation_row(app, invitation).status == "REVOKED"
    assert answer(home, home["grandma"], invitation).status_code == 409
    assert client.delete(url, headers=auth.headers(home["owner"])).status_code == 409
    assert members(app, home["id"]) == {home["owner"].id: "owner"}
    assert ("invitation.revoked", "allowed") in actions(app, home["id"])
    # Another household's owner: the same 404 as for an unknown invitation.
    stranger = auth.user("stranger@example.test")
    away = make_household(app, "Away", {stranger.id: "owner"})
    theirs = client.delete(f"/api/households/{away}/invitations/{invitation}",
                           headers=auth.headers(stranger))
    assert theirs.status_code == 404


def test_invitations_refuse_duplicates_and_members(home: dict[str, Any]) -> None:
    first = invite(home)
    assert first.status_code == 201
    assert invite(home, "grandma@example.test", "child").status_code == 409
    assert answer(home, home["grandma"], first.get_json()["id"]).status_code == 200
    assert invite(home, "GRANDMA@example.test").status_code == 409  # a member already
    assert invite(home, "owner@example.test").status_code == 409


@pytest.mark.parametrize("email", ["grandma@exаmple.test", "grandma@аррӏе.com", "a@-bad.test"])
def test_a_confusable_or_invalid_domain_is_refused(home: dict[str, Any], email: str) -> None:
    before = snapshot(home["app"])
    refused = invite(home, email)
    assert refused.status_code == 422 and refused.get_json()["error"] == "UnprocessableEntity"
    assert refused.get_json()["details"][0]["field"] == "email"
    assert snapshot(home["app"]) == before


def test_a_fullwidth_address_is_the_same_address(home: dict[str, Any]) -> None:
    invitation = invite(home, "ｇrandma@ｅxample.test").get_json()
    assert invitation["email"] == "grandma@example.test"
    assert answer(home, home["grandma"], invitation["id"]).status_code == 200


def test_the_last_owner_rules_hold_with_invited_owners(home: dict[str, Any]) -> None:
    app, auth, owner, grandma = home["app"], home["auth"], home["owner"], home["grandma"]
    invite_and_accept(app, auth, home["id"], owner, grandma, "owner")
    client = app.test_client()
    base = f"/api/households/{home['id']}/members"
    # Two owners: one may leave; then the other is the last and may not.
    assert client.delete(f"{base}/{owner.id}", headers=auth.headers(grandma)).status_code == 204
    assert client.delete(f"{base}/{grandma.id}", headers=auth.headers(grandma)).status_code == 409
    assert client.patch(f"{base}/{grandma.id}", json={"role": "adult"},
                        headers=auth.headers(grandma)).status_code == 409
    assert members(app, home["id"]) == {grandma.id: "owner"}


def test_a_child_or_adult_cannot_invite(home: dict[str, Any]) -> None:
    app, auth = home["app"], home["auth"]
    kid = auth.user("kid@example.test")
    invite_and_accept(app, auth, home["id"], home["owner"], kid, "child")
    before = snapshot(app)
    refused = app.test_client().post(f"/api/households/{home['id']}/members",
                                     json={"email": "x@example.test", "role": "owner"},
                                     headers=auth.headers(kid))
    assert refused.status_code == 403
    assert_unchanged_but_denials(before, snapshot(app))


def test_openapi_describes_the_invitation_routes(app: Flask) -> None:
    paths = app.test_client().get("/api/openapi.json").get_json()["paths"]
    assert "201" in paths["/api/households/{householdId}/members"]["post"]["responses"]
    for path, method in (("/api/invitations", "get"),
                         ("/api/invitations/{invitationId}/accept", "post"),
                         ("/api/invitations/{invitationId}/decline", "post"),
                         ("/api/households/{householdId}/invitations", "get"),
                         ("/api/households/{householdId}/invitations/{invitationId}", "delete"),
                         ("/api/auth/sessions", "get"),
                         ("/api/auth/sessions/{sessionId}", "delete")):
        operation = paths[path][method]
        assert operation["summary"] and "401" in operation["responses"], path


@pytest.mark.postgres_only
def test_two_concurrent_accepts_make_one_membership(database_url: str, tmp_path: Any) -> None:
    """Several gunicorn workers, one invitation accepted by 12 concurrent calls of its person:
    one 200, the others 409, one membership, no 5xx."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from app import create_app
    from app.db import Database
    from testkit.config import BASE_CONFIG
    from testkit.servers.processes import free_port, gunicorn_process

    app = create_app({**BASE_CONFIG, "DATABASE_URL": database_url})
    auth = AuthActions(app)
    owner, grandma = auth.user("owner@example.test"), auth.user("grandma@example.test")
    household = make_household(app, "Home", {owner.id: "owner"})
    invitation = app.test_client().post(
        f"/api/households/{household}/members", json={"email": grandma.email, "role": "adult"},
        headers=auth.headers(owner)).get_json()["id"]
    headers = auth.headers(grandma)
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "4",
           "HEARTHGATE_ENV": "test", "DATABASE_URL": database_url,
           "AUTH_JWT_SECRET": BASE_CONFIG["AUTH_JWT_SECRET"], "RATELIMIT_ENABLED": "false"}
    try:
        with gunicorn_process("wsgi:app", env, tmp_path / "api.log"):
            url = f"http://127.0.0.1:{port}/api/invitations/{invitation}/accept"
            with ThreadPoolExecutor(12) as pool:
                statuses = sorted(pool.map(
                    lambda _: requests.post(url, headers=headers, timeout=60).status_code,
                    range(12)))
        assert statuses == [200] + [409] * 11, statuses
        assert members(app, household) == {owner.id: "owner", grandma.id: "adult"}
        accepted = [a for a in actions(app, household) if a[0] == "invitation.accepted"]
        assert accepted == [("invitation.accepted", "allowed")]
    finally:
        Database.engine(app).dispose()
