from flask import Blueprint

bp = Blueprint("households", __name__)

from app.households import audit_routes, invitations, routes  # noqa: E402,F401  - register their routes on bp
