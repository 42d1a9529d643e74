"""Default deny: every rule of the URL map is an endpoint contract or on ``UNCONTRACTED_ROUTES``.

A view without ``@endpoint`` would be served with no authentication, rate limit, validation or
audit, and would be missing from OpenAPI. So the application refuses to start when any rule,
whoever registered it (a feature, a plugin's ``register_blueprints``, the embedding code), is
neither. ``UNCONTRACTED_ROUTES`` is the one place where a route may be served without a contract:
each entry names the rule, its endpoint, the methods it answers and why it needs no contract.
The pages for people (``app.web``: the API docs and the reference SPA) are on it, each only when
its setting registers it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask
from werkzeug.routing import Rule

from app.config import ConfigurationRefused
from app.gateway.contracts import contract_of
from app.gateway.errors import ApiError

log = logging.getLogger(__name__)

# Methods werkzeug and Flask add to every GET rule by themselves.
_AUTOMATIC = frozenset({"HEAD", "OPTIONS"})


@dataclass(frozen=True)
class UncontractedRoute:
    rule: str
    endpoint: str
    why: str
    methods: frozenset[str] = frozenset({"GET"})


UNCONTRACTED_ROUTES: tuple[UncontractedRoute, ...] = (
    UncontractedRoute("/healthz", "meta.healthz",
                      "liveness probe, no data, never limited"),
    UncontractedRoute("/readyz", "meta.readyz",
                      "readiness probe, component names and up or down only, never limited"),
    UncontractedRoute("/api/openapi.json", "meta.openapi",
                      "the OpenAPI document, public by design"),
    UncontractedRoute("/.well-known/jwks.json", "wellknown.jwks",
                      "public keys that verify access tokens, RFC 7517"),
    UncontractedRoute("/.well-known/hearthgate-audit-key", "wellknown.audit_public_key",
                      "the public key (PEM) that verifies audit checkpoints and proofs offline"),
    UncontractedRoute("/static/<path:filename>", "static",
                      "Flask's static files of the app package, public assets only"),
    UncontractedRoute("/api/docs", "docs.page",
                      "Swagger UI's page (API_DOCS_ENABLED): static HTML, no data"),
    UncontractedRoute("/api/docs/<name>", "docs.asset",
                      "Swagger UI's start-up script and its files from its package "
                      "(API_DOCS_ENABLED), a fixed list"),
    UncontractedRoute("/", "spa.index", "the reference SPA's page (SPA_ENABLED): static, no data"),
    UncontractedRoute("/assets/<path:name>", "spa.asset",
                      "the reference SPA's modules and styles (SPA_ENABLED): static, no data"),
)


def uncontracted_rules(app: Flask) -> list[str]:
    """``"METHODS rule (endpoint)"`` for every rule that is neither a contract nor listed."""
    allowed = {(route.rule, route.endpoint): route for route in UNCONTRACTED_ROUTES}
    refused = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        if view is not None and contract_of(view) is not None:
            continue
        listed = allowed.get((rule.rule, rule.endpoint))
        methods = (rule.methods or set()) - _AUTOMATIC
        if listed is not None and view is not None and methods <= listed.methods:
            continue
        refused.append(_describe(rule))
    return refused


def _describe(rule: Rule) -> str:
    methods = ",".join(sorted((rule.methods or set()) - _AUTOMATIC)) or "GET"
    return f"{methods} {rule.rule} ({rule.endpoint})"


def refuse_uncontracted_routes(app: Flask) -> None:
    """Refuse the start, naming every route served without a contract and not listed."""
    refused = uncontracted_rules(app)
    if refused:
        raise ConfigurationRefused([
            f"route without an @endpoint contract and not in UNCONTRACTED_ROUTES: {route}"
            for route in refused
        ])


def init_default_deny(app: Flask) -> None:
    """Check the URL map now, and once more before the first request: code that embeds the app
    may register blueprints after ``create_app`` (Flask forbids it after the first request).
    Until such a map passes, every request is refused (500) rather than served unchecked."""
    refuse_uncontracted_routes(app)
    verified = False

    def refuse_routes_added_after_start() -> None:
        nonlocal verified
        if verified:
            return
        refused = uncontracted_rules(app)
        if refused:
            log.error("refusing requests: routes without a contract: %s", "; ".join(refused))
            raise ApiError()  # a 500 InternalError body; the log line names the routes
        verified = True

    app.before_request(refuse_routes_added_after_start)
