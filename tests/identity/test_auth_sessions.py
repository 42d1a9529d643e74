"""Sessions and tokens: refresh rotation and reuse detection, logout, the internal JWT (claims,
algorithms, published keys, rotation), development auth, internal tokens, permissions."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from flask import Blueprint, Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.config import ConfigurationRefused
from app.db import SESSIONS
from app.gateway.contracts import endpoint
from app.gateway.tokens import ACCESS_TOKENS
from app.hookspecs import hookimpl
from app.models import AuditEvent, AuthSession, RefreshToken, User
from app.plugins import PLUGINS
from testkit.builders.households import json_object, snapshot
from testkit.builders.mail import reset_token
from testkit.servers.oidc import SecretWatch, parts

pytestmark = pytest.mark.usefixtures("secret_watch")

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test password


def pem(algorithm: str) -> str:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(private: str) -> str:
    key = serialization.load_pem_private_key(private.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def local_app(make_app: Any, **extra: Any) -> Flask:
    app: Flask = make_app(AUTH_LOCAL_ACCOUNTS_ENABLED=True, **extra)
    return app


def register_and_login(app: Flask, email: str = "pat@example.test") -> dict[str, Any]:
    client = app.test_client()
    created = client.post("/api/auth/register",
                          json={"email": email, "password": PASSWORD, "name": "Pat"})
    assert created.status_code in (201, 409)
    response = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.json
    return json_object(response)


def refresh(app: Flask, token: str) -> TestResponse:
    return app.test_client().post("/api/auth/refresh", json={"refreshToken": token})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def events(app: Flask, action: str) -> list[AuditEvent]:
    with SESSIONS.get(app)() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# -- refresh tokens ------------------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_family(
    make_app: Any, secret_watch: SecretWatch
) -> None:
    app = local_app(make_app, AUTH_REFRESH_REUSE_GRACE_SECONDS=0)
    first = register_and_login(app)
    other_session = register_and_login(app)
    secret_watch.add(first["refreshToken"], first["token"], PASSWORD)

    second = refresh(app, first["refreshToken"])
    assert second.status_code == 200
    assert json_object(second)["refreshToken"] != first["refreshToken"]
    assert parts(json_object(second)["token"])[1]["sid"] == parts(first["token"])[1]["sid"]
    secret_watch.add(json_object(second)["refreshToken"])

    # The spent token comes back: the whole family is revoked, the newest token included.
    replay = refresh(app, first["refreshToken"])
    assert replay.status_code == 401
    assert refresh(app, json_object(second)["refreshToken"]).status_code == 401
    reuse = events(app, "auth.refresh.reuse")
    assert len(reuse) == 1 and reuse[0].decision == "denied"
    # Another login session of the same user is untouched.
    assert refresh(app, other_session["refreshToken"]).status_code == 200

    with SESSIONS.get(app)() as session:
        stored = [t.token_hash for t in session.scalars(select(RefreshToken))]
    assert first["refreshToken"] not in stored and all(len(h) == 64 for h in stored)


def test_unknown_refresh_token_changes_nothing(make_app: Any) -> None:
    app = local_app(make_app)
    register_and_login(app)
    before = snapshot(app)
    assert refresh(app, "not-a-refresh-token").status_code == 401
    after = snapshot(app)
    assert {k: v for k, v in after.items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"}


def test_expired_refresh_token_is_401(make_app: Any) -> None:
    app = local_app(make_app, AUTH_REFRESH_TOKEN_TTL_SECONDS=-1)
    pair = register_and_login(app)
    assert refresh(app, pair["refreshToken"]).status_code == 401


def test_logout_one_session_or_all(make_app: Any) -> None:
    app = local_app(make_app)
    a, b, c = (register_and_login(app) for _ in range(3))
    client = app.test_client()
    assert client.post("/api/auth/logout", json={}, headers=bearer(a["token"])).status_code == 204
    assert refresh(app, a["refreshToken"]).status_code == 401
    fresh_b = refresh(app, b["refreshToken"])
    assert fresh_b.status_code == 200
    assert client.post("/api/auth/logout", json={"all": True},
                       headers=bearer(c["token"])).status_code == 204
    assert refresh(app, json_object(fresh_b)["refreshToken"]).status_code == 401
    assert refresh(app, c["refreshToken"]).status_code == 401
    assert len(events(app, "auth.logout")) == 2
    assert client.post("/api/auth/logout", json={}).status_code == 401


# -- the reuse grace: two tabs refreshing at once -------------------------------------------------


class FrozenClock:
    """``app.clock.now``, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from app import clock

        self.at = clock.now().replace(microsecond=0)
        monkeypatch.setattr(clock, "now", lambda: self.at)

    def move(self, seconds: float) -> None:
        from datetime import timedelta

        self.at += timedelta(seconds=seconds)


