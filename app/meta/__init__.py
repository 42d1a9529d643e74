from flask import Blueprint

bp = Blueprint("meta", __name__)

from app.meta import routes  # noqa: E402,F401  - registers the routes on bp
