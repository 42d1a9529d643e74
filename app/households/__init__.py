from flask import Blueprint

bp = Blueprint("households", __name__)

from app.households import routes  # noqa: E402,F401  - registers the routes on bp
