"""The trail through the real routes: a failing audit write aborts the buy-flow approval, a
household's life is on its chain and readable by its owner, and its deletion leaves a verified
erasure record on the system chain."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.models import AuditEvent, PurchaseRequest, User
from testkit.builders.audit import chain_rows, session_of, verify
from testkit.builders.households import AuthActions, invite_and_accept, json_object, snapshot


@dataclass
class RealHousehold:
    """A household made through the API by its ``owner``, which ``adult`` joined by invitation."""

    id: str
    owner: User
    adult: User


@pytest.fixture
def household(client: FlaskClient, auth: AuthActions) -> RealHousehold:
    owner = auth.user("owner@example.test")
    adult = auth.user("adult@example.test")
    created = client.post("/api/households", json={"name": "Real"}, headers=auth.headers(owner))
    assert created.status_code == 201, created.get_json()
    household_id = json_object(created)["id"]
    invite_and_accept(client.application, auth, household_id, owner, adult, "adult")
    return RealHousehold(id=household_id, owner=owner, adult=adult)


def test_a_failing_audit_write_aborts_the_real_approval(
    app: Flask, client: FlaskClient, auth: AuthActions, household: RealHousehold,
    request: pytest.FixtureRequest,
) -> None:
    base = f"/api/households/{household.id}/requests"
    made = client.post(base, json={"title": "Boots", "amountMinor": 4200, "currency": "EUR"},
                       headers=auth.headers(household.adult))
    assert made.status_code == 201, made.get_json()
    request_id = json_object(made)["id"]
    request.getfixturevalue("failing_audit_storage")
    before = snapshot(app)
    r = client.post(f"{base}/{request_id}/approve", headers=auth.headers(household.owner))
    assert r.status_code >= 500
    assert snapshot(app) == before
    with session_of(app) as session:
        row = session.get(PurchaseRequest, request_id)
        assert row is not None and row.status == "SUBMITTED"


def test_the_owner_reads_the_household_story_and_deletion_is_provable(
    app: Flask, client: FlaskClient, auth: AuthActions, household: RealHousehold,
) -> None:
    headers = auth.headers(household.owner)
    url = f"/api/households/{household.id}"
    assert client.patch(url, json={"name": "Renamed"}, headers=headers).status_code == 200
    trail = json_object(client.get(f"{url}/audit", headers=headers))["items"]
    actions = [e["action"] for e in trail]
    assert actions[0] == "household.renamed" and actions[-1] == "household.created"
    assert {"invitation.created", "invitation.accepted"} <= set(actions)
    # Each step by who took it: the owner, and the adult accepting their invitation.
    assert all(e["principalId"] == (household.adult.id if e["action"] == "invitation.accepted"
                                    else household.owner.id) for e in trail)
    head = chain_rows(app, household.id)[-1]

    assert client.delete(url, headers=headers).status_code == 204
    assert chain_rows(app, household.id) == []
    with session_of(app) as session:
        erased = session.scalars(select(AuditEvent)
                                 .where(AuditEvent.action == "household.erased")).one()
    assert erased.chain == "system"
    assert erased.details["finalSeq"] == head.seq
    assert erased.details["finalHeadHash"] == head.hash
    report = verify(app)
    assert report.ok, report.problems


def test_the_household_and_member_changes_record_exactly_their_events(
    app: Flask, client: FlaskClient, auth: AuthActions, household: RealHousehold,
) -> None:
    """What each change of a household and its members writes on the chain, field by field, and
    nothing else; a refused change (the last owner) writes no event of its kind."""
    owner, adult = household.owner, household.adult
    headers = auth.headers(owner)
    url = f"/api/households/{household.id}"
    start = len(chain_rows(app, household.id))
    assert client.patch(url, json={"name": "Renamed"}, headers=headers).status_code == 200
    assert client.patch(f"{url}/members/{adult.id}", json={"role": "owner"},
                        headers=headers).status_code == 200
    assert client.patch(f"{url}/members/{owner.id}", json={"role": "child"},
                        headers=headers).status_code == 200
    assert client.patch(f"{url}/members/{adult.id}", json={"role": "adult"},
                        headers=auth.headers(adult)).status_code == 409  # the last owner
    assert client.delete(f"{url}/members/{owner.id}",
                         headers=auth.headers(adult)).status_code == 204
    events = [(row.action, row.resource, row.decision, row.principal_id, row.details)
              for row in chain_rows(app, household.id)[start:]]
    assert events == [
        ("household.renamed", f"household:{household.id}", "allowed", owner.id, {}),
        ("member.role_changed", f"member:{adult.id}", "allowed", owner.id, {"role": "owner"}),
        ("member.role_changed", f"member:{owner.id}", "allowed", owner.id, {"role": "child"}),
        ("member.removed", f"member:{owner.id}", "allowed", adult.id, {}),
    ]


def test_no_route_audits_from_an_after_guard(app: Flask) -> None:
    """One way to audit: where the change is made (``audit.record`` in the service or route that
    makes it), so no contract of the app carries after guards."""
    from app.gateway.contracts import contract_of

    contracts = [(name, contract_of(view)) for name, view in app.view_functions.items()]
    declared = [(name, c) for name, c in contracts if c is not None]
    assert len(declared) > 40  # every contracted route of the app, not a few
    assert [name for name, c in declared if c.after] == []