def _tables_but_audit(app: Flask) -> dict[str, Any]:
    return {k: v for k, v in snapshot(app).items() if k != "audit_events"}


@pytest.mark.parametrize("grace", [10, 3])
def test_a_spent_token_within_the_grace_is_409_and_revokes_nothing(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, grace: int
) -> None:
    app = local_app(make_app, AUTH_REFRESH_REUSE_GRACE_SECONDS=grace)
    first = register_and_login(app)
    clock = FrozenClock(monkeypatch)
    second = refresh(app, first["refreshToken"])
    assert second.status_code == 200
    clock.move(grace)  # the last instant of the grace
    before = _tables_but_audit(app)
    late_tab = refresh(app, first["refreshToken"])
    assert late_tab.status_code == 409 and json_object(late_tab)["error"] == "Conflict"
    assert _tables_but_audit(app) == before  # nothing revoked, nothing issued
    assert [e.decision for e in events(app, "auth.refresh.reuse")] == []
    # The successor pair is still valid, and so is the rest of the session.
    third = refresh(app, json_object(second)["refreshToken"])
    assert third.status_code == 200
    assert refresh(app, json_object(third)["refreshToken"]).status_code == 200


def test_a_spent_token_just_after_the_grace_revokes_the_session(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = local_app(make_app, AUTH_REFRESH_REUSE_GRACE_SECONDS=10)
    first = register_and_login(app)
    clock = FrozenClock(monkeypatch)
    second = refresh(app, first["refreshToken"])
    assert second.status_code == 200
    clock.move(10.001)  # just past the grace
    replay = refresh(app, first["refreshToken"])
    assert replay.status_code == 401 and json_object(replay)["error"] == "InvalidToken"
    assert refresh(app, json_object(second)["refreshToken"]).status_code == 401
    reuse = events(app, "auth.refresh.reuse")
    assert len(reuse) == 1 and reuse[0].decision == "denied"
    with SESSIONS.get(app)() as session:
        ended = session.scalars(select(AuthSession)).all()
        assert [s.ended_at is not None for s in ended] == [True]


def test_a_grace_of_zero_revokes_at_once(make_app: Any) -> None:
    app = local_app(make_app, AUTH_REFRESH_REUSE_GRACE_SECONDS=0)
    first = register_and_login(app)
    assert refresh(app, first["refreshToken"]).status_code == 200
    assert refresh(app, first["refreshToken"]).status_code == 401
    assert len(events(app, "auth.refresh.reuse")) == 1


def test_a_revoked_sessions_spent_token_is_401_even_within_the_grace(make_app: Any) -> None:
    app = local_app(make_app)
    first = register_and_login(app)
    second = json_object(refresh(app, first["refreshToken"]))
    client = app.test_client()
    assert client.post("/api/auth/logout", json={},
                       headers=bearer(second["token"])).status_code == 204
    assert refresh(app, first["refreshToken"]).status_code == 401
    assert refresh(app, second["refreshToken"]).status_code == 401


@pytest.mark.postgres_only
def test_two_tabs_refreshing_at_once_under_gunicorn_stay_logged_in(
    database_url: str, tmp_path: Any
) -> None:
    """Several workers, one refresh token presented by 8 clients at once: one 200, the others
    409 (within the grace), no 5xx, and the winner's pair still works."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from testkit.servers.processes import free_port, gunicorn_process

    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "3",
           "HEARTHGATE_ENV": "test", "DATABASE_URL": database_url,
           "AUTH_JWT_SECRET": "test-jwt-secret-0123456789abcdef-not-for-production",
           "AUTH_LOCAL_ACCOUNTS_ENABLED": "true", "RATELIMIT_ENABLED": "false"}
    with gunicorn_process("wsgi:app", env, tmp_path / "api.log"):
        url = f"http://127.0.0.1:{port}"
        http = requests.Session()
        assert http.post(url + "/api/auth/register", json={
            "email": "tabs@example.test", "password": PASSWORD, "name": "Tabs"},
            timeout=30).status_code == 201
        pair = http.post(url + "/api/auth/login", json={
            "email": "tabs@example.test", "password": PASSWORD}, timeout=30).json()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: requests.post(
                url + "/api/auth/refresh", json={"refreshToken": pair["refreshToken"]},
                timeout=30), range(8)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [409] * 7, statuses
        winner = next(a.json() for a in answers if a.status_code == 200)
        assert requests.post(url + "/api/auth/refresh",
                             json={"refreshToken": winner["refreshToken"]},
                             timeout=30).status_code == 200


# -- sessions a person can see and end -------------------------------------------------------------


def sessions_of(app: Flask, token: str) -> list[dict[str, Any]]:
    """The sessions ``token``'s holder lists (``GET /api/auth/sessions`` answers 200, or the test
    fails), newest first."""
    listed = app.test_client().get("/api/auth/sessions", headers=bearer(token))
    assert listed.status_code == 200, listed.get_json()
    items = json_object(listed)["items"]
    assert isinstance(items, list), items
    return items


def test_sessions_list_the_live_families_with_device_and_current(make_app: Any) -> None:
    app = local_app(make_app)
    client = app.test_client()
    client.post("/api/auth/register",
                json={"email": "pat@example.test", "password": PASSWORD, "name": "Pat"})
    phone = json_object(client.post("/api/auth/login", json={"email": "pat@example.test",
                                                             "password": PASSWORD},
                                    headers={"User-Agent": "Phone/1.0 " + "x" * 400},
                                    environ_base={"REMOTE_ADDR": "203.0.113.7"}))
    laptop = json_object(client.post("/api/auth/login", json={"email": "pat@example.test",
                                                              "password": PASSWORD},
                                     headers={"User-Agent": "Laptop\x01/2.0"}))
    other = register_and_login(app, "someone@example.test")
    items = sessions_of(app, laptop["token"])
    assert [s["id"] for s in items] == [parts(laptop["token"])[1]["sid"],
                                        parts(phone["token"])[1]["sid"]]
    assert set(items[0]) == {"id", "createdAt", "lastUsedAt", "userAgent", "ip", "current"}
    assert [s["current"] for s in items] == [True, False]
    assert items[1]["userAgent"] == ("Phone/1.0 " + "x" * 400)[:256]
    assert items[1]["ip"] == "203.0.113.7"
    assert items[0]["userAgent"] == "Laptop/2.0"  # control characters dropped
    assert parts(other["token"])[1]["sid"] not in [s["id"] for s in items]
    # A refresh keeps the session (same id), later lastUsedAt or equal.
    assert refresh(app, phone["refreshToken"]).status_code == 200
    assert [s["id"] for s in sessions_of(app, laptop["token"])] == [
        s["id"] for s in items]
    # Paging, newest first.
    page = app.test_client().get("/api/auth/sessions?limit=1", headers=bearer(laptop["token"]))
    assert len(json_object(page)["items"]) == 1 and json_object(page)["nextCursor"]


def test_ending_a_session_stops_its_refresh_token_and_is_audited(make_app: Any) -> None:
    app = local_app(make_app)
    phone = register_and_login(app)
    laptop = register_and_login(app)
    other = register_and_login(app, "someone@example.test")
    phone_sid = parts(phone["token"])[1]["sid"]
    client = app.test_client()
    # Someone else's session, an unknown one: 404, nothing changes.
    before = _tables_but_audit(app)
    for token, sid in ((other["token"], phone_sid), (laptop["token"], "rtf_unknown")):
        refused = client.delete(f"/api/auth/sessions/{sid}", headers=bearer(token))
        assert refused.status_code == 404 and json_object(refused)["error"] == "NotFound"
    assert _tables_but_audit(app) == before
    assert events(app, "auth.session.ended") == []

    ended = client.delete(f"/api/auth/sessions/{phone_sid}", headers=bearer(laptop["token"]))
    assert ended.status_code == 204
    assert refresh(app, phone["refreshToken"]).status_code == 401
    assert [s["id"] for s in sessions_of(app, laptop["token"])] == [
        parts(laptop["token"])[1]["sid"]]
    assert refresh(app, laptop["refreshToken"]).status_code == 200
    assert refresh(app, other["refreshToken"]).status_code == 200
    audited = events(app, "auth.session.ended")
    assert len(audited) == 1 and audited[0].details["sessionId"] == phone_sid
    # Ended already: 404.
    again = client.delete(f"/api/auth/sessions/{phone_sid}", headers=bearer(laptop["token"]))
    assert again.status_code == 404


def test_a_password_reset_ends_every_session(make_app: Any) -> None:
    app = local_app(make_app)
    a, b = register_and_login(app), register_and_login(app)
    other = register_and_login(app, "someone@example.test")
    client = app.test_client()
    assert client.post("/api/auth/reset-password",
                       json={"email": "pat@example.test"}).status_code == 202
    token = reset_token(app)
    new_password = "another horse battery staple"  # noqa: S105 - a test password
    assert client.post("/api/auth/reset-password/confirm",
                       json={"token": token, "password": new_password}).status_code == 204
    for pair in (a, b):
        assert refresh(app, pair["refreshToken"]).status_code == 401
    assert sessions_of(app, other["token"]) != []
    fresh = json_object(client.post("/api/auth/login", json={"email": "pat@example.test",
                                                             "password": new_password}))
    assert [s["current"] for s in sessions_of(app, fresh["token"])] == [True]


def test_a_password_change_ends_every_session(make_app: Any) -> None:
    app = local_app(make_app)
    a, b = register_and_login(app), register_and_login(app)
    other = register_and_login(app, "someone@example.test")
    client = app.test_client()
    new_password = "another horse battery staple"  # noqa: S105 - a test password
    before = _tables_but_audit(app)
    wrong = client.post("/api/auth/password", headers=bearer(a["token"]), json={
        "currentPassword": "not the password", "newPassword": new_password})
    assert wrong.status_code == 403
    assert _tables_but_audit(app) == before  # nothing changed, every session still live
    changed = client.post("/api/auth/password", headers=bearer(a["token"]), json={
        "currentPassword": PASSWORD, "newPassword": new_password})
    assert changed.status_code == 204
    for pair in (a, b):  # this session included
        assert refresh(app, pair["refreshToken"]).status_code == 401
    assert refresh(app, other["refreshToken"]).status_code == 200
    assert client.post("/api/auth/login", json={"email": "pat@example.test",
                                                "password": PASSWORD}).status_code == 401
    assert client.post("/api/auth/login", json={"email": "pat@example.test",
                                                "password": new_password}).status_code == 200
    assert [e.details["revoked"] for e in events(app, "auth.password.change")
            if e.decision == "allowed"] == [2]


def test_sessions_need_a_bearer(make_app: Any) -> None:
    app = local_app(make_app)
    client = app.test_client()
    assert client.get("/api/auth/sessions").status_code == 401
    assert client.delete("/api/auth/sessions/rtf_x").status_code == 401


# -- the internal JWT ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_asymmetric_internal_tokens_carry_the_claims_and_a_kid(
    make_app: Any, algorithm: str
) -> None:
    app = local_app(make_app, AUTH_JWT_ALGORITHM=algorithm, AUTH_JWT_PRIVATE_KEY=pem(algorithm))
    pair = register_and_login(app)
    header, claims, _ = parts(pair["token"])
    expected = {"EdDSA": "Ed25519"}.get(algorithm, algorithm)  # RFC 9864's name
    assert header["typ"] == "at+jwt" and header["alg"] == expected and header["kid"]
    assert set(claims) >= {"sub", "email", "name", "permissions", "iat", "exp", "iss", "aud",
                           "jti", "sid"}
    assert claims["exp"] - claims["iat"] == 3600
    jwks = json_object(app.test_client().get("/.well-known/jwks.json"))
    assert [k["kid"] for k in jwks["keys"]] == [header["kid"]]
    assert "d" not in jwks["keys"][0]
    assert app.test_client().get("/api/auth/me", headers=bearer(pair["token"])).status_code == 200


def test_signing_key_rotation_keeps_old_tokens_valid(make_app: Any) -> None:
    old_key, new_key = pem("RS256"), pem("RS256")
    before = local_app(make_app, AUTH_JWT_ALGORITHM="RS256", AUTH_JWT_PRIVATE_KEY=old_key)
    old_token = register_and_login(before)["token"]
    after = make_app(AUTH_JWT_ALGORITHM="RS256", AUTH_JWT_PRIVATE_KEY=new_key,
                     AUTH_JWT_PREVIOUS_PUBLIC_KEYS=public_pem(old_key))
    jwks = json_object(after.test_client().get("/.well-known/jwks.json"))
    kids = [k["kid"] for k in jwks["keys"]]
    assert len(kids) == 2 and parts(old_token)[0]["kid"] == kids[1]
    assert after.test_client().get("/api/auth/me", headers=bearer(old_token)).status_code == 200
    # Without the previous key published, the old token is refused.
    forgotten = make_app(AUTH_JWT_ALGORITHM="RS256", AUTH_JWT_PRIVATE_KEY=new_key)
    assert forgotten.test_client().get("/api/auth/me",
                                       headers=bearer(old_token)).status_code == 401


def test_dev_hs256_token_is_refused_by_an_rs256_app(make_app: Any, auth: Any) -> None:
    dev_app = make_app()
    user = auth.user("hs@example.test")
    hs_token = auth.token(user)
    assert dev_app.test_client().get("/api/auth/me", headers=bearer(hs_token)).status_code == 200
    rs_app = make_app(AUTH_JWT_ALGORITHM="RS256", AUTH_JWT_PRIVATE_KEY=pem("RS256"))
    response = rs_app.test_client().get("/api/auth/me", headers=bearer(hs_token))
    assert response.status_code == 401 and json_object(response)["error"] == "InvalidToken"


def test_another_issuers_token_is_refused(make_app: Any, auth: Any) -> None:
    app = make_app()
    other = make_app(AUTH_JWT_ISSUER="someone-else")
    user = auth.user("iss@example.test")
    foreign = ACCESS_TOKENS.get(other).mint(
        {"sub": user.id, "permissions": [], "sid": "rtf_x"}).token
    assert app.test_client().get("/api/auth/me", headers=bearer(foreign)).status_code == 401


def test_hs256_app_publishes_no_keys(app: Flask) -> None:
    assert app.test_client().get("/.well-known/jwks.json").json == {"keys": []}


# -- development auth ----------------------------------------------------------------------------


def test_development_auth_acts_as_the_configured_user(make_app: Any) -> None:
    app = make_app(DEVELOPMENT_AUTH_ENABLED=True, DEVELOPMENT_AUTH_USER="devi@example.test")
    me = app.test_client().get("/api/auth/me")
    assert me.status_code == 200 and json_object(me)["email"] == "devi@example.test"
    assert "households:create" in json_object(me)["permissions"]
    assert make_app().test_client().get("/api/auth/me").status_code == 401


def test_development_auth_is_refused_in_production() -> None:
    from app import create_app

    with pytest.raises(ConfigurationRefused) as refused:
        create_app({"HEARTHGATE_ENV": "production", "DEVELOPMENT_AUTH_ENABLED": True,
                    "SECRET_STORE_URL": "env://"})
    assert any("DEVELOPMENT_AUTH_ENABLED" in p for p in refused.value.problems)


# -- internal tokens -----------------------------------------------------------------------------


internal_bp = Blueprint("internal_probe", __name__)


@internal_bp.post("/api/test-internal")
@endpoint(auth="internal", internal_token=("BUYFLOW_INTERNAL_TOKEN",
                                           "REQUIRE_BUYFLOW_INTERNAL_TOKEN"), status=204)
def internal_probe() -> None:
    return None


def test_internal_tokens_come_from_the_secret_store_and_rotate(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = "internal-token-old-0123456789", "internal-token-new-9876543210"
    monkeypatch.setenv("HG_BUYFLOW_INTERNAL_TOKEN", f"{old} {new}")
    app = make_app(SECRET_STORE_URL="env://?prefix=HG_", REQUIRE_BUYFLOW_INTERNAL_TOKEN=True)
    app.register_blueprint(internal_bp)
    client = app.test_client()
    for value, status in ((old, 204), (new, 204), ("internal-token-wrong", 401), ("", 401),
                          (old + "x", 401), (old[:-1], 401)):
        headers = {"X-Internal-Token": value} if value else {}
        assert client.post("/api/test-internal", headers=headers).status_code == status, value


# -- permissions ---------------------------------------------------------------------------------


class AdminsByDomain:
    """A permissions_for_user plugin: everyone at admin.example.test gets users:admin."""

    @hookimpl
    def permissions_for_user(self, user: Any, claims: Any) -> list[str] | None:
        return ["users:admin"] if (user.email or "").endswith("@admin.example.test") else None


def test_permissions_for_user_hook_adds_permissions(make_app: Any) -> None:
    app = local_app(make_app)
    pm = PLUGINS.get(app)
    pm.register(AdminsByDomain(), name="admins-by-domain")
    admin = register_and_login(app, "root@admin.example.test")
    plain = register_and_login(app, "plain@example.test")
    assert "users:admin" in parts(admin["token"])[1]["permissions"]
    assert "users:admin" not in parts(plain["token"])[1]["permissions"]


def test_default_permissions_setting(make_app: Any) -> None:
    app = local_app(make_app, AUTH_DEFAULT_PERMISSIONS=["items:read", "requests:read"])
    pair = register_and_login(app)
    assert parts(pair["token"])[1]["permissions"] == ["items:read", "requests:read"]


def test_users_cli_grant_and_revoke_take_effect_at_refresh(make_app: Any) -> None:
    app = local_app(make_app)
    pair = register_and_login(app, "cli@example.test")
    runner = app.test_cli_runner()
    created = runner.invoke(args=["users", "create", "ops@example.test", "-p", "audit:read"])
    assert created.exit_code == 0, created.output
    assert runner.invoke(args=["users", "create", "ops@example.test"]).exit_code != 0
    assert runner.invoke(args=["users", "grant", "cli@example.test", "nope:x"]).exit_code != 0

    granted = runner.invoke(args=["users", "grant", "cli@example.test", "users:admin"])
    assert granted.exit_code == 0, granted.output
    assert "users:admin" not in parts(pair["token"])[1]["permissions"]  # old token: unchanged
    fresh = json_object(refresh(app, pair["refreshToken"]))
    assert "users:admin" in parts(fresh["token"])[1]["permissions"]

    revoked = runner.invoke(args=["users", "revoke", "cli@example.test", "users:admin",
                                  "items:write"])
    assert revoked.exit_code == 0, revoked.output
    later = json_object(refresh(app, fresh["refreshToken"]))
    held = parts(later["token"])[1]["permissions"]
    assert "users:admin" not in held and "items:write" not in held and "items:read" in held
    assert len(events(app, "users.grant")) == 1 and len(events(app, "users.revoke")) == 1



def test_a_local_login_keeps_no_claims_and_its_refresh_passes_none(make_app: Any) -> None:
    from sqlalchemy import text

    app = local_app(make_app)
    seen: list[Any] = []

    class Recorder:
        @hookimpl
        def permissions_for_user(self, user: Any, claims: Any) -> list[str] | None:
            seen.append(claims)
            return None

    PLUGINS.get(app).register(Recorder(), name="recorder")
    pair = register_and_login(app, "noclaims@example.test")
    assert refresh(app, pair["refreshToken"]).status_code == 200
    assert seen == [None, None]
    with SESSIONS.get(app)() as session:
        stored = session.execute(text("SELECT login_claims IS NULL FROM refresh_tokens")).all()
    assert stored and all(bool(row[0]) for row in stored)  # SQL NULL, not a JSON null


@pytest.mark.postgres_only
@pytest.mark.parametrize("taken", ["identity", "email"])
def test_a_concurrent_first_login_of_the_same_identity_or_email_is_not_a_500(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, taken: str
) -> None:
    """Another worker commits the same new identity (or another identity with the same email)
    between this login's lookup and its insert."""
    from app.auth import permissions, users

    app = make_app()
    factory = SESSIONS.get(app)
    real = permissions.default_permissions  # what users.default_permissions names until replaced

    def meanwhile(config: Any) -> Any:
        monkeypatch.setattr(users, "default_permissions", real)
        with factory() as other:
            subject = "sub-race" if taken == "identity" else "sub-other"
            other.add(User(issuer="https://idp.example", subject=subject,
                           email="race@example.test", name="Other", permissions=[]))
            other.commit()
        return real(config)

    monkeypatch.setattr(users, "default_permissions", meanwhile)
    with app.app_context(), factory() as session:
        user = users.upsert_identity(session, "https://idp.example", "sub-race",
                                     "race@example.test", "Racer")
        session.commit()
        found = session.scalars(select(User).where(User.subject == "sub-race")).all()
    assert [u.id for u in found] == [user.id]
    if taken == "identity":
        assert user.name == "Other"  # the winner's row
    else:
        assert user.email is None and user.name == "Racer"  # created, without the taken email


