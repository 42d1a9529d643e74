"""Invitations instead of silent adds: an owner invites an address; only the person whose
verified address it names accepts or declines, before it expires or is revoked. Effects are
asserted on the tables, and every refusal leaves them as they were (denials aside)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from app import clock
from app.db import SESSIONS
from app.models import AuditEvent, Invitation, Member, User
from testkit.builders.households import (
    AuthActions,
    assert_unchanged_but_denials,
    invite_and_accept,
    json_object,
    make_household,
    snapshot,
    without_volatile,
)


@dataclass
class Home:
    """A household (``id``) whose only member is its ``owner``, and ``grandma``, a user not yet
    in it, on ``app`` with ``auth`` to act as them."""

    id: str
    owner: User
    grandma: User
    app: Flask
    auth: AuthActions


@pytest.fixture
def home(app: Flask, auth: AuthActions) -> Home:
    owner = auth.user("owner@example.test", "Olive")
    grandma = auth.user("grandma@example.test", "Gran")
    household = make_household(app, "Home", {owner.id: "owner"})
    return Home(id=household, owner=owner, grandma=grandma, app=app, auth=auth)


def invite(home: Home, email: str = "grandma@example.test", role: str = "adult") -> TestResponse:
    return home.app.test_client().post(
        f"/api/households/{home.id}/members", json={"email": email, "role": role},
        headers=home.auth.headers(home.owner))


def answer(home: Home, who: User, invitation_id: str, verb: str = "accept") -> TestResponse:
    return home.app.test_client().post(f"/api/invitations/{invitation_id}/{verb}",
                                       headers=home.auth.headers(who))


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


def test_invite_list_accept(home: Home) -> None:
    app, auth, grandma = home.app, home.auth, home.grandma
    created = invite(home, "Grandma@EXAMPLE.test", "adult")
    assert created.status_code == 201
    body = json_object(created)
    assert set(body) == {"id", "email", "role", "status", "expiresAt", "createdAt"}
    assert body["id"].startswith("inv_") and body["email"] == "grandma@example.test"
    assert body["status"] == "PENDING" and body["role"] == "adult"
    assert members(app, home.id) == {home.owner.id: "owner"}  # not a member yet

    client = app.test_client()
    owners = json_object(client.get(f"/api/households/{home.id}/invitations",
                                    headers=auth.headers(home.owner)))["items"]
    assert [i["id"] for i in owners] == [body["id"]]
    mine = json_object(client.get("/api/invitations", headers=auth.headers(grandma)))["items"]
    assert [(i["id"], i["householdId"], i["householdName"], i["role"], i["invitedByName"])
            for i in mine] == [(body["id"], home.id, "Home", "adult", "Olive")]

    accepted = answer(home, grandma, body["id"])
    assert accepted.status_code == 200
    membership = json_object(accepted)
    assert membership["householdId"] == home.id
    assert membership["userId"] == grandma.id and membership["role"] == "adult"
    assert members(app, home.id) == {home.owner.id: "owner", grandma.id: "adult"}
    row = invitation_row(app, body["id"])
    assert row.status == "ACCEPTED" and row.decided_by == grandma.id
    assert json_object(client.get("/api/invitations", headers=auth.headers(grandma)))["items"] == []
    assert ("invitation.created", "allowed") in actions(app, home.id)
    assert ("invitation.accepted", "allowed") in actions(app, home.id)
    # Once only.
    before = snapshot(app)
    again = answer(home, grandma, body["id"])
    assert again.status_code == 409
    assert snapshot(app) == before


def test_decline(home: Home) -> None:
    app = home.app
    invitation = json_object(invite(home))["id"]
    assert answer(home, home.grandma, invitation, "decline").status_code == 204
    assert invitation_row(app, invitation).status == "DECLINED"
    assert members(app, home.id) == {home.owner.id: "owner"}
    assert answer(home, home.grandma, invitation).status_code == 409
    assert ("invitation.declined", "allowed") in actions(app, home.id)


def test_someone_elses_invitation_is_404_like_an_unknown_one(home: Home) -> None:
    app, auth = home.app, home.auth
    invitation = json_object(invite(home))["id"]
    impostor = auth.user("grandma@example.test.evil", "Not gran")
    before = snapshot(app)
    for verb in ("accept", "decline"):
        theirs = answer(home, impostor, invitation, verb)
        unknown = answer(home, impostor, "inv_00000000000000000000000000", verb)
        assert theirs.status_code == unknown.status_code == 404
        assert without_volatile(json_object(theirs)) == without_volatile(json_object(unknown))
    assert snapshot(app) == before
    assert json_object(app.test_client().get(
        "/api/invitations", headers=auth.headers(impostor)))["items"] == []


def test_an_unverified_address_cannot_accept_or_decline(app: Flask, auth: AuthActions) -> None:
    owner = auth.user("owner@example.test")
    claimant = auth.user("grandma@example.test", verified=False)
    household = make_household(app, "Home", {owner.id: "owner"})
    home = Home(id=household, owner=owner, grandma=claimant, app=app, auth=auth)
    invitation = json_object(invite(home))["id"]
    before = snapshot(app)
    for verb in ("accept", "decline"):
        refused = answer(home, claimant, invitation, verb)
        assert refused.status_code == 403 and json_object(refused)["reason"] == "EmailNotVerified"
    after = snapshot(app)
    assert_unchanged_but_denials(before, after)
    assert len(after["audit_events"]) == len(before["audit_events"]) + 2
    assert json_object(app.test_client().get(
        "/api/invitations", headers=auth.headers(claimant)))["items"] == []
    assert members(app, household) == {owner.id: "owner"}


def test_an_expired_invitation_is_refused(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(INVITATION_TTL_SECONDS=60)
    auth = AuthActions(app)
    owner, grandma = auth.user("owner@example.test"), auth.user("grandma@example.test")
    home = Home(id=make_household(app, "Home", {owner.id: "owner"}), owner=owner,
                grandma=grandma, app=app, auth=auth)
    at = [clock.now()]
    monkeypatch.setattr(clock, "now", lambda: at[0])
    invitation = json_object(invite(home))
    at[0] += timedelta(seconds=59)
    assert [i["id"] for i in json_object(app.test_client().get(
        "/api/invitations", headers=auth.headers(grandma)))["items"]] == [
        invitation["id"]]
    at[0] += timedelta(seconds=1)  # exactly at expiresAt: expired
    before = snapshot(app)
    for verb in ("accept", "decline"):
        assert answer(home, grandma, invitation["id"], verb).status_code == 410
    assert snapshot(app) == before
    client = app.test_client()
    assert json_object(client.get("/api/invitations", headers=auth.headers(grandma)))["items"] == []
    listed = json_object(client.get(f"/api/households/{home.id}/invitations",
                                    headers=auth.headers(owner)))["items"]
    assert [i["status"] for i in listed] == ["EXPIRED"]
    revoked = client.delete(f"/api/households/{home.id}/invitations/{invitation['id']}",
                            headers=auth.headers(owner))
    assert revoked.status_code == 409
    # An expired invitation no longer blocks a new one.
    assert invite(home).status_code == 201


def test_revoke(home: Home) -> None:
    app, auth = home.app, home.auth
    invitation = json_object(invite(home))["id"]
    client = app.test_client()
    url = f"/api/households/{home.id}/invitations/{invitation}"
    assert client.delete(url, headers=auth.headers(home.owner)).status_code == 204
    assert invitation_row(app, invitation).status == "REVOKED"
    assert answer(home, home.grandma, invitation).status_code == 409
    assert client.delete(url, headers=auth.headers(home.owner)).status_code == 409
    assert members(app, home.id) == {home.owner.id: "owner"}
    assert ("invitation.revoked", "allowed") in actions(app, home.id)
    # Another household's owner: the same 404 as for an unknown invitation.
    stranger = auth.user("stranger@example.test")
    away = make_household(app, "Away", {stranger.id: "owner"})
    theirs = client.delete(f"/api/households/{away}/invitations/{invitation}",
                           headers=auth.headers(stranger))
    assert theirs.status_code == 404


def test_invitations_refuse_duplicates_and_members(home: Home) -> None:
    first = invite(home)
    assert first.status_code == 201
    assert invite(home, "grandma@example.test", "child").status_code == 409
    assert answer(home, home.grandma, json_object(first)["id"]).status_code == 200
    assert invite(home, "GRANDMA@example.test").status_code == 409  # a member already
    assert invite(home, "owner@example.test").status_code == 409


@pytest.mark.parametrize("email", ["grandma@exаmple.test", "grandma@аррӏе.com", "a@-bad.test"])
def test_a_confusable_or_invalid_domain_is_refused(home: Home, email: str) -> None:
    before = snapshot(home.app)
    refused = invite(home, email)
    assert refused.status_code == 422 and json_object(refused)["error"] == "UnprocessableEntity"
    assert json_object(refused)["details"][0]["field"] == "email"
    assert snapshot(home.app) == before


def test_a_fullwidth_address_is_the_same_address(home: Home) -> None:
    invitation = json_object(invite(home, "ｇrandma@ｅxample.test"))
    assert invitation["email"] == "grandma@example.test"
    assert answer(home, home.grandma, invitation["id"]).status_code == 200


def test_the_last_owner_rules_hold_with_invited_owners(home: Home) -> None:
    app, auth, owner, grandma = home.app, home.auth, home.owner, home.grandma
    invite_and_accept(app, auth, home.id, owner, grandma, "owner")
    client = app.test_client()
    base = f"/api/households/{home.id}/members"
    # Two owners: one may leave; then the other is the last and may not.
    assert client.delete(f"{base}/{owner.id}", headers=auth.headers(grandma)).status_code == 204
    assert client.delete(f"{base}/{grandma.id}", headers=auth.headers(grandma)).status_code == 409
    assert client.patch(f"{base}/{grandma.id}", json={"role": "adult"},
                        headers=auth.headers(grandma)).status_code == 409
    assert members(app, home.id) == {grandma.id: "owner"}


def test_a_child_or_adult_cannot_invite(home: Home) -> None:
    app, auth = home.app, home.auth
    kid = auth.user("kid@example.test")
    invite_and_accept(app, auth, home.id, home.owner, kid, "child")
    before = snapshot(app)
    refused = app.test_client().post(f"/api/households/{home.id}/members",
                                     json={"email": "x@example.test", "role": "owner"},
                                     headers=auth.headers(kid))
    assert refused.status_code == 403
    assert_unchanged_but_denials(before, snapshot(app))


def test_openapi_describes_the_invitation_routes(app: Flask) -> None:
    paths = json_object(app.test_client().get("/api/openapi.json"))["paths"]
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
    invitation = json_object(app.test_client().post(
        f"/api/households/{household}/members", json={"email": grandma.email, "role": "adult"},
        headers=auth.headers(owner)))["id"]
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
