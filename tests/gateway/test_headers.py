"""Security headers on every response; CORS exactly as API.md says."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from testkit.builders.households import AuthActions, json_object
from testkit.typing import MakeApp

ORIGIN = "https://spa.example.test"


pytestmark = pytest.mark.settings(CORS_ORIGINS=[ORIGIN])


@pytest.mark.parametrize("path", ["/healthz", "/api/openapi.json", "/api/missing"])
def test_security_headers_everywhere(client: FlaskClient, path: str) -> None:
    r = client.get(path)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert r.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in r.headers  # not outside production


def test_allowed_origin_is_reflected_with_vary_and_exposed_headers(client: FlaskClient) -> None:
    r = client.get("/healthz", headers={"Origin": ORIGIN})
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in r.headers["Vary"]
    exposed = {h.strip().lower() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
            "ratelimit-policy", "ratelimit", "retry-after"} <= exposed
    assert "Access-Control-Allow-Credentials" not in r.headers


def test_other_origin_gets_no_cors_headers(client: FlaskClient) -> None:
    r = client.get("/healthz", headers={"Origin": "https://evil.example.test"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_preflight_is_204_with_max_age(client: FlaskClient) -> None:
    r = client.options("/api/openapi.json", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.headers["Access-Control-Max-Age"] == "86400"
    assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()


def test_preflight_from_other_origin_is_not_allowed(client: FlaskClient) -> None:
    r = client.options("/api/openapi.json", headers={
        "Origin": "https://evil.example.test", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_credentials_only_with_explicit_origins(make_app: MakeApp) -> None:
    client = make_app(CORS_ORIGINS=[ORIGIN], CORS_ALLOW_CREDENTIALS=True).test_client()
    r = client.get("/healthz", headers={"Origin": ORIGIN})
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.headers["Access-Control-Allow-Credentials"] == "true"


def test_hsts_in_production(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    from testkit.config import production_config

    client = make_app(**production_config()).test_client()
    r = client.get("/healthz")
    assert r.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_own_values_replace_a_handlers_and_vary_keeps_its_entries(make_app: MakeApp) -> None:
    from app.gateway.contracts import Reply, endpoint

    app = make_app(CORS_ORIGINS=[ORIGIN])

    @app.get("/api/test-headers")
    @endpoint(auth="public")
    def with_headers() -> Reply:
        return Reply(headers={"Cache-Control": "public, max-age=600",
                              "X-Frame-Options": "SAMEORIGIN", "Vary": "Accept-Encoding"})

    r = app.test_client().get("/api/test-headers")
    assert r.status_code == 204
    assert r.headers.getlist("Cache-Control") == ["no-store"]
    assert r.headers.getlist("X-Frame-Options") == ["DENY"]
    assert r.headers.getlist("Vary") == ["Accept-Encoding, Origin"]
    assert len(r.headers.getlist("X-Request-ID")) == 1


def test_pages_outside_the_api_get_the_page_policy_and_may_be_cached(make_app: MakeApp) -> None:
    from app.gateway.contracts import Reply, endpoint
    from app.gateway.headers import SITE_CSP

    app = make_app()

    @app.get("/page")
    @endpoint(auth="public")
    def page() -> Reply:
        return Reply(headers={"Content-Type": "text/html"})

    r = app.test_client().get("/page")
    assert r.status_code == 204
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Cache-Control" not in r.headers
    assert r.headers["Content-Security-Policy"] == SITE_CSP
    assert r.headers["Vary"] == "Origin"


def test_without_origin_no_cors_headers_are_added(client: FlaskClient) -> None:
    r = client.get("/healthz")
    assert not [name for name in r.headers.keys() if name.startswith("Access-Control-")]
    r = client.options("/api/openapi.json", headers={"Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in r.headers and r.status_code != 204


def test_error_responses_carry_the_security_headers(client: FlaskClient) -> None:
    r = client.get("/api/households", headers={"Authorization": "Bearer not-a-token",
                                               "Origin": ORIGIN})
    assert r.status_code == 401
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert json_object(r)["correlationId"] == r.headers["X-Request-ID"]


# -- CORS on errors: the same as on successes, for every kind of error ---------------------------

OTHER_ORIGIN = "https://evil.example.test"


def _error_kinds(app: Flask, auth: AuthActions) -> dict[int, Callable[[FlaskClient, dict[str, str]], TestResponse]]:
    """One request per kind of error of API.md's table; each ``send(client, headers)``."""
    reader = auth.headers(auth.user("cors-reader@example.test", permissions=["items:read"]))
    return {
        400: lambda c, h: c.post("/api/sample/echo", data=b"{", content_type="application/json",
                                 headers=h),
        401: lambda c, h: c.get("/api/auth/me", headers={**h, "Authorization": "Bearer x.y.z"}),
        403: lambda c, h: c.get("/api/sample/guarded", headers={**h, **reader}),
        404: lambda c, h: c.get("/api/nothing-here", headers=h),
        405: lambda c, h: c.delete("/api/sample/echo", headers=h),
        413: lambda c, h: c.post("/api/sample/echo", data=b'{"name":"' + b"a" * 5000 + b'"}',
                                 content_type="application/json", headers=h),
        415: lambda c, h: c.post("/api/sample/echo", data=b"{}", content_type="text/plain",
                                 headers=h),
        429: lambda c, h: [c.post("/api/voice/live/public-session", headers=h)
                           for _ in range(2)][-1],
        500: lambda c, h: c.get("/api/sample/boom", headers=h),
    }


