"""OIDC login against a real OpenID provider: ID tokens, key rotation, JWKS caching, the
authorization-code flow."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.db import SESSIONS
from app.hookspecs import hookimpl
from app.models import AuditEvent, LoginFlow, RefreshToken, User
from app.plugins import PLUGINS
from plugins.oidc import OIDC_LOGIN
from testkit.builders.households import assert_unchanged_but_denials, json_object, snapshot
from testkit.servers.oidc import SPA_URL, OidcProvider, SecretWatch, parts
from testkit.spies import spy

pytestmark = pytest.mark.usefixtures("secret_watch")


def login(app: Flask, id_token: str, **extra: Any) -> TestResponse:
    return app.test_client().post("/api/auth/login", json={"idToken": id_token, **extra})


def rows(app: Flask, model: Any) -> list[Any]:
    with SESSIONS.get(app)() as session:
        return list(session.scalars(select(model)))


def test_genuine_id_token_logs_in_and_upserts_by_iss_and_sub(
    make_app: Any, oidc_provider: OidcProvider, secret_watch: SecretWatch
) -> None:
    app = make_app(**oidc_provider.config())
    id_token = oidc_provider.id_token("alice")
    response = login(app, id_token)
    assert response.status_code == 200, response.json
    body = json_object(response)
    secret_watch.add(id_token, body["token"], body["refreshToken"])
    assert body["tokenType"] == "Bearer" and body["expiresIn"] == 3600
    assert body["user"]["email"] == "alice@example.test" and body["user"]["name"] == "Alice"
    assert response.headers["Cache-Control"] == "no-store"

    me = app.test_client().get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert json_object(me)["id"] == body["user"]["id"]
    assert "users:admin" not in json_object(me)["permissions"]
    assert "households:create" in json_object(me)["permissions"]

    users = rows(app, User)
    assert [(u.issuer, u.subject) for u in users] == [(oidc_provider.issuer, "alice")]
    # A second login updates the same row and opens a second session (family).
    again = login(app, oidc_provider.id_token("alice"))
    assert again.status_code == 200 and json_object(again)["user"]["id"] == body["user"]["id"]
    assert len(rows(app, User)) == 1
    assert len({t.family_id for t in rows(app, RefreshToken)}) == 2
    logins = [e for e in rows(app, AuditEvent) if e.action == "auth.login"]
    assert [e.decision for e in logins] == ["allowed", "allowed"]


def test_nonce_is_checked_when_the_client_sends_one(
    make_app: Any, oidc_provider: OidcProvider
) -> None:
    app = make_app(**oidc_provider.config())
    token = oidc_provider.id_token("bob", nonce="nonce-expected-1")
    before = snapshot(app)
    assert login(app, token, nonce="nonce-other-2").status_code == 401
    after = snapshot(app)
    assert after["users"] == before["users"] and after["refresh_tokens"] == []
    assert login(app, token, nonce="nonce-expected-1").status_code == 200


def test_key_rotation_at_the_provider_is_picked_up_without_restart(
    make_app: Any, own_provider: OidcProvider
) -> None:
    app = make_app(**own_provider.config(AUTH_OIDC_JWKS_REFETCH_COOLDOWN_SECONDS=0))
    assert login(app, own_provider.id_token("carol")).status_code == 200
    fetches = own_provider.stats()["jwks"]
    new_kid = own_provider.rotate()
    token = own_provider.id_token("carol")
    assert token.split(".")[0]  # signed with the new key:
    from testkit.servers.oidc import parts

    assert parts(token)[0]["kid"] == new_kid
    assert login(app, token).status_code == 200
    assert own_provider.stats()["jwks"] == fetches + 1


def test_provider_stopped_cached_keys_still_verify(
    make_app: Any, own_provider: OidcProvider
) -> None:
    app = make_app(**own_provider.config())
    early, later = own_provider.id_token("dave"), own_provider.id_token("erin")
    assert login(app, early).status_code == 200
    own_provider.stop()
    assert login(app, later).status_code == 200
    # Past the cache's max-age the refetch fails and the last good keys stay in use.
    keys = OIDC_LOGIN.get(app).keys
    keys._keys_expire = 0.0
    assert login(app, later).status_code == 200


def test_unknown_kid_flood_costs_at_most_one_fetch_per_cooldown(
    make_app: Any, oidc_provider: OidcProvider
) -> None:
    app = make_app(**oidc_provider.config(AUTH_OIDC_JWKS_REFETCH_COOLDOWN_SECONDS=30,
                                          AUTH_LOGIN_FAILURES_PER_IP="1000/minute"))
    assert login(app, oidc_provider.id_token("frank")).status_code == 200
    keys = OIDC_LOGIN.get(app).keys
    clock = [1000.0]
    keys.clock = lambda: clock[0]
    keys._last_fetch, keys._keys_expire = 900.0, 10_000.0  # last fetch: 100 s ago
    start = oidc_provider.stats()["jwks"]
    payload = {"iss": oidc_provider.issuer, "aud": "hearthgate", "sub": "x", "exp": 4e9,
               "iat": 1}
    before = snapshot(app)
    for n in range(40):
        forged = oidc_provider.sign(payload, kid=f"invented-{n}")
        assert login(app, forged).status_code == 401
    assert oidc_provider.stats()["jwks"] == start + 1
    clock[0] += 31  # the next cooldown allows one more
    for n in range(10):
        assert login(app, oidc_provider.sign(payload, kid=f"again-{n}")).status_code == 401
    assert oidc_provider.stats()["jwks"] == start + 2
    after = snapshot(app)
    assert after["users"] == before["users"] and after["refresh_tokens"] == before["refresh_tokens"]


def test_a_spent_ip_failure_budget_refuses_failures_not_a_genuine_id_token(
    make_app: Any, oidc_provider: OidcProvider
) -> None:
    """Others' failed logins from the same address never lock out a valid ID token."""
    app = make_app(**oidc_provider.config(AUTH_LOGIN_FAILURES_PER_IP="3/hour"))
    payload = {"iss": oidc_provider.issuer, "aud": "hearthgate", "sub": "x", "exp": 4e9,
               "iat": 1}
    forged = [oidc_provider.sign(payload, kid=f"unknown-{n}") for n in range(5)]
    for token in forged[:3]:
        assert login(app, token).status_code == 401
    before = snapshot(app)
    throttled = login(app, forged[3])
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert_unchanged_but_denials(before, snapshot(app))

    genuine = login(app, oidc_provider.id_token("nat-neighbour"))
    assert genuine.status_code == 200, genuine.json
    assert [u.subject for u in rows(app, User)] == ["nat-neighbour"]
    assert login(app, forged[4]).status_code == 429  # the success spent no one's budget


