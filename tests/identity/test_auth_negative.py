"""The negative suite: every defective ID token is 401 and changes nothing but the audit log
(one denied ``auth.login`` event); bearer tokens of the wrong kind are 401 as well."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey

from app.gateway.tokens import ACCESS_TOKENS
from testkit.builders.households import json_object, snapshot
from testkit.servers.oidc import OidcProvider, SecretWatch, b64, parts, segment

pytestmark = pytest.mark.usefixtures("secret_watch")


class Listener:
    """A local HTTP server that records every request: a token's jku/x5u must never reach it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"keys": []}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture(scope="module")
def attacker_key() -> RSAKey:
    key = RSAKey.generate_key(2048)
    key.ensure_kid()
    return key


class Ctx:
    def __init__(self, provider: OidcProvider, listener: Listener, attacker: RSAKey) -> None:
        self.p = provider
        self.listener = listener
        self.attacker = attacker
        now = int(time.time())
        self.claims: dict[str, Any] = {
            "iss": provider.issuer, "aud": "hearthgate", "sub": "mallory", "iat": now,
            "exp": now + 600, "email": "mallory@example.test",
        }

    def signed(self, **changes: Any) -> str:
        claims = {k: v for k, v in {**self.claims, **changes}.items() if v is not _DROP}
        return self.p.sign(claims)

    def attacker_signed(self, header: dict[str, Any]) -> str:
        return jwt.encode({"alg": "RS256", **header}, self.claims, self.attacker)

    def provider_kid(self) -> str:
        return str(self.p.jwks()["keys"][0]["kid"])


_DROP = object()


def _unsigned(ctx: Ctx, alg: str, signature: str) -> str:
    return f"{segment({'alg': alg, 'kid': ctx.provider_kid()})}.{segment(ctx.claims)}.{signature}"


