"""GET /api/households/{householdId}/audit: owners with audit:read, newest first, cursor pages;
everyone else is refused and nothing changes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.models import User
from testkit.builders.audit import write_events
from testkit.builders.households import (
    AuthActions,
    assert_unchanged_but_denials,
    json_object,
    make_household,
    snapshot,
)


@dataclass
class Audited:
    """A household with five audit events, and ``users`` by name: its ``owner`` and ``adult``,
    and an ``outsider`` who owns another household (two events)."""

    household: str
    users: dict[str, User]


@pytest.fixture
def setup(app: Flask, auth: AuthActions) -> Audited:
    owner = auth.user("owner@example.test")
    adult = auth.user("adult@example.test")
    outsider = auth.user("outsider@example.test")
    household = make_household(app, "Audit", {owner.id: "owner", adult.id: "adult"})
    other = make_household(app, "Other", {outsider.id: "owner"})
    write_events(app, 5, household)
    write_events(app, 2, other)
    return Audited(household, {"owner": owner, "adult": adult, "outsider": outsider})


def test_owner_reads_newest_first_in_cursor_pages(client: FlaskClient, auth: AuthActions,
                                                  setup: Audited) -> None:
    url = f"/api/households/{setup.household}/audit"
    headers = auth.headers(setup.users["owner"])
    first = client.get(f"{url}?limit=2", headers=headers)
    assert first.status_code == 200, first.get_json()
    body = json_object(first)
    assert [e["seq"] for e in body["items"]] == [5, 4]
    event = body["items"][0]
    assert set(event) == {"id", "seq", "action", "resource", "decision", "principalId",
                          "correlationId", "details", "createdAt", "prevHash", "hash"}
    assert event["details"] == {"n": 4} and event["createdAt"].endswith("Z")
    assert event["id"] == "evt_" + event["hash"][:32]
    assert event["prevHash"] == body["items"][1]["hash"]
    second = json_object(client.get(f"{url}?limit=2&cursor={body['nextCursor']}", headers=headers))
    assert [e["seq"] for e in second["items"]] == [3, 2]
    last = json_object(client.get(f"{url}?limit=2&cursor={second['nextCursor']}", headers=headers))
    assert [e["seq"] for e in last["items"]] == [1] and last["nextCursor"] is None
    everything = json_object(client.get(url, headers=headers))
    assert [e["seq"] for e in everything["items"]] == [5, 4, 3, 2, 1]  # never another household's


@pytest.mark.parametrize("cursor", ["nope", "YXVkaXQ6MA", "YXVkaXQ6eA", "aXRlbXM6Mw"],
                         ids=["garbage", "zero", "not-a-number", "foreign-prefix"])
def test_a_bad_cursor_is_400(client: FlaskClient, auth: AuthActions, setup: Audited,
                             cursor: str) -> None:
    r = client.get(f"/api/households/{setup.household}/audit?cursor={cursor}",
                   headers=auth.headers(setup.users["owner"]))
    assert r.status_code == 400 and json_object(r)["error"] == "ValidationError"


@pytest.mark.parametrize("who, permissions, status", [
    ("adult", None, 403),            # member, but not an owner
    ("outsider", None, 404),         # owner elsewhere: the household does not exist for them
    ("owner", ["households:read"], 403),  # owner without audit:read
])
def test_everyone_else_is_refused_and_nothing_changes(
    app: Flask, client: FlaskClient, auth: AuthActions, setup: Audited,
    who: str, permissions: list[str] | None, status: int,
) -> None:
    before = snapshot(app)
    r = client.get(f"/api/households/{setup.household}/audit",
                   headers=auth.headers(setup.users[who], permissions=permissions))
    assert r.status_code == status
    assert "items" not in json_object(r)
    assert_unchanged_but_denials(before, snapshot(app))


def test_no_token_is_401(client: FlaskClient, setup: Audited) -> None:
    assert client.get(f"/api/households/{setup.household}/audit").status_code == 401