def test_jwks_cache_honours_cache_control(make_app: Any, own_provider: OidcProvider) -> None:
    own_provider.set_jwks_max_age(3600)
    app = make_app(**own_provider.config())
    keys = OIDC_LOGIN.get(app).keys
    clock = [0.0]
    keys.clock = lambda: clock[0]
    assert login(app, own_provider.id_token("gina")).status_code == 200
    fetched = own_provider.stats()["jwks"]
    clock[0] = 3500.0
    assert login(app, own_provider.id_token("gina")).status_code == 200
    assert own_provider.stats()["jwks"] == fetched  # still fresh at 3500 s
    clock[0] = 3601.0
    assert login(app, own_provider.id_token("gina")).status_code == 200
    assert own_provider.stats()["jwks"] == fetched + 1


def test_provider_unreachable_and_nothing_cached_is_503(make_app: Any) -> None:
    from testkit.servers.processes import free_port

    app = make_app(AUTH_OIDC_ISSUER=f"http://127.0.0.1:{free_port()}",
                   AUTH_OIDC_AUDIENCE="hearthgate")
    from testkit.servers.oidc import segment

    well_formed = f"{segment({'alg': 'RS256', 'kid': 'k1'})}.{segment({'sub': 'x'})}.c2ln"
    before = snapshot(app)
    response = login(app, well_formed)
    assert response.status_code == 503
    assert snapshot(app) == before
    assert json_object(response)["error"] == "ServiceUnavailable"


# -- authorization-code flow ---------------------------------------------------------------------


