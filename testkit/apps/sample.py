"""A blueprint used only by the gateway tests: every contract feature on a tiny surface."""

from __future__ import annotations

from flask import Blueprint
from pydantic import Field

from app.gateway.contracts import Call, Reply, endpoint
from app.gateway.errors import Conflict
from app.gateway.schemas import Body, Schema
from app.gateway.tenancy import HouseholdScope
from app.models import Item

bp = Blueprint("sample", __name__, url_prefix="/api/sample")


class EchoIn(Body):
    name: str = Field(min_length=1, max_length=50)
    amount_minor: int = Field(ge=0, le=10**10)


class EchoOut(Schema):
    name: str
    amount_minor: int


class ItemIn(Body):
    name: str = Field(min_length=1, max_length=200)


class ItemOut(Schema):
    id: str
    name: str


class Leaky:
    """An object with more attributes than the response schema declares."""

    def __init__(self) -> None:
        self.name = "visible"
        self.amount_minor = 5
        self.password_hash = "argon2$should-never-leave"
        self.internal_note = "internal"


@bp.post("/echo")
@endpoint(auth="public", body=EchoIn, response=EchoOut, summary="Echo a body")
def echo(body: EchoIn) -> EchoIn:
    return body


@bp.get("/leaky")
@endpoint(auth="public", response=EchoOut)
def leaky() -> Leaky:
    return Leaky()


@bp.get("/boom")
@endpoint(auth="public")
def boom() -> None:
    raise RuntimeError("secret stack detail: password=hunter2")


@bp.get("/guarded")
@endpoint(permissions=["items:read", "audit:read"], response=EchoOut)
def guarded() -> dict[str, object]:
    return {"name": "ok", "amountMinor": 1}


def refuse_name_taken(call: Call) -> None:
    if call.body is not None and call.body.name == "taken":
        raise Conflict("Name taken")


@bp.post("/households/<household_id>/items")
@endpoint(
    permissions=["items:write"], body=ItemIn, response=ItemOut, status=201, household=True,
    before=[refuse_name_taken],
)
def create_item(household: HouseholdScope, body: ItemIn) -> Item:
    return household.add(Item(name=body.name, created_by=household.user_id))


@bp.get("/households/<household_id>/items/<item_id>")
@endpoint(permissions=["items:read"], response=ItemOut, household=True)
def get_item(household: HouseholdScope, item_id: str) -> Item:
    return household.get(Item, item_id, "Item")


@bp.delete("/households/<household_id>/items/<item_id>")
@endpoint(permissions=["items:write"], household=True, roles=["owner"])
def delete_item(household: HouseholdScope, item_id: str) -> Reply:
    from app.db import db

    db.session.delete(household.get(Item, item_id, "Item"))
    return Reply(status=204)
