"""Operations: liveness, readiness and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue

from app.gateway.openapi import build_openapi
from app.meta import bp
from app.readiness import run_checks
from app.state import Slot

OPENAPI: Slot[dict[str, Any]] = Slot("openapi")  # the document, built on first request


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    results = run_checks(current_app)
    down = [name for name, ok in results.items() if not ok]
    body = {
        "status": "ok" if not down else "unavailable",
        "components": {name: ("ok" if ok else "down") for name, ok in results.items()},
    }
    if down:
        body["error"] = "ServiceUnavailable"
        body["message"] = "Unavailable: " + ", ".join(down)
        return jsonify(body), 503
    return jsonify(body)


@bp.get("/api/openapi.json")
def openapi() -> ResponseReturnValue:
    document = OPENAPI.find()
    if document is None:
        document = OPENAPI.set(current_app, build_openapi(current_app))
    return jsonify(document)
