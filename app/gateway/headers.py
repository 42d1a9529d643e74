"""Request ids, CORS and the security headers of API.md, on every response.

The fixed headers are added by a small WSGI layer around the Flask application rather than by an
``after_request`` hook: the layer appends precomputed ``(name, value)`` pairs to the status line's
header list, while setting the same headers one by one on a werkzeug ``Headers`` object validates
each value and was a third of the middleware's cost per request (``bench/bench_read.py``). It
also sees every response, including those of Flask's own error handling.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from flask import Flask, Response, request
from flask_cors import CORS

from app.context import REQUEST_ID_KEY

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
EXTRA_HEADERS_KEY = "hearthgate.response_headers"

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
# The interactive docs (``/api/docs``): scripts and styles from this origin (Swagger UI sets inline
# styles), its images, and calls to the API on this origin only.
DOCS_PATH = "/api/docs"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
# Pages (the reference SPA): its own modules and styles, calls to this origin, nothing inline.
SITE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

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
_DOCS_RESPONSE = (("Content-Security-Policy", DOCS_CSP),)
_SITE_RESPONSE = (("Content-Security-Policy", SITE_CSP),)


def api_headers(*, hsts: bool) -> tuple[tuple[str, str], ...]:
    """The fixed security headers of an API response (also those of the gunicorn worker's own
    error answers, ``app.serving``)."""
    tail = (("Strict-Transport-Security", HSTS),) if hsts else ()
    return (*_EVERY_RESPONSE, *_API_RESPONSE, *tail)


def add_response_headers(pairs: Iterable[tuple[str, str]]) -> None:
    """Headers for this request's response, whatever the response turns out to be (an error
    included); they replace any of the same name."""
    request.environ.setdefault(EXTRA_HEADERS_KEY, []).extend(pairs)


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path.startswith("/.well-known/") or path in (
        "/healthz",
        "/readyz",
    )


class SecurityHeaders:
    """WSGI layer: assigns the request id, then adds the security headers to the response."""

    def __init__(self, wsgi_app: WSGIApplication, *, hsts: bool) -> None:
        self.wsgi_app = wsgi_app
        tail = (("Strict-Transport-Security", HSTS),) if hsts else ()
        self._site = (*_EVERY_RESPONSE, *_SITE_RESPONSE, *tail)
        self._docs = (*_EVERY_RESPONSE, *_DOCS_RESPONSE, *tail)
        self._api = api_headers(hsts=hsts)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        offered = environ.get("HTTP_X_REQUEST_ID", "")
        rid = offered if _SANE_REQUEST_ID.match(offered) else "cor_" + secrets.token_hex(12)
        environ[REQUEST_ID_KEY] = rid
        fixed = self._fixed_for(environ.get("PATH_INFO", ""))

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            added = [(REQUEST_ID_HEADER, rid), *fixed, *environ.get(EXTRA_HEADERS_KEY, ())]
            return start_response(status, _merged(headers, added), exc_info)

        return self.wsgi_app(environ, start)

    def _fixed_for(self, path: str) -> tuple[tuple[str, str], ...]:
        if path == DOCS_PATH or path.startswith(DOCS_PATH + "/"):
            return self._docs
        return self._api if _is_api(path) else self._site


def _merged(headers: list[tuple[str, str]], added: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` without those ``added`` replaces, plus ``added``; ``Vary`` always names
    ``Origin`` (CORS answers differ by it, so shared caches must key on it)."""
    replaced = {name.lower() for name, _ in added}
    kept: list[tuple[str, str]] = []
    vary: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "vary":
            vary.append(value)
        elif lower not in replaced:
            kept.append((name, value))
    if not vary:
        kept.append(("Vary", "Origin"))
    else:
        if not any("origin" in value.lower() for value in vary):
            vary.append("Origin")
        kept.append(("Vary", ", ".join(vary)))
    kept.extend(added)
    return kept


def init_headers(app: Flask) -> None:
    production = app.config["HEARTHGATE_ENV"] == "production"
    app.wsgi_app = SecurityHeaders(app.wsgi_app, hsts=production)  # type: ignore[method-assign]
    _init_cors(app)


def _init_cors(app: Flask) -> None:
    CORS(
        app,
        origins=list(app.config["CORS_ORIGINS"]),
        supports_credentials=bool(app.config["CORS_ALLOW_CREDENTIALS"]),
        expose_headers=list(EXPOSED_HEADERS),
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", REQUEST_ID_HEADER],
        max_age=PREFLIGHT_MAX_AGE,
        vary_header=True,
        # Flask-CORS would otherwise wrap the exception handlers and answer every error from its
        # own hook, Origin or not; errors pass through the hook below like any other response.
        intercept_exceptions=False,
    )
    # Flask-CORS answers from the request's Origin; without one (same-origin, servers, tools)
    # it adds nothing, so its hook runs only when there is one.
    hooks = app.after_request_funcs.setdefault(None, [])
    cors = cast(Callable[[Response], Response], hooks.pop())  # the hook CORS() just registered
    if getattr(cors, "__name__", "") != "cors_after_request":  # a Flask-CORS that works otherwise
        raise RuntimeError("Flask-CORS did not register its after_request hook as expected")

    def cors_for_cross_origin(response: Response) -> Response:
        if "Origin" not in request.headers:
            return response
        response = cors(response)
        if request.method == "OPTIONS" and "Access-Control-Allow-Methods" in response.headers:
            response.status_code = 204  # an answered preflight has no body
            response.set_data(b"")
        return response

    hooks.append(cors_for_cross_origin)
