"""Identity: login providers (plugins), internal access tokens, refresh sessions, permissions.

``bp`` holds the ``/api/auth`` routes; ``wellknown`` publishes ``/.well-known/jwks.json`` at the
root. The route modules attach to them when the factory imports them. ``init_auth`` runs after the
plugins and secrets are loaded (see ``create_app``).
"""

from flask import Blueprint, Flask, Response, current_app, jsonify

from app.auth.dev import init_development_auth
from app.auth.throttle import init_throttle
from app.plugins import hook

bp = Blueprint("auth", __name__)
wellknown = Blueprint("wellknown", __name__)


@wellknown.get("/.well-known/jwks.json")
def jwks() -> Response:
    """Public keys of the internal signer (current and previous); empty for HS256."""
    response = jsonify(current_app.extensions["hearthgate.tokens"].jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def init_auth(app: Flask) -> None:
    """Login providers from the plugins, the failed-login throttle and the development user."""
    providers = [p for found in hook(app).login_providers(app=app) for p in found or []]
    app.extensions["hearthgate.login_providers"] = providers
    init_throttle(app)
    init_development_auth(app)

