"""Request ids, CORS and the security headers of API.md, on every response."""

from __future__ import annotations

import re
import secrets

from flask import Flask, Response, g, request
from flask_cors import CORS

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

RATE_LIMIT_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit-Policy",
    "RateLimit",
    "Retry-After",
)
EXPOSED_HEADERS = (REQUEST_ID_HEADER, *RATE_LIMIT_HEADERS)
PREFLIGHT_MAX_AGE = 86400
HSTS = "max-age=31536000; includeSubDomains"
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def _assign_request_id() -> None:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = offered if _SANE_REQUEST_ID.match(offered) else "cor_" + secrets.token_hex(12)


_EVERY_RESPONSE = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
_API_RESPONSE = (
    ("Content-Security-Policy", API_CSP),
    # API responses may carry tokens or personal data: never cached anywhere.
    ("Cache-Control", "no-store"),
)


def _secure(response: Response) -> Response:
    headers = response.headers
    headers[REQUEST_ID_HEADER] = g.get("request_id") or "cor_unassigned"
    for key, value in _EVERY_RESPONSE:
        headers[key] = value
    # CORS answers differ by Origin: shared caches must key on it.
    vary = headers.get("Vary")
    if not vary:
        headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        headers["Vary"] = vary + ", Origin"
    if _is_api(request.path):
        for key, value in _API_RESPONSE:
            headers[key] = value
    if g.get("hsts"):
        headers["Strict-Transport-Security"] = HSTS
    if request.method == "OPTIONS" and "Access-Control-Allow-Methods" in headers:
        response.status_code = 204
        response.set_data(b"")
    return response


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path.startswith("/.well-known/") or path in (
        "/healthz",
        "/readyz",
    )


def init_headers(app: Flask) -> None:
    production = app.config["HEARTHGATE_ENV"] == "production"

    def start() -> None:
        _assign_request_id()
        g.hsts = production

    app.before_request(start)
    # Registered before CORS so that it runs after it (Flask runs after_request in reverse).
    app.after_request(_secure)
    CORS(
        app,
        origins=list(app.config["CORS_ORIGINS"]),
        supports_credentials=bool(app.config["CORS_ALLOW_CREDENTIALS"]),
        expose_headers=list(EXPOSED_HEADERS),
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", REQUEST_ID_HEADER],
        max_age=PREFLIGHT_MAX_AGE,
        vary_header=True,
    )
