"""Security headers on every response; CORS exactly as API.md says."""

from __future__ import annotations

import pytest

ORIGIN = "https://spa.example.test"


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(CORS_ORIGINS=[ORIGIN])


@pytest.mark.parametrize("path", ["/healthz", "/api/openapi.json", "/api/missing"])
def test_security_headers_everywhere(client, path: str) -> None:  # type: ignore[no-untyped-def]
    r = client.get(path)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert r.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in r.headers  # not outside production


def test_allowed_origin_is_reflected_with_vary_and_exposed_headers(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/healthz", headers={"Origin": ORIGIN})
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in r.headers["Vary"]
    exposed = {h.strip().lower() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
            "ratelimit-policy", "ratelimit", "retry-after"} <= exposed
    assert "Access-Control-Allow-Credentials" not in r.headers


def test_other_origin_gets_no_cors_headers(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/healthz", headers={"Origin": "https://evil.example.test"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_preflight_is_204_with_max_age(client) -> None:  # type: ignore[no-untyped-def]
    r = client.options("/api/openapi.json", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.headers["Access-Control-Max-Age"] == "86400"
    assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()


def test_preflight_from_other_origin_is_not_allowed(client) -> None:  # type: ignore[no-untyped-def]
    r = client.options("/api/openapi.json", headers={
        "Origin": "https://evil.example.test", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_credentials_only_with_explicit_origins(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app(CORS_ORIGINS=[ORIGIN], CORS_ALLOW_CREDENTIALS=True).test_client()
    r = client.get("/healthz", headers={"Origin": ORIGIN})
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.headers["Access-Control-Allow-Credentials"] == "true"


def test_hsts_in_production(make_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.test_config import production_config

    client = make_app(**production_config()).test_client()
    r = client.get("/healthz")
    assert r.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_own_values_replace_a_handlers_and_vary_keeps_its_entries(make_app) -> None:  # type: ignore[no-untyped-def]
    from flask import Response

    app = make_app(CORS_ORIGINS=[ORIGIN])

    @app.get("/api/test-headers")
    def with_headers() -> Response:
        return Response("{}", mimetype="application/json", headers={
            "Cache-Control": "public, max-age=600", "X-Frame-Options": "SAMEORIGIN",
            "Vary": "Accept-Encoding"})

    r = app.test_client().get("/api/test-headers")
    assert r.headers.getlist("Cache-Control") == ["no-store"]
    assert r.headers.getlist("X-Frame-Options") == ["DENY"]
    assert r.headers.getlist("Vary") == ["Accept-Encoding, Origin"]
    assert len(r.headers.getlist("X-Request-ID")) == 1


def test_pages_outside_the_api_get_the_page_policy_and_may_be_cached(make_app) -> None:  # type: ignore[no-untyped-def]
    from flask import Response

    from app.gateway.headers import SITE_CSP

    app = make_app()

    @app.get("/page")
    def page() -> Response:
        return Response("<p>hi</p>", mimetype="text/html")

    r = app.test_client().get("/page")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Cache-Control" not in r.headers
    assert r.headers["Content-Security-Policy"] == SITE_CSP
    assert r.headers["Vary"] == "Origin"


def test_without_origin_no_cors_headers_are_added(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/healthz")
    assert not [name for name in r.headers.keys() if name.startswith("Access-Control-")]
    r = client.options("/api/openapi.json", headers={"Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in r.headers and r.status_code != 204


def test_error_responses_carry_the_security_headers(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/households", headers={"Authorization": "Bearer not-a-token",
                                               "Origin": ORIGIN})
    assert r.status_code == 401
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.get_json()["correlationId"] == r.headers["X-Request-ID"]
