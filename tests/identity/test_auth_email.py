"""Email addresses: one canonical form per address (NFKC, IDNA UTS #46, confusable domains
refused), the confirmation link mailed at registration (signed, timed, single use), OIDC
addresses verified by the provider's ``email_verified: true``, and what verification allows."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.auth.emails import InvalidEmail, canonical_email
from app.db import SESSIONS
from app.models import AuditEvent, User
from testkit.builders.households import json_object, make_household, snapshot
from testkit.builders.mail import mails, reset_token
from testkit.servers.oidc import SecretWatch

pytestmark = pytest.mark.usefixtures("secret_watch")

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test password


def local_app(make_app: Any, **extra: Any) -> Flask:
    app: Flask = make_app(AUTH_LOCAL_ACCOUNTS_ENABLED=True, **extra)
    return app


def register(app: Flask, email: str = "gran@example.test") -> TestResponse:
    return app.test_client().post("/api/auth/register",
                                  json={"email": email, "password": PASSWORD, "name": "Gran"})


def confirmation_code(app: Flask, to: str = "gran@example.test") -> str:
    found = [m.read_text() for m in mails(app)
             if "Subject: Confirm your email address" in m.read_text() and f"To: {to}" in m.read_text()]
    assert len(found) == 1, found
    codes = re.findall(r"^([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$", found[0], re.M)
    assert len(codes) == 1, found
    return str(codes[0])


def verify(app: Flask, code: str) -> TestResponse:
    return app.test_client().post("/api/auth/verify-email", json={"token": code})


def user_row(app: Flask, email: str) -> User:
    with SESSIONS.get(app)() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        session.expunge(user)
        return user


def me(app: Flask, email: str = "gran@example.test") -> dict[str, Any]:
    client = app.test_client()
    token = json_object(client.post("/api/auth/login", json={"email": email, "password": PASSWORD}))
    return json_object(client.get("/api/auth/me", headers={"Authorization": f"Bearer {token['token']}"}))


# -- canonical addresses ---------------------------------------------------------------------


@pytest.mark.parametrize(("given", "stored"), [
    ("Gran@Example.TEST", "gran@example.test"),
    ("ｇran@ｅxample.test", "gran@example.test"),  # fullwidth: NFKC
    ("gran@xn--bcher-kva.example", "gran@bücher.example"),
    ("gran@BÜCHER.example", "gran@bücher.example"),
    ("gran@пример.рф", "gran@пример.рф"),  # one script per label: a real IDN
    ("gran@例え.テスト", "gran@例え.テスト"),  # Han with kana, as Japanese writes
])
def test_canonical_forms(given: str, stored: str) -> None:
    assert canonical_email(given) == stored


@pytest.mark.parametrize("refused", [
    "gran@exаmple.test",  # a Cyrillic а among Latin letters
    "gran@ехаmple.test",  # several
    "gran@аррӏе.com",  # wholly Cyrillic letters that read as Latin
    "gran@examρle.test",  # a Greek ρ
    "gran@example..test", "gran@-example.test", "gran@", "@example.test", "gran",
])
def test_refused_addresses(refused: str) -> None:
    with pytest.raises(InvalidEmail):
        canonical_email(refused)


def test_look_alike_registrations_are_one_account_or_refused(make_app: Any) -> None:
    app = local_app(make_app)
    assert register(app).status_code == 201
    assert register(app, "ｇran@example.test").status_code == 409  # the same address
    assert register(app, "GRAN@xn--example-.test").status_code == 422
    before = snapshot(app)
    confusable = register(app, "gran@exаmple.test")
    assert confusable.status_code == 422
    refusal = json_object(confusable)
    assert refusal["error"] == "UnprocessableEntity"
    assert refusal["details"] == [{"field": "email", "message": "the domain mixes scripts"}]
    assert snapshot(app)["users"] == before["users"]
    # The canonical form logs in whatever the spelling.
    login = app.test_client().post("/api/auth/login",
                                   json={"email": "ＧＲＡＮ@EXAMPLE.test", "password": PASSWORD})
    assert login.status_code == 200


# -- the confirmation link -------------------------------------------------------------------


def test_registration_mails_a_code_that_verifies_once(
    make_app: Any, secret_watch: SecretWatch
) -> None:
    app = local_app(make_app, PUBLIC_SPA_URL="https://app.example.test/")
    assert register(app).status_code == 201
    assert user_row(app, "gran@example.test").email_verified_at is None
    assert me(app)["emailVerified"] is False
    code = confirmation_code(app)
    secret_watch.add(code)
    text = mails(app)[0].read_text()
    assert f"https://app.example.test/#/verify-email?token={code}" in text
    assert verify(app, code).status_code == 204
    assert user_row(app, "gran@example.test").email_verified_at is not None
    assert me(app)["emailVerified"] is True
    with SESSIONS.get(app)() as session:
        done = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "users.email_verified")).all()
        assert [e.decision for e in done] == ["allowed"]
    before = snapshot(app)
    again = verify(app, code)  # single use
    assert again.status_code == 400
    assert snapshot(app)["users"] == before["users"]


@pytest.mark.parametrize("kind", ["expired", "forged", "reset token", "another account's"])
def test_bad_codes_are_refused_and_change_nothing(make_app: Any, kind: str) -> None:
    app = local_app(make_app, AUTH_EMAIL_VERIFICATION_TTL_SECONDS=-1 if kind == "expired" else 3600)
    register(app)
    register(app, "other@example.test")
    code = confirmation_code(app)
    if kind == "forged":
        code = code[:-4] + ("AAAA" if not code.endswith("AAAA") else "BBBB")
    elif kind == "reset token":
        app.test_client().post("/api/auth/reset-password", json={"email": "gran@example.test"})
        code = reset_token(app)
    elif kind == "another account's":
        # A code for gran's id with the other address: the pair is signed together.
        from itsdangerous import URLSafeTimedSerializer

        from plugins.passwords import VERIFY_SALT

        with app.app_context():
            user = user_row(app, "gran@example.test")
            code = URLSafeTimedSerializer("wrong-secret", salt=VERIFY_SALT).dumps(
                {"u": user.id, "e": "other@example.test"})
    before = snapshot(app)
    refused = verify(app, code)
    assert refused.status_code == 400 and json_object(refused)["error"] == "BadRequest"
    assert snapshot(app)["users"] == before["users"]


def test_a_password_reset_verifies_the_address(make_app: Any) -> None:
    app = local_app(make_app)
    register(app)
    app.test_client().post("/api/auth/reset-password", json={"email": "gran@example.test"})
    confirmed = app.test_client().post("/api/auth/reset-password/confirm", json={
        "token": reset_token(app), "password": "a brand new password"})
    assert confirmed.status_code == 204
    assert user_row(app, "gran@example.test").email_verified_at is not None


def test_the_squatter_story(make_app: Any) -> None:
    """Someone registers grandma's address first. The owner invites grandma: the squatter cannot
    accept (the address is not theirs to confirm), and grandma takes the account over by a reset
    (her mail), which ends the squatter's sessions; then she accepts."""
    app = local_app(make_app)
    client = app.test_client()
    register(app)  # the squatter
    squatter = json_object(client.post("/api/auth/login", json={"email": "gran@example.test",
                                                                 "password": PASSWORD}))
    squat = {"Authorization": f"Bearer {squatter['token']}"}
    from testkit.builders.households import AuthActions

    auth = AuthActions(app)
    owner = auth.user("owner@example.test")
    household = make_household(app, "Home", {owner.id: "owner"})
    invitation = json_object(client.post(f"/api/households/{household}/members",
                                         json={"email": "gran@example.test", "role": "adult"},
                                         headers=auth.headers(owner)))["id"]
    assert json_object(client.get("/api/invitations", headers=squat))["items"] == []
    assert client.post(f"/api/invitations/{invitation}/accept", headers=squat).status_code == 403

    client.post("/api/auth/reset-password", json={"email": "gran@example.test"})
    assert client.post("/api/auth/reset-password/confirm", json={
        "token": reset_token(app), "password": "grandmas own password"}).status_code == 204
    assert client.post("/api/auth/refresh",
                       json={"refreshToken": squatter["refreshToken"]}).status_code == 401
    gran = json_object(client.post("/api/auth/login", json={"email": "gran@example.test",
                                                             "password": "grandmas own password"}))
    accepted = client.post(f"/api/invitations/{invitation}/accept",
                           headers={"Authorization": f"Bearer {gran['token']}"})
    assert accepted.status_code == 200 and json_object(accepted)["role"] == "adult"