def drive_provider(location: str, login_hint: str) -> str:
    """Follow the provider's redirects (a cookie jar, interactions complete by themselves) until
    it sends the browser back to Hearthgate; return that callback URL."""
    browser = requests.Session()
    url = location + "&" + urlencode({"login_hint": login_hint})
    for _ in range(12):
        response = browser.get(url, allow_redirects=False, timeout=10)
        assert response.status_code in (302, 303), response.text[:300]
        url = response.headers["Location"]
        if url.startswith("/"):
            url = f"{urlsplit(response.url).scheme}://{urlsplit(response.url).netloc}{url}"
        if url.startswith("http://localhost/"):
            return url
    raise AssertionError("the provider never redirected back")


def spa_pkce() -> tuple[str, str]:
    """What the SPA keeps (the verifier) and what it sends to ``authorize`` (its S256)."""
    import base64
    import hashlib
    import secrets

    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def code_flow(client: Any, challenge: str, account: str) -> str:
    """Run a code-flow login in ``client`` (a browser with its cookie jar) up to the one-time
    code that the callback hands to the SPA."""
    start = client.get("/api/auth/oidc/authorize",
                       query_string={"redirect_uri": SPA_URL, "code_challenge": challenge})
    assert start.status_code == 302, start.json
    back = urlsplit(drive_provider(start.headers["Location"], account))
    target = client.get(back.path + "?" + back.query).headers["Location"]
    assert target.startswith(SPA_URL + "#code="), target
    code: str = target.split("#code=", 1)[1]
    return code


def test_authorization_code_flow_end_to_end(
    make_app: Any, oidc_provider: OidcProvider, secret_watch: SecretWatch
) -> None:
    app = make_app(**oidc_provider.config())
    client = app.test_client()
    verifier, challenge = spa_pkce()
    secret_watch.add(verifier)
    start = client.get("/api/auth/oidc/authorize",
                       query_string={"redirect_uri": SPA_URL, "code_challenge": challenge,
                                     "code_challenge_method": "S256"})
    assert start.status_code == 302
    location = start.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(oidc_provider.issuer + "/auth?")
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"] == ["http://localhost/api/auth/oidc/callback"]

    back = drive_provider(location, "heidi")
    split = urlsplit(back)
    callback = client.get(split.path + "?" + split.query)
    assert callback.status_code == 302
    target = callback.headers["Location"]
    assert target.startswith(SPA_URL + "#code=")
    code = target.split("#code=", 1)[1]
    secret_watch.add(code)

    exchanged = client.post("/api/auth/oidc/exchange",
                            json={"code": code, "codeVerifier": verifier})
    assert exchanged.status_code == 200, exchanged.json
    assert json_object(exchanged)["user"]["email"] == "heidi@example.test"
    secret_watch.add(json_object(exchanged)["token"], json_object(exchanged)["refreshToken"])

    # The one-time code and the provider's callback cannot be replayed.
    before = snapshot(app)
    assert client.post("/api/auth/oidc/exchange",
                       json={"code": code, "codeVerifier": verifier}).status_code == 401
    assert client.get(split.path + "?" + split.query).status_code == 400
    after = snapshot(app)
    assert after["refresh_tokens"] == before["refresh_tokens"]
    assert after["login_flows"] == before["login_flows"]