def test_a_user_read_without_the_orm_is_the_orm_s_user_detached(make_app: Any) -> None:
    """``upsert_identity`` reads the user with a plain read (app.fastread): the instance has
    every column as the ORM loads it, belongs to no session and has no pending change; a
    change of the claims still reaches the row through the session."""
    from sqlalchemy import inspect

    from app.auth import users

    app = make_app()
    factory = SESSIONS.get(app)
    with app.app_context(), factory() as session:
        created = users.upsert_identity(session, "https://idp.example", "sub-plain",
                                        "plain@example.test", "Plain", email_verified=True)
        session.commit()
    with app.app_context(), factory() as session:
        read = users.upsert_identity(session, "https://idp.example", "sub-plain",
                                     "plain@example.test", "Plain", email_verified=True)
        state = inspect(read)
        assert state.detached and not state.modified and read not in session
        loaded = session.get(User, created.id)
        assert loaded is not None and loaded is not read
        columns = [c.key for c in inspect(User).column_attrs]
        assert {c: getattr(read, c) for c in columns} == {c: getattr(loaded, c) for c in columns}
        renamed = users.upsert_identity(session, "https://idp.example", "sub-plain",
                                        "plain@example.test", "Plain Two", email_verified=True)
        session.commit()
        assert renamed is loaded
    with factory() as session:
        stored = session.get(User, created.id)
        assert stored is not None and stored.name == "Plain Two"


