"""Idempotency-Key on the buy-flow's POSTs: replay, mismatch, scope, and no token at rest."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db import SESSIONS
from app.models import AuditEvent, IdempotencyKey
from testkit.builders.families import INTERNAL_CONFIG, Family
from testkit.builders.households import assert_unchanged_but_denials, json_object, snapshot
from testkit.typing import Json

BODY: dict[str, Json] = {"title": "Skates", "amountMinor": 9000, "currency": "EUR"}


pytestmark = pytest.mark.settings(**INTERNAL_CONFIG)


def keys(family: Family) -> list[IdempotencyKey]:
    with SESSIONS.get(family.app)() as session:
        return list(session.scalars(select(IdempotencyKey)))


def test_same_key_and_body_replays_the_stored_response(family: Family) -> None:
    first = family.post(family.child, "", BODY, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    before = snapshot(family.app)
    again = family.post(family.child, "", {"currency": "EUR", "amountMinor": 9000,
                                           "title": "Skates"}, **{"Idempotency-Key": "k-1"})
    assert again.status_code == 201
    assert json_object(again) == json_object(first)
    assert snapshot(family.app) == before


def test_same_key_with_another_body_is_422(family: Family) -> None:
    assert family.post(family.child, "", BODY, **{"Idempotency-Key": "k-2"}).status_code == 201
    before = snapshot(family.app)
    r = family.post(family.child, "", {**BODY, "amountMinor": 9001}, **{"Idempotency-Key": "k-2"})
    assert r.status_code == 422 and json_object(r)["error"] == "UnprocessableEntity"
    assert snapshot(family.app) == before


def test_same_key_on_another_route_is_422(family: Family) -> None:
    request_id = family.submit()
    assert family.post(family.adult, f"/{request_id}/approve",
                       **{"Idempotency-Key": "k-3"}).status_code == 200
    other = family.submit()
    before = snapshot(family.app)
    r = family.post(family.adult, f"/{other}/approve", **{"Idempotency-Key": "k-3"})
    assert r.status_code == 422
    assert snapshot(family.app) == before


def test_keys_belong_to_their_user(family: Family) -> None:
    assert family.post(family.child, "", BODY, **{"Idempotency-Key": "shared"}).status_code == 201
    r = family.post(family.adult, "", BODY, **{"Idempotency-Key": "shared"})
    assert r.status_code == 201
    assert json_object(r)["requestedBy"] == family.adult.id
    assert len(keys(family)) == 2


def test_a_replayed_approval_is_not_a_second_transition(family: Family) -> None:
    request_id = family.submit()
    first = family.post(family.adult, f"/{request_id}/approve", **{"Idempotency-Key": "ap-1"})
    before = snapshot(family.app)
    again = family.post(family.adult, f"/{request_id}/approve", **{"Idempotency-Key": "ap-1"})
    assert again.status_code == 200 and json_object(again) == json_object(first)
    assert snapshot(family.app) == before
    assert family.post(family.adult, f"/{request_id}/approve").status_code == 409


def test_errors_are_not_stored_and_the_key_can_be_retried(family: Family) -> None:
    request_id = family.submit()
    before = snapshot(family.app)
    r = family.post(family.child, f"/{request_id}/approve", **{"Idempotency-Key": "ap-2"})
    assert r.status_code == 403
    r = family.post(family.owner, f"/{request_id}/purchase-intents", **{"Idempotency-Key": "pi-0"})
    assert r.status_code == 409
    assert_unchanged_but_denials(before, snapshot(family.app))
    r = family.post(family.owner, f"/{request_id}/approve", **{"Idempotency-Key": "pi-0"})
    assert r.status_code == 200


def test_intent_creation_replay_is_409_and_the_token_is_never_at_rest(family: Family) -> None:
    request_id = family.approved()
    first = family.post(family.adult, f"/{request_id}/purchase-intents",
                        **{"Idempotency-Key": "pi-1"})
    assert first.status_code == 201
    token = json_object(first)["confirmationToken"]
    assert token not in repr(snapshot(family.app))
    stored = keys(family)
    assert len(stored) == 1 and "confirmationToken" not in (stored[0].response_body or "")
    before = snapshot(family.app)
    again = family.post(family.adult, f"/{request_id}/purchase-intents",
                        **{"Idempotency-Key": "pi-1"})
    assert again.status_code == 409
    assert json_object(again)["intentId"] == json_object(first)["intentId"]
    assert token not in again.get_data(as_text=True)
    assert snapshot(family.app) == before


def test_confirm_checkout_replay_returns_the_completion(family: Family) -> None:
    request_id, intent = family.cart_ready_intent()
    first = family.confirm(request_id, intent["intentId"], intent["confirmationToken"],
                           by=family.adult, **{"Idempotency-Key": "c-1"})
    assert first.status_code == 200
    before = snapshot(family.app)
    again = family.confirm(request_id, intent["intentId"], intent["confirmationToken"],
                           by=family.adult, **{"Idempotency-Key": "c-1"})
    assert again.status_code == 200 and json_object(again) == json_object(first)
    assert snapshot(family.app) == before
    assert intent["confirmationToken"] not in repr(snapshot(family.app))


def denials(family: Family) -> list[tuple[str | None, dict[str, object]]]:
    """(principal, details) of the household's denied checkout confirmations, oldest first."""
    with SESSIONS.get(family.app)() as session:
        rows = session.execute(
            select(AuditEvent.principal_id, AuditEvent.details)
            .where(AuditEvent.household_id == family.household_id,
                   AuditEvent.action == "checkout.confirm", AuditEvent.decision == "denied")
            .order_by(AuditEvent.seq)
        ).all()
    return [(principal, dict(details or {})) for principal, details in rows]