def test_a_code_is_exchanged_only_with_the_verifier_of_the_spa_that_started_the_flow(
    make_app: Any, oidc_provider: OidcProvider, secret_watch: SecretWatch
) -> None:
    """Login CSRF: an attacker logs in through the flow and plants ``#code=…`` in a victim's SPA.
    The victim's SPA holds no verifier for that flow (or its own, for another flow), so the code
    is useless to it; only the SPA that started the flow can spend it, once."""
    app = make_app(**oidc_provider.config())
    verifier, challenge = spa_pkce()
    other_verifier, _ = spa_pkce()
    secret_watch.add(verifier, other_verifier)
    starter = app.test_client()
    code = code_flow(starter, challenge, "mallory-csrf")
    secret_watch.add(code)

    victim = app.test_client()  # another browser: no cookie, no verifier of this flow
    before = snapshot(app)
    assert victim.post("/api/auth/oidc/exchange", json={"code": code}).status_code == 400
    for wrong in (other_verifier, verifier[:-1] + ("A" if verifier[-1] != "A" else "B")):
        refused = victim.post("/api/auth/oidc/exchange",
                              json={"code": code, "codeVerifier": wrong})
        assert refused.status_code == 401
        assert "token" not in json_object(refused) and "refreshToken" not in json_object(refused)
    # Even the starting browser, with its cookie, needs the verifier.
    assert starter.post("/api/auth/oidc/exchange",
                        json={"code": code, "codeVerifier": other_verifier}).status_code == 401
    after = snapshot(app)
    assert_unchanged_but_denials(before, after)
    assert len(after["audit_events"]) == len(before["audit_events"]) + 3

    exchanged = starter.post("/api/auth/oidc/exchange",
                             json={"code": code, "codeVerifier": verifier})
    assert exchanged.status_code == 200, exchanged.json
    secret_watch.add(json_object(exchanged)["token"], json_object(exchanged)["refreshToken"])
    assert json_object(exchanged)["user"]["email"] == "mallory-csrf@example.test"
    spent = snapshot(app)
    for client in (starter, victim):  # single use, whoever presents it
        again = client.post("/api/auth/oidc/exchange",
                            json={"code": code, "codeVerifier": verifier})
        assert again.status_code == 401
    assert_unchanged_but_denials(spent, snapshot(app))


def test_authorize_requires_an_s256_code_challenge(
    make_app: Any, oidc_provider: OidcProvider
) -> None:
    app = make_app(**oidc_provider.config())
    _, challenge = spa_pkce()
    before = snapshot(app)
    for extra in ({}, {"code_challenge": challenge, "code_challenge_method": "plain"},
                  {"code_challenge": challenge[:-1]}, {"code_challenge": challenge + "A"},
                  {"code_challenge": challenge[:-1] + "="}):
        response = app.test_client().get("/api/auth/oidc/authorize",
                                          query_string={"redirect_uri": SPA_URL, **extra})
        assert response.status_code == 400, extra
        assert "Location" not in response.headers and "Set-Cookie" not in response.headers
    assert snapshot(app) == before


def test_callback_from_another_browser_is_refused(
    make_app: Any, oidc_provider: OidcProvider
) -> None:
    app = make_app(**oidc_provider.config())
    start = app.test_client().get("/api/auth/oidc/authorize",
                                  query_string={"redirect_uri": SPA_URL,
                                                "code_challenge": spa_pkce()[1]})
    back = urlsplit(drive_provider(start.headers["Location"], "ivan"))
    stranger = app.test_client()  # no flow cookie: a login-CSRF attempt
    before = snapshot(app)
    assert stranger.get(back.path + "?" + back.query).status_code == 400
    after = snapshot(app)
    assert after["users"] == before["users"] and after["login_flows"] == before["login_flows"]


def test_authorize_refuses_redirect_uris_off_the_allow_list(
    make_app: Any, oidc_provider: OidcProvider
) -> None:
    app = make_app(**oidc_provider.config())
    before = snapshot(app)
    for uri in ("https://evil.example/steal", SPA_URL + "/../x", SPA_URL.upper(), SPA_URL + "?a"):
        response = app.test_client().get("/api/auth/oidc/authorize",
                                          query_string={"redirect_uri": uri,
                                                        "code_challenge": spa_pkce()[1]})
        assert response.status_code == 400
        assert "Location" not in response.headers
    assert snapshot(app) == before
    assert rows(app, LoginFlow) == []


def test_unknown_exchange_code_is_401(make_app: Any, oidc_provider: OidcProvider) -> None:
    app = make_app(**oidc_provider.config())
    before = snapshot(app)
    response = app.test_client().post("/api/auth/oidc/exchange",
                                      json={"code": "made-up", "codeVerifier": spa_pkce()[0]})
    assert response.status_code == 401
    after = snapshot(app)
    assert after["refresh_tokens"] == before["refresh_tokens"] == []
    assert [e.action for e in rows(app, AuditEvent)] == ["auth.login"]


# -- permissions from claims ---------------------------------------------------------------------


