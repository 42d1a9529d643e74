"""Development-only helpers for the demo SPA (``DEMO_HELPERS_ENABLED``).

They stand in for services a developer does not run locally, such as the orchestrator that fills
the cart. Production refuses the setting (``app.config``) and this package never registers its
routes there either, so a misread setting still cannot expose them.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("devtools", __name__, url_prefix="/api/dev")

from app.devtools import routes  # noqa: E402,F401  - attaches the routes to ``bp``