@pytest.mark.parametrize("who", ["wrong token", "not the actor"])
def test_a_refused_confirmation_with_a_key_is_403_audited_and_stores_no_key(
    family: Family, who: str
) -> None:
    """The key row is written before the handler refuses; the denial must still be recorded
    (SQLite has one writer: the request's own transaction must not keep it waiting) and the key
    must not outlive the error."""
    request_id, intent = family.cart_ready_intent()  # the adult is the actor
    by, token = ((family.adult, "A" * 43) if who == "wrong token"
                 else (family.owner, intent["confirmationToken"]))
    before = snapshot(family.app)
    r = family.confirm(request_id, intent["intentId"], token, by=by,
                       **{"Idempotency-Key": "deny-" + who.replace(" ", "-")})
    assert r.status_code == 403, r.get_json()
    assert json_object(r)["error"] == "Forbidden"
    assert_unchanged_but_denials(before, snapshot(family.app))
    reason = "wrong confirmation token" if who == "wrong token" else "not the intent's actor"
    assert denials(family) == [(by.id, {"reason": reason})]
    assert keys(family) == []
    assert family.intent_row(intent["intentId"]).status == "CART_READY"
    # the key was not spent: the actor may use it for the real confirmation
    done = family.confirm(request_id, intent["intentId"], intent["confirmationToken"],
                          by=family.adult, **{"Idempotency-Key": "deny-" + who.replace(" ", "-")})
    assert done.status_code == 200, done.get_json()


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "tab\there", "ünïcode"])
def test_malformed_keys_are_400(family: Family, key: str) -> None:
    before = snapshot(family.app)
    r = family.client.post(family.url(), json=BODY,
                           headers={**family.headers(family.child),
                                    "Idempotency-Key": key.encode().decode("latin-1")})
    assert r.status_code == 400
    assert snapshot(family.app) == before


def test_a_key_past_its_retention_names_a_new_request(
    family: Family, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from app.buyflow import clock

    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start)
    first = family.post(family.child, "", BODY, **{"Idempotency-Key": "old-1"})
    assert first.status_code == 201
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=86399))
    replay = family.post(family.child, "", BODY, **{"Idempotency-Key": "old-1"})
    assert json_object(replay) == json_object(first)  # within the day: a replay
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=86401))
    second = family.post(family.child, "", {**BODY, "title": "Sledge"}, **{"Idempotency-Key": "old-1"})
    assert second.status_code == 201 and json_object(second)["id"] != json_object(first)["id"]
    stored = [k for k in keys(family) if k.key == "old-1"]
    assert len(stored) == 1 and '"Sledge"' in (stored[0].response_body or "")


def test_purge_deletes_only_stale_keys(family: Family, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from app.buyflow import clock

    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start)
    family.post(family.child, "", BODY, **{"Idempotency-Key": "stale-1"})
    family.post(family.adult, "", BODY, **{"Idempotency-Key": "stale-2"})
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(hours=23))
    family.post(family.child, "", BODY, **{"Idempotency-Key": "fresh-1"})
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(hours=25))
    result = family.app.test_cli_runner().invoke(args=["buyflow", "purge-idempotency-keys"])
    assert result.exit_code == 0 and "deleted 2 stale idempotency keys" in result.output
    assert [k.key for k in keys(family)] == ["fresh-1"]
    again = family.app.test_cli_runner().invoke(args=["buyflow", "purge-idempotency-keys"])
    assert "deleted 0 " in again.output and [k.key for k in keys(family)] == ["fresh-1"]
