"""Identity: login providers (plugins), internal access tokens, refresh sessions, permissions.

``bp`` holds the ``/api/auth`` routes; ``wellknown`` publishes ``/.well-known/jwks.json`` at the
root. The route modules attach to them when the factory imports them; ``app.auth.setup.init_auth``
runs after the plugins and secrets are loaded (see ``create_app``).
"""

from flask import Blueprint, Response, jsonify

from app.gateway.tokens import ACCESS_TOKENS

bp = Blueprint("auth", __name__)
wellknown = Blueprint("wellknown", __name__)


@wellknown.get("/.well-known/jwks.json")
def jwks() -> Response:
    """Public keys of the internal signer (current and previous); empty for HS256."""
    response = jsonify(ACCESS_TOKENS.get().jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


