"""Routes used only by the rate-limit tests: one per kind of contract the limiter tells apart."""

from __future__ import annotations

from flask import Blueprint

from app.gateway.contracts import endpoint
from app.gateway.schemas import Schema

bp = Blueprint("limited", __name__, url_prefix="/api/limit-test")

OWN_LIMIT = "{LIMIT_TEST_OWN}"  # filled from the settings, so each test picks its own number


class Answer(Schema):
    route: str


@bp.get("/public")
@endpoint(auth="public", response=Answer)
def public() -> dict[str, str]:
    return {"route": "public"}


@bp.get("/public-other")
@endpoint(auth="public", response=Answer)
def public_other() -> dict[str, str]:
    return {"route": "public-other"}


@bp.get("/me")
@endpoint(response=Answer)
def me() -> dict[str, str]:
    return {"route": "me"}


@bp.get("/me-other")
@endpoint(response=Answer)
def me_other() -> dict[str, str]:
    return {"route": "me-other"}


@bp.get("/own")
@endpoint(response=Answer, rate_limit=OWN_LIMIT)
def own() -> dict[str, str]:
    return {"route": "own"}


@bp.get("/read")
@endpoint(auth="public", response=Answer, rate_limit=OWN_LIMIT)
def read() -> dict[str, str]:
    """An ordinary route with its own limit: fails open when the storage is down."""
    return {"route": "read"}


@bp.post("/sensitive")
@endpoint(auth="public", response=Answer, rate_limit=OWN_LIMIT, sensitive=True)
def sensitive() -> dict[str, str]:
    """A login-like route: limited per process when the storage is down, never open."""
    return {"route": "sensitive"}