# -- OIDC: the provider vouches -----------------------------------------------------------------


@pytest.mark.parametrize(("claim", "verified"), [(True, True), (False, False), (None, False),
                                                 ("true", False)])
def test_oidc_addresses_are_verified_by_an_explicit_claim(
    make_app: Any, claim: Any, verified: bool
) -> None:
    from plugins.oidc import OidcLogin

    app = make_app()
    claims: dict[str, Any] = {"iss": "https://idp.example", "sub": "s1",
                              "email": "Ida@Example.test", "name": "Ida"}
    if claim is not None:
        claims["email_verified"] = claim
    from app.rowsecurity import in_flow

    provider = OidcLogin.__new__(OidcLogin)
    with app.test_request_context(), in_flow("oidc"):  # as in the provider's callback
        from app.db import db

        user = provider.user_for(claims)
        db.session.commit()
        assert (user.email_verified_at is not None) is verified
        # Copied unless the provider says it is unverified; verified only when it says so.
        assert user.email == ("ida@example.test" if claim in (True, None) else None)
        if claim is None:  # a later login that vouches verifies the same address
            again = provider.user_for({**claims, "email_verified": True})
            db.session.commit()
            assert again.id == user.id and again.email_verified_at is not None


def test_oidc_login_with_the_test_provider_is_verified(make_app: Any, oidc_provider: Any) -> None:
    from testkit.servers.oidc import CLIENT_ID

    app = make_app(AUTH_OIDC_ISSUER=oidc_provider.issuer, AUTH_OIDC_AUDIENCE=CLIENT_ID)
    pair = json_object(app.test_client().post(
        "/api/auth/login", json={"idToken": oidc_provider.id_token("ida")}))
    body = json_object(app.test_client().get(
        "/api/auth/me", headers={"Authorization": f"Bearer {pair['token']}"}))
    assert body["email"] == "ida@example.test" and body["emailVerified"] is True
