"""The sweeps over every route of the application: a configuration that turns every feature on,
every contracted (rule, method), the credential each checks, and a concrete path per rule."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from werkzeug.routing import Rule

from app.gateway.contracts import Contract, contract_of
from testkit.builders.families import INTERNAL_CONFIG
from testkit.builders.webhooks import SECRET

# Every route the application can serve: local accounts, the OIDC code flow and the demo helpers
# on, so that their routes are swept too (the provider is never contacted by these requests).
EVERY_FEATURE: dict[str, Any] = {
    **INTERNAL_CONFIG,
    "HYPERBEAM_EVENT_SIGNING_SECRET": [SECRET],
    "HYPERBEAM_ENFORCE_EVENT_SIGNATURES": True,
    "AUTH_LOCAL_ACCOUNTS_ENABLED": True,
    "DEMO_HELPERS_ENABLED": True,
    "AUTH_OIDC_ISSUER": "http://127.0.0.1:9/unreachable",
    "AUTH_OIDC_AUDIENCE": "hearthgate-spa",
    "AUTH_OIDC_CALLBACK_URL": "http://127.0.0.1:8000/api/auth/oidc/callback",
    "AUTH_OIDC_CLIENT_SECRET": "oidc-client-secret-0123456789abcdef",
    "AUTH_OIDC_REDIRECT_URIS": ["http://127.0.0.1:8001/"],
}


def credential_kind(contract: Contract) -> str:
    """The credential a route checks: ``bearer``, ``internal``, ``signature`` (a signed webhook:
    public, verified on the raw body) or ``public``."""
    if contract.auth == "public" and any(h.name == "webhook-signature" for h in contract.headers):
        return "signature"
    return contract.auth


def live_routes(app: Flask) -> list[tuple[Rule, str, Contract]]:
    """Every (rule, method, contract) of the URL map, uncontracted routes left out (the
    default-deny test refuses those)."""
    routes = []
    for rule in app.url_map.iter_rules():
        contract = contract_of(app.view_functions[rule.endpoint])
        if contract is None:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule, method, contract))
    return routes


def concrete(rule: Rule) -> str:
    """The rule's path with each variable replaced by a made-up id (``<item_id>`` ->
    ``item_budget``)."""
    return re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", lambda m: m.group(1).split("_")[0] + "_budget",
                  rule.rule)
