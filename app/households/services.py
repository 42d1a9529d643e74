"""Rules of households and their members. Each change is audited here, with ``audit.record`` in
the transaction that makes it."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select

from app import audit
from app.context import Principal
from app.db import Base, db
from app.gateway.pagination import keyset
from app.gateway.schemas import PageQuery, Trusted
from app.gateway.tenancy import HouseholdScope
from app.households.schemas import (
    HouseholdIn,
    HouseholdOut,
    HouseholdPatch,
    MemberOut,
    MemberPatch,
)
from app.models import Household, HouseholdRole, Member, User
from app.models.audit import AuditEvent

# Reads, built once (app.fastread).
_HOUSEHOLDS = keyset(
    select(Household.id, Household.name, Household.created_at, Member.role)
    .join(Member, Member.household_id == Household.id)
    .where(Member.user_id == bindparam("user_id")),
    Household.created_at, Household.id)
_MEMBERS = keyset(
    select(Member.user_id, User.email, User.name, Member.role, Member.joined_at)
    .join(User, User.id == Member.user_id)
    .where(Member.household_id == bindparam("household_id")),
    Member.joined_at, Member.user_id)

# -- households ------------------------------------------------------------------------------


def _household_out(household: Household, role: str) -> HouseholdOut:
    return HouseholdOut(id=household.id, name=household.name, role=role,  # type: ignore[arg-type]
                        created_at=household.created_at)


def create_household(body: HouseholdIn, principal: Principal) -> HouseholdOut:
    household = Household(name=body.name, created_by=principal.user_id)
    db.session.add(household)
    db.session.flush()
    db.session.add(Member(household_id=household.id, user_id=principal.user_id,
                          role=HouseholdRole.OWNER))
    db.session.flush()
    audit.record("household.created", household_id=household.id,
                 resource=f"household:{household.id}")
    return _household_out(household, HouseholdRole.OWNER)


def household_page(query: PageQuery, principal: Principal) -> Trusted:
    rows, cursor = _HOUSEHOLDS.page({"user_id": principal.user_id},
                                    limit=query.limit, cursor=query.cursor)
    return Trusted({"items": rows, "next_cursor": cursor})


def get_household(household: HouseholdScope) -> Trusted:
    return Trusted({"id": household.id, "name": household.name, "role": household.role,
                    "created_at": household.created_at})


def rename_household(household: HouseholdScope, body: HouseholdPatch) -> HouseholdOut:
    household.household.name = body.name
    db.session.flush()
    audit.record("household.renamed", household_id=household.id,
                 resource=f"household:{household.id}")
    return _household_out(household.household, household.role)


def delete_household(household: HouseholdScope) -> None:
    household_id = household.id
    # The household row is locked FOR UPDATE before anything else (app.gateway.tenancy): writes
    # already inside finish first, later ones and a second deletion find no household (404).
    # Every table with a household_id column, children first, in this one transaction; the
    # household's audit chain is erased by the audit module, which leaves a provable record.
    for table in reversed(Base.metadata.sorted_tables):
        if "household_id" in table.c and table.name != AuditEvent.__tablename__:
            db.session.execute(delete(table).where(table.c.household_id == household_id))
    audit.erase_household(household_id)
    db.session.execute(delete(Household).where(Household.id == household_id))


# -- members ---------------------------------------------------------------------------------


def _member_out(member: Member, user: User) -> MemberOut:
    return MemberOut(user_id=member.user_id, email=user.email, name=user.name,
                     role=member.role, joined_at=member.joined_at)  # type: ignore[arg-type]


def member_page(household: HouseholdScope, query: PageQuery) -> Trusted:
    rows, cursor = _MEMBERS.page({"household_id": household.id},
                                 limit=query.limit, cursor=query.cursor)
    return Trusted({"items": rows, "next_cursor": cursor})


def change_role(household: HouseholdScope, member: Member, body: MemberPatch) -> MemberOut:
    member.role = body.role
    user = db.session.get(User, member.user_id)
    assert user is not None  # noqa: S101 - members reference users (FK)
    db.session.flush()
    audit.record("member.role_changed", household_id=household.id,
                 resource=f"member:{member.user_id}", details={"role": body.role})
    return _member_out(member, user)


def remove_member(household: HouseholdScope, member: Member) -> None:
    user_id = member.user_id
    db.session.delete(member)
    db.session.flush()
    audit.record("member.removed", household_id=household.id, resource=f"member:{user_id}")
