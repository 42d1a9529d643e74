"""Step-up for money (RFC 9470): creating a purchase intent and confirming checkout need a login
at most STEP_UP_MAX_AGE_SECONDS old (the access token's ``auth_time``, kept through refreshes).
The identity clock (``app.clock.now``) is moved by hand: no sleeping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from app import clock
from app.db import SESSIONS
from app.gateway.tokens import ACCESS_TOKENS
from testkit.builders.families import INTERNAL_CONFIG, Family, build_family
from testkit.builders.households import assert_unchanged_but_denials, json_object, snapshot
from testkit.servers.oidc import parts

pytestmark = pytest.mark.usefixtures("secret_watch")

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test password
CHALLENGE = 'Bearer error="insufficient_user_authentication", max_age={age}'  # RFC 9470


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Any:
    at = clock.now().replace(microsecond=0)
    monkeypatch.setattr(clock, "now", lambda: at)
    return at


def with_login_age(family: Family, user: Any, seconds: int | None, now: Any) -> None:
    """The user's token is of a session whose login was ``seconds`` ago (None: no auth_time)."""
    if seconds is None:
        header, payload, _ = parts(family.auth.token(user))
        payload.pop("auth_time")
        token = ACCESS_TOKENS.get(family.app).mint(payload).token
    else:
        token = family.auth.token(user, auth_time=clock.epoch(now) - seconds)
    family.tokens[user.id] = token


def assert_step_up(response: Any, age: int = 900) -> None:
    assert response.status_code == 401, response.get_json()
    assert response.headers["WWW-Authenticate"] == CHALLENGE.format(age=age)
    assert json_object(response)["error"] == "StepUpRequired"


@pytest.mark.parametrize("age", [0, 900])
def test_a_login_within_the_max_age_may_start_and_confirm(
    make_app: Any, frozen: Any, age: int
) -> None:
    family = build_family(make_app(**INTERNAL_CONFIG))
    with_login_age(family, family.adult, age, frozen)  # the intent's actor
    request_id, intent = family.cart_ready_intent()
    confirmed = family.confirm(request_id, intent["intentId"], intent["confirmationToken"])
    assert confirmed.status_code == 200 and json_object(confirmed)["status"] == "COMPLETED"


@pytest.mark.parametrize("age", [901, 86400, None])
def test_an_older_login_gets_the_rfc_9470_challenge_and_changes_nothing(
    make_app: Any, frozen: Any, age: int | None
) -> None:
    family = build_family(make_app(**INTERNAL_CONFIG))
    request_id = family.approved()
    with_login_age(family, family.owner, age, frozen)
    before = snapshot(family.app)
    assert_step_up(family.post(family.owner, f"/{request_id}/purchase-intents"))
    after = snapshot(family.app)
    assert_unchanged_but_denials(before, after)
    assert len(after["audit_events"]) == len(before["audit_events"]) + 1
    assert family.request_row(request_id).status == "APPROVED"


def test_confirm_checkout_needs_a_recent_login_too(make_app: Any, frozen: Any) -> None:
    family = build_family(make_app(**INTERNAL_CONFIG))
    request_id, intent = family.cart_ready_intent()
    with_login_age(family, family.adult, 901, frozen)  # the intent's actor
    before = snapshot(family.app)
    assert_step_up(family.confirm(request_id, intent["intentId"], intent["confirmationToken"]))
    assert_unchanged_but_denials(before, snapshot(family.app))
    with_login_age(family, family.adult, 5, frozen)  # a fresh login satisfies it
    confirmed = family.confirm(request_id, intent["intentId"], intent["confirmationToken"])
    assert confirmed.status_code == 200


def test_the_max_age_is_a_setting(make_app: Any, frozen: Any) -> None:
    family = build_family(make_app(STEP_UP_MAX_AGE_SECONDS=60, **INTERNAL_CONFIG))
    request_id = family.approved()
    with_login_age(family, family.owner, 61, frozen)
    assert_step_up(family.post(family.owner, f"/{request_id}/purchase-intents"), age=60)
    with_login_age(family, family.owner, 60, frozen)
    assert family.post(family.owner, f"/{request_id}/purchase-intents").status_code == 201