class AdminsByClaim:
    """A permissions_for_user plugin granting users:admin from the ID-token claims alone."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any] | None] = []

    @hookimpl
    def permissions_for_user(self, user: Any, claims: dict[str, Any] | None) -> list[str] | None:
        self.seen.append(claims)
        sub = (claims or {}).get("sub")
        return ["users:admin"] if isinstance(sub, str) and sub.startswith("idp-admin") else None


def permissions(token: str) -> list[str]:
    held: list[str] = parts(token)[1]["permissions"]
    return held


def refreshed(app: Flask, refresh_token: str) -> dict[str, Any]:
    response = app.test_client().post("/api/auth/refresh", json={"refreshToken": refresh_token})
    assert response.status_code == 200, response.json
    return json_object(response)


def test_a_refresh_grants_what_the_id_token_login_granted(
    make_app: Any, oidc_provider: OidcProvider, secret_watch: SecretWatch
) -> None:
    app = make_app(**oidc_provider.config())
    plugin = AdminsByClaim()
    PLUGINS.get(app).register(plugin, name="admins-by-claim")
    first = json_object(login(app, oidc_provider.id_token("idp-admin-1", nonce="nonce-claims-1"),
                              nonce="nonce-claims-1"))
    secret_watch.add(first["token"], first["refreshToken"])
    assert "users:admin" in permissions(first["token"])
    second = refreshed(app, first["refreshToken"])
    third = refreshed(app, second["refreshToken"])  # carried along the rotation
    assert "users:admin" in permissions(second["token"])
    assert "users:admin" in permissions(third["token"])
    # The plugin saw the same verified claims at the login and at every refresh (no nonce).
    assert plugin.seen[-1] is not None and plugin.seen[-1]["sub"] == "idp-admin-1"
    assert plugin.seen[-1] == plugin.seen[-2] == plugin.seen[-3]
    assert "nonce" not in plugin.seen[-1]

    plain = json_object(login(app, oidc_provider.id_token("plain-user")))
    assert "users:admin" not in permissions(plain["token"])
    assert "users:admin" not in permissions(refreshed(app, plain["refreshToken"])["token"])


def test_a_code_flow_login_and_its_refresh_see_the_claims(
    make_app: Any, oidc_provider: OidcProvider, secret_watch: SecretWatch
) -> None:
    app = make_app(**oidc_provider.config())
    plugin = AdminsByClaim()
    PLUGINS.get(app).register(plugin, name="admins-by-claim")
    client = app.test_client()
    verifier, challenge = spa_pkce()
    code = code_flow(client, challenge, "idp-admin-2")
    secret_watch.add(code, verifier)
    exchanged = client.post("/api/auth/oidc/exchange",
                            json={"code": code, "codeVerifier": verifier})
    assert exchanged.status_code == 200, exchanged.json
    secret_watch.add(json_object(exchanged)["token"], json_object(exchanged)["refreshToken"])
    assert "users:admin" in permissions(json_object(exchanged)["token"])
    assert plugin.seen[-1] is not None and plugin.seen[-1]["sub"] == "idp-admin-2"
    again = refreshed(app, json_object(exchanged)["refreshToken"])
    assert "users:admin" in permissions(again["token"])
    assert "nonce" not in (rows(app, LoginFlow)[0].claims or {"nonce": "missing"})


# -- the user upsert -----------------------------------------------------------------------------


def test_repeat_logins_write_the_user_only_when_the_claims_changed(
    make_app: Any, oidc_provider: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from sqlalchemy import event

    from app.db import Database
    from testkit.database import statements_sent

    app = make_app(**oidc_provider.config())

    def token(sub: str, email: str, name: str) -> str:
        now = int(time.time())
        return oidc_provider.sign({"iss": oidc_provider.issuer, "aud": "hearthgate", "sub": sub,
                                   "iat": now, "exp": now + 300, "email": email,
                                   "email_verified": True, "name": name})

    assert login(app, token("upsert-other", "taken@example.test", "Other")).status_code == 200
    assert login(app, token("upsert-zed", "zed@example.test", "Zed")).status_code == 200
    transactions: list[str] = []

    # Transactions, whether SQLAlchemy's or a RequestTransaction (app.db): each ends through the
    # dialect, on a connection checked out of the pool.
    dialect = Database.engine(app).dialect
    for step in ("do_commit", "do_rollback"):
        monkeypatch.setattr(dialect, step, spy(getattr(dialect, step),
                                               lambda connection, name=step: transactions.append(name)))

    def began(*_: Any) -> None:
        transactions.append("checkout")

    # Every statement: those compiled once (app.fastread: the user's read, the audit append) go
    # straight to the driver, past the engine's events.
    event.listen(Database.engine(app), "checkout", began)
    try:
        with statements_sent(app) as statements:
            assert login(app, token("upsert-zed", "ZED@example.test ", "Zed")).status_code == 200
            unchanged, unchanged_transactions = [s.upper() for s in statements], list(transactions)
            statements.clear()
            assert login(app, token("upsert-zed", "zed@example.test", "Zed Two")
                         ).status_code == 200
            renamed = [s.upper() for s in statements]
    finally:
        event.remove(Database.engine(app), "checkout", began)
    # Unchanged claims (the email differs only in case and spaces): one read of the user, no
    # lookup of the email, no UPDATE.
    assert [s for s in unchanged if "USERS" in s.split(" WHERE")[0]] == [
        next(s for s in unchanged if s.startswith("SELECT USERS.ID, USERS.EMAIL"))]
    assert any(s.startswith("UPDATE USERS") for s in renamed)
    # The whole login is one transaction (on PostgreSQL: BEGIN, the row-security scope, these
    # statements, COMMIT), so a regression in round trips fails here.
    # (Then the pool's reset of the connection it gets back: a rollback that an idle connection
    # answers without a round trip.)
    assert unchanged_transactions in (["checkout", "do_commit"],
                                      ["checkout", "do_commit", "do_rollback"])
    if Database.engine(app).dialect.name == "postgresql":
        # The user; then one statement: the session and its refresh token (WITH clauses), and
        # the audit event (one call: the chain's lock, its head, the link and the insert).
        assert [s.split(" (")[0].split(" FROM ")[0][:40] for s in unchanged] == [
            "SELECT USERS.ID, USERS.EMAIL, USERS.NAME", "WITH OPENED AS"]
        assert [part.split(" (")[0] for part in unchanged[1].split("AS (")[1:]] == [
            "INSERT INTO AUTH_SESSIONS", "INSERT INTO REFRESH_TOKENS"]
        assert " SELECT NEW_SEQ, NEW_PREV_HASH, NEW_HASH FROM AUDIT_APPEND(" in unchanged[1]
    else:
        # The chain's head, then the audit event in a savepoint (retried should it lose a race).
        assert [s.split(" (")[0].split(" FROM ")[0][:40] for s in unchanged] == [
            "SELECT USERS.ID, USERS.EMAIL, USERS.NAME", "INSERT INTO AUTH_SESSIONS",
            "INSERT INTO REFRESH_TOKENS", "SELECT AUDIT_EVENTS.SEQ, AUDIT_EVENTS.HA",
            "SAVEPOINT SA_SAVEPOINT_1", "INSERT INTO AUDIT_EVENTS",
            "RELEASE SAVEPOINT SA_SAVEPOINT_1"]

    before = {u.subject: (u.email, u.name) for u in rows(app, User)}
    assert before["upsert-zed"] == ("zed@example.test", "Zed Two")
    # An email held by another account is not copied; a free one is.
    assert login(app, token("upsert-zed", "taken@example.test", "Zed Two")).status_code == 200
    after = {u.subject: (u.email, u.name) for u in rows(app, User)}
    assert after == before
    assert login(app, token("upsert-zed", "new@example.test", "Zed Two")).status_code == 200
    assert {u.subject: u.email for u in rows(app, User)}["upsert-zed"] == "new@example.test"


def test_openapi_states_the_spa_binding_of_the_code_flow(
    make_app: Any, oidc_provider: OidcProvider
) -> None:
    app = make_app(**oidc_provider.config())
    document = json_object(app.test_client().get("/api/openapi.json"))
    authorize = document["paths"]["/api/auth/oidc/authorize"]["get"]
    challenge = next(p for p in authorize["parameters"] if p["name"] == "codeChallenge")
    assert challenge["required"] is True and "S256" in authorize["description"]
    exchange = document["paths"]["/api/auth/oidc/exchange"]["post"]
    ref = exchange["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"code", "codeVerifier"}
    assert "verifier" in exchange["description"]