def _hs256_with_public_key(ctx: Ctx) -> str:
    jwk = ctx.p.jwks()["keys"][0]
    public = RSAKey.import_key(jwk).public_key
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{segment({'alg': 'HS256', 'kid': jwk['kid']})}.{segment(ctx.claims)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def _altered_signature(ctx: Ctx) -> str:
    head, body, signature = ctx.signed().split(".")
    flipped = ("A" if signature[10] != "A" else "B")
    return f"{head}.{body}.{signature[:10]}{flipped}{signature[11:]}"


def _altered_payload(ctx: Ctx) -> str:
    head, _body, signature = ctx.signed().split(".")
    return f"{head}.{segment({**ctx.claims, 'sub': 'admin'})}.{signature}"


def _stripped(ctx: Ctx) -> str:
    head, body, _ = ctx.signed().split(".")
    return f"{head}.{body}."


def _kid(ctx: Ctx, kid: str) -> str:
    return ctx.p.sign(ctx.claims, kid=kid)


def _big(ctx: Ctx) -> str:
    return ctx.signed(padding="x" * 8200)


def _non_json_payload(ctx: Ctx) -> str:
    head, _body, signature = ctx.signed().split(".")
    return f"{head}.{b64(b'{not json')}.{signature}"


def _now() -> int:
    return int(time.time())

CASES: dict[str, Callable[[Ctx], str]] = {
    "alg none": lambda c: _unsigned(c, "none", "") + "e30",
    "alg None": lambda c: _unsigned(c, "None", "e30"),
    "alg NONE": lambda c: _unsigned(c, "NONE", "e30"),
    "alg nOnE": lambda c: _unsigned(c, "nOnE", "e30"),
    "alg none, empty signature": lambda c: _unsigned(c, "none", ""),
    "stripped signature": _stripped,
    "altered signature": _altered_signature,
    "altered payload": _altered_payload,
    "RS256 to HS256 with the provider's public key": _hs256_with_public_key,
    "kid as a path": lambda c: _kid(c, "../../../../../../etc/passwd"),
    "kid as /dev/null": lambda c: _kid(c, "/dev/null"),
    "kid as SQL": lambda c: _kid(c, "' OR '1'='1"),
    "kid as SQL drop": lambda c: _kid(c, "x'; DROP TABLE users; --"),
    "jku to a listener": lambda c: c.attacker_signed(
        {"jku": c.listener.url + "/jku", "kid": c.attacker.kid}),
    "x5u to a listener": lambda c: c.attacker_signed(
        {"x5u": c.listener.url + "/x5u", "kid": c.attacker.kid}),
    "embedded jwk": lambda c: c.attacker_signed(
        {"jwk": c.attacker.as_dict(private=False), "kid": c.attacker.kid}),
    "provider signature with jku": lambda c: c.p.sign(c.claims, jku=c.listener.url + "/jku2"),
    "crit header": lambda c: c.p.sign(c.claims, crit=["exp"]),
    "expired beyond leeway": lambda c: c.signed(exp=_now() - 120, iat=_now() - 700),
    "not yet valid beyond leeway": lambda c: c.signed(nbf=_now() + 600),
    "issued in the future beyond leeway": lambda c: c.signed(iat=_now() + 600),
    "wrong iss": lambda c: c.signed(iss="https://evil.example"),
    "partial iss (no port)": lambda c: c.signed(iss="http://127.0.0.1"),
    "iss with trailing slash": lambda c: c.signed(iss=c.p.issuer + "/"),
    "wrong aud": lambda c: c.signed(aud="another-client"),
    "aud list without us": lambda c: c.signed(aud=["a", "b"]),
    "aud list with us but azp of another": lambda c: c.signed(aud=["hearthgate", "b"], azp="b"),
    "aud list with us and no azp": lambda c: c.signed(aud=["hearthgate", "b"]),
    "missing sub": lambda c: c.signed(sub=_DROP),
    "missing exp": lambda c: c.signed(exp=_DROP),
    "missing iat": lambda c: c.signed(iat=_DROP),
    "non-integer exp (string)": lambda c: c.signed(exp=str(_now() + 600)),
    "non-integer exp (boolean)": lambda c: c.signed(exp=True),
    "sub not a string": lambda c: c.signed(sub=12345),
    "malformed base64": lambda c: "%%%." + c.signed().split(".", 1)[1],
    "non-JSON header": lambda c: b64(b"not json") + "." + c.signed().split(".", 1)[1],
    "non-JSON payload": _non_json_payload,
    "two segments": lambda c: ".".join(c.signed().split(".")[:2]),
    "four segments": lambda c: c.signed() + ".e30",
    "8 KB token": _big,
    "garbage": lambda c: "garbage",
}


@pytest.fixture
def oidc_app(make_app: Any, oidc_provider: OidcProvider) -> Flask:
    app: Flask = make_app(**oidc_provider.config(AUTH_LOGIN_FAILURES_PER_IP="1000/minute"))
    return app


def _without_audit(rows: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {table: values for table, values in rows.items() if table != "audit_events"}


@pytest.mark.parametrize("case", list(CASES))
def test_defective_id_token_is_401_and_creates_nothing(
    case: str, oidc_app: Flask, oidc_provider: OidcProvider, listener: Listener,
    attacker_key: RSAKey, secret_watch: SecretWatch,
) -> None:
    # The provider's key set is fetched once, so that "nothing changed" compares real state.
    assert oidc_app.test_client().post(
        "/api/auth/login", json={"idToken": oidc_provider.id_token("valid-user")}
    ).status_code == 200
    token = CASES[case](Ctx(oidc_provider, listener, attacker_key))
    secret_watch.add(token)
    before = snapshot(oidc_app)
    response = oidc_app.test_client().post("/api/auth/login", json={"idToken": token})
    assert response.status_code == 401, (case, response.json)
    assert json_object(response)["error"] == "InvalidToken"
    assert "WWW-Authenticate" in response.headers
    after = snapshot(oidc_app)
    assert _without_audit(after) == _without_audit(before)
    new_events = [e for e in after["audit_events"] if e not in before["audit_events"]]
    assert len(new_events) == 1
    assert listener.hits == []


def test_the_8kb_case_really_is_a_genuinely_signed_oversized_token(
    oidc_provider: OidcProvider, listener: Listener, attacker_key: RSAKey
) -> None:
    token = _big(Ctx(oidc_provider, listener, attacker_key))
    assert len(token) > 8192
    header, claims, _ = parts(token)
    assert header["kid"] == oidc_provider.jwks()["keys"][0]["kid"] and claims["sub"] == "mallory"


def test_body_without_its_schema_is_400(oidc_app: Flask) -> None:
    before = snapshot(oidc_app)
    for body in ({}, {"idToken": 123}, {"idToken": ""}, {"idToken": None}, {"token": "x"}):
        response = oidc_app.test_client().post("/api/auth/login", json=body)
        assert response.status_code == 400, body
        assert json_object(response)["error"] == "ValidationError"
    assert snapshot(oidc_app) == before


def test_id_token_used_as_bearer_is_401(oidc_app: Flask, oidc_provider: OidcProvider) -> None:
    id_token = oidc_provider.id_token("alice")
    response = oidc_app.test_client().get("/api/auth/me",
                                          headers={"Authorization": f"Bearer {id_token}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_internal_token_used_as_id_token_is_401(
    oidc_app: Flask, auth: Any, secret_watch: SecretWatch
) -> None:
    internal = ACCESS_TOKENS.get(oidc_app).mint(
        {"sub": "usr_x", "permissions": [], "sid": "rtf_x"}).token
    secret_watch.add(internal)
    before = snapshot(oidc_app)
    response = oidc_app.test_client().post("/api/auth/login", json={"idToken": internal})
    assert response.status_code == 401
    assert _without_audit(snapshot(oidc_app)) == _without_audit(before)


def test_refresh_token_used_as_bearer_is_401(oidc_app: Flask, oidc_provider: OidcProvider) -> None:
    pair = json_object(oidc_app.test_client().post(
        "/api/auth/login", json={"idToken": oidc_provider.id_token("alice")}))
    response = oidc_app.test_client().get(
        "/api/auth/me", headers={"Authorization": f"Bearer {pair['refreshToken']}"})
    assert response.status_code == 401