def test_other_routes_do_not_ask_for_a_recent_login(make_app: Any, frozen: Any) -> None:
    family = build_family(make_app(**INTERNAL_CONFIG))
    with_login_age(family, family.adult, 86400, frozen)
    with_login_age(family, family.owner, 86400, frozen)
    request_id = family.submit(family.adult)
    assert family.post(family.owner, f"/{request_id}/approve").status_code == 200
    assert family.get(family.owner, f"/{request_id}").status_code == 200


def test_roles_and_membership_are_refused_before_the_step_up(make_app: Any, frozen: Any) -> None:
    family = build_family(make_app(**INTERNAL_CONFIG))
    request_id = family.approved()
    with_login_age(family, family.child, 86400, frozen)
    assert family.post(family.child, f"/{request_id}/purchase-intents").status_code == 403


def local_login(app: Flask, email: str) -> dict[str, Any]:
    client = app.test_client()
    client.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": "P"})
    return json_object(client.post("/api/auth/login", json={"email": email, "password": PASSWORD}))


def test_auth_time_is_the_login_and_survives_refreshes(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(AUTH_LOCAL_ACCOUNTS_ENABLED=True, **INTERNAL_CONFIG)
    at = [clock.now().replace(microsecond=0)]
    monkeypatch.setattr(clock, "now", lambda: at[0])
    pair = local_login(app, "pat@example.test")
    login_time = parts(pair["token"])[1]["auth_time"]
    assert login_time == clock.epoch(at[0])
    at[0] += timedelta(seconds=1000)
    refreshed = app.test_client().post("/api/auth/refresh",
                                       json={"refreshToken": pair["refreshToken"]}).json
    claims = parts(refreshed["token"])[1]
    assert claims["auth_time"] == login_time and claims["sid"] == parts(pair["token"])[1]["sid"]

    # The refreshed token is too old for money; a new login is not.
    from app.models import User
    from testkit.builders.households import make_household

    with SESSIONS.get(app)() as session:
        from sqlalchemy import select

        user_id = session.scalars(select(User.id).where(User.email == "pat@example.test")).one()
    household = make_household(app, "Home", {user_id: "owner"})
    base = f"/api/households/{household}/requests"
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {refreshed['token']}"}
    created = client.post(base, json={"title": "Boots", "amountMinor": 100, "currency": "EUR"},
                          headers=bearer).json
    app.config["BUYFLOW_ALLOW_OWNER_SELF_APPROVAL"] = True
    assert client.post(f"{base}/{created['id']}/approve", headers=bearer).status_code == 200
    assert_step_up(client.post(f"{base}/{created['id']}/purchase-intents", headers=bearer))
    fresh = client.post("/api/auth/login",
                        json={"email": "pat@example.test", "password": PASSWORD}).json
    started = client.post(f"{base}/{created['id']}/purchase-intents",
                          headers={"Authorization": f"Bearer {fresh['token']}"})
    assert started.status_code == 201


def test_openapi_states_the_step_up(app: Flask) -> None:
    document = json_object(app.test_client().get("/api/openapi.json"))
    stepped = sorted(
        f"{method.upper()} {path}" for path, item in document["paths"].items()
        for method, operation in item.items() if "x-step-up-max-age" in operation)
    assert stepped == [
        "POST /api/households/{householdId}/requests/{requestId}/confirm-checkout",
        "POST /api/households/{householdId}/requests/{requestId}/purchase-intents",
    ]
    operation = document["paths"][
        "/api/households/{householdId}/requests/{requestId}/purchase-intents"]["post"]
    assert operation["x-step-up-max-age"] == 900 and "401" in operation["responses"]
    assert "insufficient_user_authentication" in operation["description"]
