"""``/``: the reference SPA in ``web/`` (plain HTML and JavaScript modules, no build step), on
the API's own origin so that it needs no CORS setting. Any static host can serve the same folder.

Only ``/`` and ``/assets/…`` are served: a catch-all path would turn the API's 405s into 404s.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory
from flask.typing import ResponseReturnValue

WEB_ROOT = Path(__file__).resolve().parents[2] / "web"

bp = Blueprint("spa", __name__)


@bp.get("/")
def index() -> ResponseReturnValue:
    return send_from_directory(WEB_ROOT, "index.html", max_age=0)


@bp.get("/assets/<path:name>")
def asset(name: str) -> ResponseReturnValue:
    return send_from_directory(WEB_ROOT / "assets", name, max_age=0)
