from flask import Blueprint

bp = Blueprint("buyflow", __name__)

from app.buyflow import routes  # noqa: E402,F401  - registers the routes on bp
