"""Purchase intents and checkout: the happy path, the token's properties, every wrong order,
replays, foreign tokens, other members and the TTL edges (injected clock)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from werkzeug.test import TestResponse

from app.buyflow import clock
from app.db import SESSIONS, utcnow
from testkit.builders.families import INTERNAL_CONFIG, Family, build_family, without
from testkit.builders.households import assert_unchanged_but_denials, json_object, snapshot
from testkit.typing import MakeApp

TTL = 900


pytestmark = pytest.mark.settings(**INTERNAL_CONFIG)


def test_happy_path_for_a_two_person_household(make_app: MakeApp) -> None:
    app = make_app(**INTERNAL_CONFIG)
    family = build_family(app)
    parent, teen = family.owner, family.adult  # two people: teen asks, parent pays
    with SESSIONS.get(app)() as session:
        from app.models import Member

        session.query(Member).filter(Member.user_id == family.child.id).delete()
        session.commit()

    r = family.post(teen, "", {"title": "Rain boots", "amountMinor": 4500, "currency": "EUR",
                               "url": "https://shop.example/boots", "note": "size 38"})
    assert r.status_code == 201
    request_id = json_object(r)["id"]
    assert json_object(r)["status"] == "SUBMITTED" and json_object(r)["requestedBy"] == teen.id

    r = family.post(parent, f"/{request_id}/approve")
    assert r.status_code == 200 and json_object(r)["status"] == "APPROVED"
    assert json_object(r)["decidedBy"] == parent.id

    r = family.post(parent, f"/{request_id}/purchase-intents")
    assert r.status_code == 201
    assert r.headers["Cache-Control"] == "no-store"
    created = json_object(r)
    assert set(created) == {"intentId", "confirmationToken", "expiresAt"}
    intent_id, token = created["intentId"], created["confirmationToken"]
    assert family.request_row(request_id).status == "PURCHASING"

    assert family.cart_ready(intent_id, actor=parent).status_code == 200
    assert family.request_row(request_id).status == "CART_READY"

    r = family.get(parent, f"/{request_id}/purchase-intents/{intent_id}")
    assert r.status_code == 200 and json_object(r)["status"] == "CART_READY"
    assert json_object(r)["cart"]["totalMinor"] == 4500
    assert token not in r.get_data(as_text=True)

    r = family.confirm(request_id, intent_id, token, by=parent)
    assert r.status_code == 200
    assert json_object(r)["status"] == "COMPLETED" and json_object(r)["intentId"] == intent_id
    assert family.request_row(request_id).status == "COMPLETED"
    assert family.intent_row(intent_id).status == "COMPLETED"
    assert family.audit_actions() == [
        "request.created", "request.approved", "intent.created", "intent.cart_ready",
        "checkout.completed",
    ]


def test_confirmation_token_is_long_random_and_stored_only_as_a_hash(family: Family) -> None:
    request_id = family.approved()
    first = family.intent(request_id)
    token = first["confirmationToken"]
    assert len(token) >= 43  # 32 bytes, URL-safe base64: 256 bits
    dump = repr(snapshot(family.app))
    assert token not in dump
    row = family.intent_row(first["intentId"])
    assert len(row.token_hash) == 64 and row.token_hash != token
    expires = row.expires_at
    assert timedelta(seconds=TTL - 5) < expires - row.created_at <= timedelta(seconds=TTL + 5)
    body = family.get(family.owner, f"/{request_id}/purchase-intents/{first['intentId']}")
    assert "confirmationToken" not in json_object(body) and "tokenHash" not in json_object(body)


WRONG_ORDERS = ["confirm_before_approve", "intent_before_approve", "confirm_before_intent",
                "confirm_before_cart_ready", "confirm_after_failed", "approve_twice",
                "reject_after_approve", "cancel_after_completion", "cart_ready_twice",
                "intent_while_purchasing", "approve_after_cancel", "failed_after_completion"]


@pytest.mark.parametrize("case", WRONG_ORDERS)
def test_every_wrong_order_is_409_and_changes_nothing(family: Family, case: str) -> None:
    f = family
    call: Callable[[], TestResponse]
    if case == "confirm_before_approve":
        request_id = f.submit()
        call = lambda: f.confirm(request_id, "pi_" + "0" * 26, "x")  # noqa: E731
        expected = 404  # no intent exists yet: the well-formed unknown id
    elif case == "intent_before_approve":
        request_id = f.submit()
        call = lambda: f.post(f.adult, f"/{request_id}/purchase-intents")  # noqa: E731
        expected = 409
    elif case == "confirm_before_intent":
        request_id = f.approved()
        call = lambda: f.confirm(request_id, "pi_" + "0" * 26, "x")  # noqa: E731
        expected = 404
    elif case == "confirm_before_cart_ready":
        request_id = f.approved()
        intent = f.intent(request_id)
        call = lambda: f.confirm(request_id, intent["intentId"], intent["confirmationToken"])  # noqa: E731
        expected = 409
    elif case == "confirm_after_failed":
        request_id = f.approved()
        intent = f.intent(request_id)
        assert f.failed(intent["intentId"]).status_code == 200
        call = lambda: f.confirm(request_id, intent["intentId"], intent["confirmationToken"])  # noqa: E731
        expected = 409
    elif case == "approve_twice":
        request_id = f.approved()
        call = lambda: f.post(f.owner, f"/{request_id}/approve")  # noqa: E731
        expected = 409
    elif case == "reject_after_approve":
        request_id = f.approved()
        call = lambda: f.post(f.owner, f"/{request_id}/reject")  # noqa: E731
        expected = 409
    elif case == "cancel_after_completion":
        request_id, intent = f.cart_ready_intent()
        assert f.confirm(request_id, intent["intentId"], intent["confirmationToken"]).status_code == 200
        call = lambda: f.post(f.child, f"/{request_id}/cancel")  # noqa: E731
        expected = 409
    elif case == "cart_ready_twice":
        request_id, intent = f.cart_ready_intent()
        call = lambda: f.cart_ready(intent["intentId"])  # noqa: E731
        expected = 409
    elif case == "intent_while_purchasing":
        request_id = f.approved()
        f.intent(request_id)
        call = lambda: f.post(f.adult, f"/{request_id}/purchase-intents")  # noqa: E731
        expected = 409
    elif case == "approve_after_cancel":
        request_id = f.submit()
        assert f.post(f.child, f"/{request_id}/cancel").status_code == 200
        call = lambda: f.post(f.adult, f"/{request_id}/approve")  # noqa: E731
        expected = 409
    else:  # failed_after_completion
        request_id, intent = f.cart_ready_intent()
        assert f.confirm(request_id, intent["intentId"], intent["confirmationToken"]).status_code == 200
        call = lambda: f.failed(intent["intentId"])  # noqa: E731
        expected = 409
    before = snapshot(f.app)
    r = call()
    assert r.status_code == expected, r.get_json()
    assert json_object(r)["error"] == {404: "NotFound", 409: "Conflict"}[expected]
    assert snapshot(f.app) == before


def test_token_replay_after_completion_is_409(family: Family) -> None:
    request_id, intent = family.cart_ready_intent()
    assert family.confirm(request_id, intent["intentId"], intent["confirmationToken"]).status_code == 200
    before = snapshot(family.app)
    r = family.confirm(request_id, intent["intentId"], intent["confirmationToken"])
    assert r.status_code == 409
    assert snapshot(family.app) == before


def test_token_of_intent_a_on_intent_b_is_403(family: Family) -> None:
    request_a, intent_a = family.cart_ready_intent()
    request_b, intent_b = family.cart_ready_intent()
    before = snapshot(family.app)
    r = family.confirm(request_b, intent_b["intentId"], intent_a["confirmationToken"])
    assert r.status_code == 403 and json_object(r)["error"] == "Forbidden"
    assert intent_a["confirmationToken"] not in r.get_data(as_text=True)
    after = snapshot(family.app)
    assert without(after, "audit_events") == without(before, "audit_events")
    assert family.audit_actions()[-1] == "checkout.confirm"  # the denial is on record
    # intent B's request with intent A's id: A is not an intent of B's request
    r = family.confirm(request_b, intent_a["intentId"], intent_a["confirmationToken"])
    assert r.status_code == 404
    assert family.intent_row(intent_a["intentId"]).status == "CART_READY"
    assert family.intent_row(intent_b["intentId"]).status == "CART_READY"


@pytest.mark.parametrize("token", ["wrong", "A" * 43, ""])
def test_wrong_token_is_403_or_400_and_changes_nothing(family: Family, token: str) -> None:
    request_id, intent = family.cart_ready_intent()
    before = snapshot(family.app)
    r = family.confirm(request_id, intent["intentId"], token)
    assert r.status_code == (400 if token == "" else 403)
    assert without(snapshot(family.app), "audit_events") == without(before, "audit_events")
    assert family.intent_row(intent["intentId"]).status == "CART_READY"


def test_confirmation_by_another_member_is_403(family: Family) -> None:
    request_id, intent = family.cart_ready_intent()  # the adult is the actor
    before = snapshot(family.app)
    r = family.confirm(request_id, intent["intentId"], intent["confirmationToken"], by=family.owner)
    assert r.status_code == 403
    r = family.confirm(request_id, intent["intentId"], intent["confirmationToken"], by=family.child)
    assert r.status_code == 403  # children may not confirm at all
    assert without(snapshot(family.app), "audit_events") == without(before, "audit_events")
    assert family.intent_row(intent["intentId"]).status == "CART_READY"


def test_foreign_household_and_outsider_get_404(make_app: MakeApp) -> None:
    app = make_app(**INTERNAL_CONFIG)
    family = build_family(app)
    other = build_family(app, prefix="other-")
    request_id, intent = family.cart_ready_intent()
    before = snapshot(app)
    # another household's adult, on their own household's path with our ids
    r = other.confirm(request_id, intent["intentId"], intent["confirmationToken"])
    assert r.status_code == 404
    r = other.get(other.adult, f"/{request_id}")
    assert r.status_code == 404
    # an outsider on our household's path
    r = app.test_client().post(
        family.url(f"/{request_id}/confirm-checkout"),
        json={"intentId": intent["intentId"], "confirmationToken": intent["confirmationToken"]},
        headers=other.headers(other.adult))
    assert r.status_code == 404 and json_object(r)["message"] == "Household not found"
    assert snapshot(app) == before


def test_token_at_ttl_minus_one_second_confirms(family: Family, monkeypatch: pytest.MonkeyPatch) -> None:
    start = utcnow()
    monkeypatch.setattr(clock, "now", lambda: start)
    request_id, intent = family.cart_ready_intent()
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=TTL - 1))
    r = family.confirm(request_id, intent["intentId"], intent["confirmationToken"])
    assert r.status_code == 200 and json_object(r)["status"] == "COMPLETED"


def test_token_at_ttl_plus_one_second_is_410_and_expires_the_intent(
    family: Family, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = utcnow()
    monkeypatch.setattr(clock, "now", lambda: start)
    request_id, intent = family.cart_ready_intent()
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=TTL + 1))
    r = family.confirm(request_id, intent["intentId"], intent["confirmationToken"])
    assert r.status_code == 410 and json_object(r)["error"] == "Gone"
    assert family.intent_row(intent["intentId"]).status == "EXPIRED"
    assert family.request_row(request_id).status == "FAILED"
    assert family.audit_actions()[-1] == "intent.expired"
    before = snapshot(family.app)
    r = family.confirm(request_id, intent["intentId"], intent["confirmationToken"])
    assert r.status_code == 410
    assert snapshot(family.app) == before
    # an expired purchase may start a new intent, which completes
    fresh = family.intent(request_id)
    assert family.cart_ready(fresh["intentId"]).status_code == 200
    r = family.confirm(request_id, fresh["intentId"], fresh["confirmationToken"])
    assert r.status_code == 200
    # the old token stays dead
    assert family.confirm(request_id, intent["intentId"], intent["confirmationToken"]).status_code == 410


def test_a_timed_out_intent_not_yet_marked_may_be_replaced(
    family: Family, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = utcnow()
    monkeypatch.setattr(clock, "now", lambda: start)
    request_id = family.approved()
    old = family.intent(request_id)
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=TTL - 1))
    assert family.post(family.adult, f"/{request_id}/purchase-intents").status_code == 409
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=TTL))
    new = family.intent(request_id, by=family.owner)
    assert family.intent_row(old["intentId"]).status == "EXPIRED"
    assert family.intent_row(new["intentId"]).actor_user_id == family.owner.id
    # cart-ready for the expired one is 410, for the new one fine
    assert family.cart_ready(old["intentId"]).status_code == 410
    assert family.cart_ready(new["intentId"], actor=family.owner).status_code == 200


def test_a_failed_purchase_may_start_a_new_intent(family: Family) -> None:
    request_id = family.approved()
    first = family.intent(request_id)
    assert family.failed(first["intentId"]).status_code == 200
    assert family.request_row(request_id).status == "FAILED"
    assert family.intent_row(first["intentId"]).failure_reason == "out of stock"
    second = family.intent(request_id)
    assert second["confirmationToken"] != first["confirmationToken"]
    assert family.cart_ready(second["intentId"]).status_code == 200
    assert family.confirm(request_id, first["intentId"], first["confirmationToken"]).status_code == 409
    assert family.confirm(request_id, second["intentId"], second["confirmationToken"]).status_code == 200


def test_children_cannot_start_purchases(family: Family) -> None:
    request_id = family.approved()
    before = snapshot(family.app)
    r = family.post(family.child, f"/{request_id}/purchase-intents")
    assert r.status_code == 403
    assert_unchanged_but_denials(before, snapshot(family.app))


def test_unknown_well_formed_request_is_404_and_malformed_intent_id_is_400(family: Family) -> None:
    r = family.post(family.adult, "/req_" + "0" * 26 + "/purchase-intents")
    assert r.status_code == 404
    request_id, intent = family.cart_ready_intent()
    r = family.confirm(request_id, "not an id", intent["confirmationToken"])
    assert r.status_code == 400 and json_object(r)["error"] == "ValidationError"


def test_intent_of_another_household_is_404(make_app: MakeApp) -> None:
    app = make_app(**INTERNAL_CONFIG)
    family = build_family(app)
    other = build_family(app, prefix="o-")
    request_id, intent = family.cart_ready_intent()
    other_request = other.approved()
    r = other.get(other.adult, f"/{other_request}/purchase-intents/{intent['intentId']}")
    assert r.status_code == 404
    r = other.confirm(other_request, intent["intentId"], intent["confirmationToken"])
    assert r.status_code == 404


def test_tokens_never_reach_the_logs(family: Family) -> None:
    import io
    import logging

    stream = io.StringIO()
    handler = next(h for h in logging.getLogger().handlers
                   if isinstance(h, logging.StreamHandler) and getattr(h, "_hearthgate", False))
    old_stream = handler.setStream(stream)
    try:
        request_id, intent = family.cart_ready_intent()
        token = intent["confirmationToken"]
        family.confirm(request_id, intent["intentId"], token + "x")
        family.client.post(family.url(f"/{request_id}/confirm-checkout"),
                           json={"intentId": intent["intentId"], "confirmationToken": token},
                           headers={"Authorization": f"Bearer {token}"})  # a bad bearer is logged
        family.confirm(request_id, intent["intentId"], token)
        family.confirm(request_id, intent["intentId"], token)
    finally:
        handler.setStream(old_stream)
    text = stream.getvalue()
    assert "app.gateway.principal" in text  # the log lines were captured
    assert token not in text
