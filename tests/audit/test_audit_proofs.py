"""Inclusion proofs: GET …/audit/{eventId}/proof and ``flask audit prove`` give RFC 9162 proofs
against a signed checkpoint that verify offline with the published public key alone; a mutated
proof (index, path bit, tree size, another checkpoint) fails; members prove only their own
events, outsiders see nothing, and an event newer than the newest checkpoint is 409."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flask import Flask
from flask.testing import FlaskClient

from app import audit
from app.audit.checkpoints import checkpoint_all
from app.audit.notes import open_note
from app.audit.proofs import event_id, verify_proof
from app.audit.signing import signer
from app.models import AuditEvent, User
from testkit.builders.audit import chain_rows, session_of
from testkit.builders.households import (
    AuthActions,
    assert_unchanged_but_denials,
    json_object,
    make_household,
    snapshot,
)

pytestmark = pytest.mark.settings(AUDIT_CHECKPOINT_EVERY=4)


@dataclass(frozen=True)
class ProofWorld:
    """The household ``home`` (its ``owner`` and ``adult``) with six events, whose chain is
    ``rows`` in order, and an ``outsider`` who owns another household."""

    owner: User
    adult: User
    outsider: User
    home: str
    rows: list[AuditEvent]


@pytest.fixture
def world(app: Flask, auth: AuthActions) -> ProofWorld:
    owner, adult = auth.user("owner@example.test"), auth.user("adult@example.test")
    outsider = auth.user("outsider@example.test")
    home = make_household(app, "Proofs", {owner.id: "owner", adult.id: "adult"})
    make_household(app, "Away", {outsider.id: "owner"})
    with app.app_context(), session_of(app) as session:
        for n in range(6):
            audit.record("test.event", household_id=home, resource=f"thing:{n}",
                         principal_id=adult.id if n % 2 else owner.id, session=session)
            session.commit()
    rows = chain_rows(app, home)
    return ProofWorld(owner=owner, adult=adult, outsider=outsider, home=home, rows=rows)


def _url(home: str, row: AuditEvent) -> str:
    return f"/api/households/{home}/audit/{event_id(row.hash)}/proof"


def _published_key(client: FlaskClient) -> Any:
    r = client.get("/.well-known/hearthgate-audit-key")
    assert r.status_code == 200 and b"BEGIN PUBLIC KEY" in r.data
    return load_pem_public_key(r.data)


def _checkpoint(app: Flask) -> None:
    with app.app_context(), session_of(app) as session:
        checkpoint_all(session, signer(app))
        session.commit()


def test_every_event_up_to_the_checkpoint_has_a_proof_that_verifies_offline(
    app: Flask, client: FlaskClient, auth: AuthActions, world: ProofWorld,
) -> None:
    key = _published_key(client)
    home, rows = world.home, world.rows
    checkpointed = [r for r in rows if r.seq <= 4]  # AUDIT_CHECKPOINT_EVERY=4, 7 entries
    for row in checkpointed:
        r = client.get(_url(home, row), headers=auth.headers(world.owner))
        assert r.status_code == 200, r.get_json()
        proof = r.get_json()
        assert set(proof) == {"eventId", "chain", "leafIndex", "treeSize", "leafHash",
                              "inclusionPath", "checkpoint"}
        assert (proof["chain"], proof["leafIndex"], proof["treeSize"]) == (home, row.seq - 1, 4)
        assert proof["eventId"] == event_id(row.hash)
        note = open_note(proof["checkpoint"], [key])
        assert note.chain == home and note.size == 4
        assert verify_proof(proof, [key], row.hash) == []


def _mutations(proof: dict[str, Any]) -> dict[str, dict[str, Any]]:
    path = proof["inclusionPath"]
    flipped = base64.b64decode(path[0])
    flipped = bytes([flipped[0] ^ 1]) + flipped[1:]
    origin, size, root, rest = proof["checkpoint"].split("\n", 3)
    return {
        "index": {**proof, "leafIndex": (proof["leafIndex"] + 1) % proof["treeSize"]},
        "bit": {**proof, "inclusionPath": [base64.b64encode(flipped).decode(), *path[1:]]},
        "size": {**proof, "treeSize": proof["treeSize"] + 1},
        "short-path": {**proof, "inclusionPath": path[:-1]},
        "leaf": {**proof, "leafHash": path[0]},
        "unsigned-size": {**proof, "checkpoint": "\n".join([origin, "5", root, rest])},
    }


def test_a_mutated_proof_fails_by_function_and_command(
    app: Flask, client: FlaskClient, auth: AuthActions, world: ProofWorld, tmp_path: Path,
) -> None:
    key = _published_key(client)
    row = world.rows[1]
    proof = client.get(_url(world.home, row), headers=auth.headers(world.owner)).get_json()
    public = tmp_path / "audit.pem"
    public.write_bytes(client.get("/.well-known/hearthgate-audit-key").data)
    good = tmp_path / "proof.json"
    good.write_text(json.dumps(proof))
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audit", "verify-proof", str(good), "--public-key", str(public)])
    assert ok.exit_code == 0 and ok.output.startswith("OK:"), ok.output
    for name, mutated in _mutations(proof).items():
        assert verify_proof(mutated, [key], None), name
        bad = tmp_path / f"{name}.json"
        bad.write_text(json.dumps(mutated))
        result = runner.invoke(args=["audit", "verify-proof", str(bad), "--public-key",
                                     str(public)])
        assert result.exit_code == 1 and "FAIL" in result.output, (name, result.output)
    # The right proof for another event is no proof for this one.
    assert verify_proof(proof, [key], world.rows[2].hash)


def test_flask_audit_prove_gives_the_same_kind_of_proof(
    app: Flask, client: FlaskClient, world: ProofWorld,
) -> None:
    row = world.rows[2]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "prove", event_id(row.hash)])
    assert result.exit_code == 0, result.output
    proof = json.loads(result.output)
    assert verify_proof(proof, [_published_key(client)], row.hash) == []
    public = runner.invoke(args=["audit", "public-key"]).output
    assert public.encode() == client.get("/.well-known/hearthgate-audit-key").data
    missing = runner.invoke(args=["audit", "prove", "evt_" + "0" * 32])
    assert missing.exit_code != 0 and "no event" in missing.output


def test_an_event_after_the_newest_checkpoint_is_409_until_it_is_signed(
    app: Flask, client: FlaskClient, auth: AuthActions, world: ProofWorld,
) -> None:
    newest = world.rows[-1]
    assert newest.seq > 4
    r = client.get(_url(world.home, newest), headers=auth.headers(world.owner))
    assert r.status_code == 409 and json_object(r)["retryAfter"] >= 1
    cli = app.test_cli_runner().invoke(args=["audit", "prove", event_id(newest.hash)])
    assert cli.exit_code != 0 and "newer than" in cli.output
    _checkpoint(app)
    r = client.get(_url(world.home, newest), headers=auth.headers(world.owner))
    assert r.status_code == 200 and json_object(r)["treeSize"] == newest.seq
    assert verify_proof(r.get_json(), [signer(app).public_key], newest.hash) == []


def test_members_prove_their_own_events_only_and_outsiders_see_nothing(
    app: Flask, client: FlaskClient, auth: AuthActions, world: ProofWorld,
) -> None:
    home, rows, adult = world.home, world.rows, world.adult
    own = next(r for r in rows if r.principal_id == adult.id and r.seq <= 4)
    other = next(r for r in rows if r.principal_id != adult.id and r.seq <= 4)
    assert client.get(_url(home, own), headers=auth.headers(adult)).status_code == 200
    before = snapshot(app)
    denied = client.get(_url(home, other), headers=auth.headers(adult))
    assert denied.status_code == 403 and "inclusionPath" not in denied.get_json()
    after = snapshot(app)
    assert_unchanged_but_denials(before, after)
    assert len(after["audit_events"]) == len(before["audit_events"]) + 1
    before = snapshot(app)
    hidden = client.get(_url(home, own), headers=auth.headers(world.outsider))
    assert hidden.status_code == 404
    assert snapshot(app) == before
    unknown = client.get(f"/api/households/{home}/audit/evt_{'0' * 32}/proof",
                         headers=auth.headers(world.owner))
    assert unknown.status_code == 404
    garbage = client.get(f"/api/households/{home}/audit/nonsense/proof",
                         headers=auth.headers(world.owner))
    assert garbage.status_code == 404


def test_an_event_of_another_household_is_not_proved_through_this_one(
    app: Flask, client: FlaskClient, auth: AuthActions, world: ProofWorld,
) -> None:
    owner = world.owner
    elsewhere = make_household(app, "Elsewhere", {owner.id: "owner"})
    with app.app_context(), session_of(app) as session:
        audit.record("test.event", household_id=elsewhere, principal_id=owner.id,
                     session=session)
        session.commit()
    _checkpoint(app)
    foreign = chain_rows(app, elsewhere)[0]
    r = client.get(_url(world.home, foreign), headers=auth.headers(owner))
    assert r.status_code == 404
    assert client.get(_url(elsewhere, foreign), headers=auth.headers(owner)).status_code == 200
