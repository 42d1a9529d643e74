"""A plugin that registers blueprints, and a blueprint as a plugin author might write it with a
plain Flask route and no contract (the default-deny tests, in process and under gunicorn)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, jsonify

from app.hookspecs import hookimpl


def raw_blueprint() -> Blueprint:
    """What a plugin author might write: a plain Flask route, no contract."""
    bp = Blueprint("raw_plugin", __name__)

    @bp.get("/hello-raw")
    def hello_raw() -> Any:
        return jsonify(hello="world")

    return bp


class BlueprintPlugin:
    """Registers one blueprint per factory given."""

    def __init__(self, *blueprints: Callable[[], Blueprint]) -> None:
        self.blueprints = blueprints

    @hookimpl
    def register_blueprints(self, app: Flask) -> list[Blueprint]:
        return [make() for make in self.blueprints]
