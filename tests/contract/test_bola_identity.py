"""BOLA matrix of the person-scoped routes (invitations to one's address, one's sessions): every
route × the person it belongs to and someone else. Someone else's object is the same 404 as an
unknown id, byte for byte (ids and timestamps aside), and changes nothing. A bearer route with a
path parameter that is neither household-scoped (tests/contract/test_bola.py, test_bola_buyflow.py) nor
in this matrix fails ``test_every_person_scoped_route_is_in_the_matrix``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from app.gateway.contracts import contract_of
from testkit.builders.households import (
    AuthActions,
    json_object,
    make_household,
    snapshot,
    without_volatile,
)
from testkit.typing import MakeApp


@dataclass(frozen=True)
class Case:
    method: str
    rule: str
    ok: int
    unknown: str  # the id of the path's object for the "unknown" call


CASES = [
    Case("POST", "/api/invitations/<invitation_id>/accept", 200, "inv_00000000000000000000000000"),
    Case("POST", "/api/invitations/<invitation_id>/decline", 204, "inv_00000000000000000000000000"),
    Case("DELETE", "/api/auth/sessions/<session_id>", 204, "rtf_00000000000000000000000000"),
]


@dataclass(frozen=True)
class PersonWorld:
    """On ``app`` (local accounts on): an invitation of the invitee's and a session of theirs
    (``ids`` by URL parameter), and ``headers`` by who: the ``invitee`` and a ``stranger``."""

    app: Flask
    headers: dict[str, dict[str, str]]
    ids: dict[str, str]


@pytest.fixture
def person_world(make_app: MakeApp) -> PersonWorld:
    app = make_app(AUTH_LOCAL_ACCOUNTS_ENABLED=True)
    auth = AuthActions(app)
    owner = auth.user("owner@example.test")
    invitee = auth.user("invitee@example.test")
    stranger = auth.user("stranger@example.test")
    home = make_household(app, "Home", {owner.id: "owner"})
    client = app.test_client()
    invitation = json_object(client.post(f"/api/households/{home}/members",
                                         json={"email": invitee.email, "role": "adult"},
                                         headers=auth.headers(owner)))["id"]
    # A real session of the invitee (so that ending it is possible).
    from app.auth import sessions

    with app.test_request_context():
        from flask import g

        from app.context import Principal
        from app.db import db
        from app.models import User

        # A request acts for its principal (on PostgreSQL the database admits that user's rows).
        g.principal = Principal(user_id=invitee.id, email=invitee.email, name=None)
        user = db.session.get(User, invitee.id)
        assert user is not None
        pair = sessions.start_session(user, "test")
        db.session.commit()
    from testkit.servers.oidc import parts

    sid = parts(pair.token)[1]["sid"]
    return PersonWorld(app=app,
                       headers={"invitee": {"Authorization": f"Bearer {pair.token}"},
                                "stranger": auth.headers(stranger)},
                       ids={"invitation_id": invitation, "session_id": sid})


def _path(rule: str, ids: dict[str, str]) -> str:
    return re.sub(r"<([a-z_]+)>", lambda m: ids[m.group(1)], rule)


@pytest.mark.parametrize("who", ["invitee", "stranger"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.rule}")
def test_matrix(person_world: PersonWorld, case: Case, who: str) -> None:
    app = person_world.app
    client = app.test_client()
    headers = person_world.headers[who]
    before = snapshot(app)
    response = client.open(_path(case.rule, person_world.ids), method=case.method, json={},
                           headers=headers)
    if who == "invitee":
        assert response.status_code == case.ok, response.get_json()
        return
    assert response.status_code == 404, response.get_json()
    assert snapshot(app) == before
    param = re.search(r"<([a-z_]+)>", case.rule)
    assert param is not None
    unknown = client.open(_path(case.rule, {**person_world.ids, param.group(1): case.unknown}),
                          method=case.method, json={}, headers=headers)
    assert unknown.status_code == 404
    assert without_volatile(response.get_json()) == without_volatile(unknown.get_json())


@pytest.mark.parametrize("path", ["/api/invitations", "/api/auth/sessions"])
def test_lists_show_only_the_callers_own(person_world: PersonWorld, path: str) -> None:
    client = person_world.app.test_client()
    mine = json_object(client.get(path, headers=person_world.headers["invitee"]))["items"]
    theirs = json_object(client.get(path, headers=person_world.headers["stranger"]))["items"]
    wanted = person_world.ids["invitation_id" if "invitations" in path else "session_id"]
    assert [i["id"] for i in mine] == [wanted]
    assert theirs == []


def test_every_person_scoped_route_is_in_the_matrix(make_app: Any) -> None:
    app = make_app(AUTH_LOCAL_ACCOUNTS_ENABLED=True)
    covered = {(c.method, c.rule) for c in CASES}
    for rule in app.url_map.iter_rules():
        contract = contract_of(app.view_functions[rule.endpoint])
        if contract is None or contract.auth != "bearer" or contract.household:
            continue
        if "<" not in rule.rule:
            continue
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert (method, rule.rule) in covered, f"{method} {rule.rule} missing from the matrix"
