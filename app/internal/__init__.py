from flask import Blueprint

bp = Blueprint("internal", __name__)

from app.internal import routes  # noqa: E402,F401  - registers the routes on bp