def _cors_headers(response: TestResponse) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.mark.parametrize("origin", [None, ORIGIN, OTHER_ORIGIN], ids=["none", "allowed", "other"])
def test_errors_carry_exactly_the_cors_headers_of_a_success(make_app: MakeApp, origin: str | None) -> None:
    from testkit.apps import sample as sample_routes
    from testkit.builders.households import AuthActions

    app = make_app(CORS_ORIGINS=[ORIGIN], MAX_CONTENT_LENGTH=4096, RATELIMIT_ENABLED=True,
                   VOICE_LIVE_PUBLIC_RATE_LIMIT_MAX_REQUESTS=1)
    app.register_blueprint(sample_routes.bp)
    client = app.test_client()
    headers = {} if origin is None else {"Origin": origin}
    success = client.get("/healthz", headers=headers)
    assert success.status_code == 200
    expected = _cors_headers(success)
    assert bool(expected) == (origin == ORIGIN)
    kinds = _error_kinds(app, AuthActions(app))
    for n, (status, send) in enumerate(kinds.items()):
        # each kind from its own address, so that the limits of one never answer for another
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"192.0.2.{n + 1}"
        r = send(client, headers)
        assert r.status_code == status, (status, r.data)
        assert json_object(r)["correlationId"] == r.headers["X-Request-ID"]
        assert _cors_headers(r) == expected, (status, origin, _cors_headers(r))
        assert "Origin" in r.headers["Vary"]
    assert sorted(kinds) == [400, 401, 403, 404, 405, 413, 415, 429, 500]


def test_no_request_reads_or_writes_a_flask_session(make_app: MakeApp, auth: AuthActions) -> None:
    """The service keeps no cookie session, even with a SECRET_KEY configured: a genuinely
    signed Flask session cookie is not read, a handler cannot write a session, and no response
    sets a cookie."""
    import flask
    from flask.sessions import SecureCookieSessionInterface

    app = make_app(SECRET_KEY="a-secret-key-0123456789abcdef0123456789")
    signed = SecureCookieSessionInterface().get_signing_serializer(app)
    assert signed is not None
    cookie = f"session={signed.dumps({'user': 'admin'})}"
    with app.test_request_context("/api/me", headers={"Cookie": cookie}):
        app.preprocess_request()
        assert dict(flask.session) == {}
        with pytest.raises(RuntimeError):
            flask.session["user"] = "someone"
    user = auth.user("cookie@example.test")
    client = app.test_client()
    for path in ("/healthz", "/api/me", "/api/households", "/api/missing"):
        r = client.get(path, headers={**auth.headers(user), "Cookie": cookie})
        assert r.status_code in (200, 404), (path, r.status_code)
        assert "Set-Cookie" not in r.headers, path