def test_a_user_is_read_without_the_orm_before_anything_configured_the_mappers() -> None:
    """A new worker process's first login reads its user before any ORM statement or model
    constructor configured the mappers (which set up the instance's attributes)."""
    import subprocess
    import sys

    script = (
        "from datetime import datetime\n"
        "from app.auth.users import _loaded\n"
        "from app.models import User\n"
        "row = {c.key: None for c in User.__table__.columns}\n"
        "row.update(id='usr_new', name='New', permissions=[], disabled=False,\n"
        "           created_at=datetime(2026, 1, 1), updated_at=datetime(2026, 1, 1))\n"
        "user = _loaded(row)\n"
        "assert (user.id, user.name) == ('usr_new', 'New')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_migration_gives_earlier_families_a_session(tmp_path: Any) -> None:
    """Refresh families opened before the sessions table: one session each, live or ended as
    their tokens are."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from app.cli import MIGRATIONS
    from app.db import build_engine

    engine = build_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    command.upgrade(config, "h5a")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO users (id, email, name, permissions, disabled, created_at, updated_at) "
            "VALUES ('usr_a', 'a@example.test', 'A', '[]', 0, '2026-01-01', '2026-01-01')"))
        for token, family, created, revoked in (
                ("rt_1", "rtf_live", "2026-01-01 10:00:00", None),
                ("rt_2", "rtf_live", "2026-01-02 10:00:00", None),
                ("rt_3", "rtf_gone", "2026-01-01 10:00:00", "2026-01-03 10:00:00")):
            connection.execute(text(
                "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, "
                "expires_at, revoked_at) VALUES (:id, 'usr_a', :family, :hash, :created, "
                "'2026-02-01 10:00:00', :revoked)"),
                {"id": token, "family": family, "hash": token * 16, "created": created,
                 "revoked": revoked})
    command.upgrade(config, "heads")
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT id, user_id, auth_time, last_used_at, ended_at FROM auth_sessions "
            "ORDER BY id")).all()
    engine.dispose()
    assert [(r[0], r[1], str(r[2])[:19], str(r[3])[:19], r[4] is not None) for r in rows] == [
        ("rtf_gone", "usr_a", "2026-01-01 10:00:00", "2026-01-01 10:00:00", True),
        ("rtf_live", "usr_a", "2026-01-01 10:00:00", "2026-01-02 10:00:00", False),
    ]
