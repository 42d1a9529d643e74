"""Business rules of households, declared as before guards on the endpoint contracts."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db import db
from app.gateway.contracts import Call
from app.gateway.errors import Conflict, NotFound
from app.models import Household, HouseholdRole, Member


def target_member(call: Call) -> Member:
    """The member named by the path's ``user_id`` in the path's household, else 404."""
    assert call.household is not None  # noqa: S101 - household routes only
    member = db.session.get(Member, (call.household.id, call.path["user_id"]))
    if member is None:
        raise NotFound("Member not found")
    return member


def keeps_an_owner(call: Call) -> None:
    """The last owner can be neither removed nor demoted (409).

    The household row is locked first (``FOR NO KEY UPDATE``; SQLite serializes writers anyway),
    so two owners demoting each other at once cannot both succeed and leave the household
    ownerless. Not ``FOR UPDATE``: every concurrent write holds the row ``FOR KEY SHARE`` (lock
    order, app.gateway.tenancy), and two of these guards waiting for each other's share to end
    would deadlock.
    """
    assert call.household is not None  # noqa: S101 - household routes only
    db.session.execute(
        select(Household.id).where(Household.id == call.household.id)
        .with_for_update(key_share=True)  # FOR NO KEY UPDATE
    )
    member = target_member(call)
    stays_owner = call.body is not None and getattr(call.body, "role", None) == HouseholdRole.OWNER
    if member.role != HouseholdRole.OWNER or stays_owner:
        return
    owners = db.session.scalar(
        select(func.count()).select_from(Member).where(
            Member.household_id == call.household.id, Member.role == HouseholdRole.OWNER
        )
    )
    if (owners or 0) <= 1:
        raise Conflict("A household keeps at least one owner")
