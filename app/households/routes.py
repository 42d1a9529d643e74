"""Households, members, wardrobe items and outfits. Thin handlers: the contract does the rest."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, select

from app import audit
from app.context import Principal
from app.db import Base, db
from app.gateway.contracts import Call, Reply, endpoint
from app.gateway.fastread import Read
from app.gateway.guards import audited
from app.gateway.pagination import decode_cursor, keyset
from app.gateway.schemas import PageQuery, Trusted
from app.gateway.tenancy import HouseholdScope
from app.households import bp
from app.households.policies import keeps_an_owner, target_member
from app.households.schemas import (
    HouseholdIn,
    HouseholdOut,
    HouseholdPage,
    HouseholdPatch,
    ItemIn,
    ItemOut,
    ItemPage,
    ItemPatch,
    ItemQuery,
    MemberOut,
    MemberPage,
    MemberPatch,
    OutfitIn,
    OutfitOut,
    OutfitPage,
    OutfitPatch,
)
from app.models import Household, Item, Member, Outfit, OutfitItem, User
from app.models.audit import AuditEvent

OWNER = ["owner"]
HOUSEHOLD = "households"


def _household_out(household: Household, role: str) -> HouseholdOut:
    return HouseholdOut(id=household.id, name=household.name, role=role,  # type: ignore[arg-type]
                        created_at=household.created_at)


def _household_resource(call: Call) -> str:
    assert call.household is not None  # noqa: S101 - household routes only
    return f"household:{call.household.id}"


# -- households ------------------------------------------------------------------------------


@bp.post("/households")
@endpoint(permissions=["households:create"], body=HouseholdIn, response=HouseholdOut, status=201,
          tags=[HOUSEHOLD], summary="Create a household; the caller becomes its owner")
def create_household(body: HouseholdIn, principal: Principal) -> HouseholdOut:
    household = Household(name=body.name, created_by=principal.user_id)
    db.session.add(household)
    db.session.flush()
    db.session.add(Member(household_id=household.id, user_id=principal.user_id, role="owner"))
    db.session.flush()
    audit.record("household.created", household_id=household.id,
                 resource=f"household:{household.id}")
    return _household_out(household, "owner")


@bp.get("/households")
@endpoint(permissions=["households:read"], query=PageQuery, response=HouseholdPage,
          tags=[HOUSEHOLD], summary="Households the caller is a member of")
def list_households(query: PageQuery, principal: Principal) -> Trusted:
    rows, cursor = _HOUSEHOLDS.page({"user_id": principal.user_id},
                                    limit=query.limit, cursor=query.cursor)
    return Trusted({"items": rows, "next_cursor": cursor})


@bp.get("/households/<household_id>")
@endpoint(permissions=["households:read"], response=HouseholdOut, household=True,
          tags=[HOUSEHOLD], summary="A household of the caller")
def get_household(household: HouseholdScope) -> Trusted:
    return Trusted({"id": household.id, "name": household.name, "role": household.role,
                    "created_at": household.created_at})


@bp.patch("/households/<household_id>")
@endpoint(permissions=["households:update"], body=HouseholdPatch, response=HouseholdOut,
          household=True, roles=OWNER, tags=[HOUSEHOLD], summary="Rename a household (owner)",
          after=[audited("household.renamed", _household_resource)])
def rename_household(household: HouseholdScope, body: HouseholdPatch) -> HouseholdOut:
    household.household.name = body.name
    return _household_out(household.household, household.role)


@bp.delete("/households/<household_id>")
@endpoint(permissions=["households:delete"], household=True, household_lock="update", roles=OWNER,
          tags=[HOUSEHOLD], summary="Delete a household and everything in it (owner)")
def delete_household(household: HouseholdScope) -> Reply:
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
    return Reply(status=204)


# -- members ---------------------------------------------------------------------------------


def _member_out(member: Member, user: User) -> MemberOut:
    return MemberOut(user_id=member.user_id, email=user.email, name=user.name,
                     role=member.role, joined_at=member.joined_at)  # type: ignore[arg-type]


def _member_resource(call: Call) -> str:
    user_id = call.path.get("user_id") or getattr(call.result, "user_id", None)
    return f"member:{user_id}"


def _role_details(call: Call) -> dict[str, str]:
    return {"role": call.body.role} if call.body is not None else {}


@bp.get("/households/<household_id>/members")
@endpoint(permissions=["members:read"], query=PageQuery, response=MemberPage, household=True,
          tags=["members"], summary="Members of a household")
def list_members(household: HouseholdScope, query: PageQuery) -> Trusted:
    rows, cursor = _MEMBERS.page({"household_id": household.id},
                                 limit=query.limit, cursor=query.cursor)
    return Trusted({"items": rows, "next_cursor": cursor})


@bp.patch("/households/<household_id>/members/<user_id>")
@endpoint(permissions=["members:manage"], body=MemberPatch, response=MemberOut, household=True,
          roles=OWNER, before=[keeps_an_owner], tags=["members"], errors=[409],
          summary="Change a member's role (owner); the last owner cannot be demoted",
          after=[audited("member.role_changed", _member_resource, _role_details)])
def change_role(call: Call, body: MemberPatch, user_id: str) -> MemberOut:
    member = target_member(call)
    member.role = body.role
    user = db.session.get(User, member.user_id)
    assert user is not None  # noqa: S101 - members reference users (FK)
    return _member_out(member, user)


@bp.delete("/households/<household_id>/members/<user_id>")
@endpoint(permissions=["members:manage"], household=True, roles=OWNER, before=[keeps_an_owner],
          tags=["members"], errors=[409],
          summary="Remove a member (owner); the last owner cannot be removed",
          after=[audited("member.removed", _member_resource)])
def remove_member(call: Call, user_id: str) -> Reply:
    db.session.delete(target_member(call))
    return Reply(status=204)


# -- items -----------------------------------------------------------------------------------


ITEM_COLUMNS = tuple(ItemOut.model_fields)  # what a list shows of each item, no more


@bp.get("/households/<household_id>/items")
@endpoint(permissions=["items:read"], query=ItemQuery, response=ItemPage, household=True,
          tags=["items"], summary="Wardrobe items, filterable by category, color and size")
def list_items(household: HouseholdScope, query: ItemQuery) -> Trusted:
    filters = {"category": query.category, "color": query.color, "size": query.size}
    rows, cursor = household.rows_page(
        Item, {name: value for name, value in filters.items() if value is not None},
        limit=query.limit, cursor=query.cursor, columns=ITEM_COLUMNS)
    return Trusted({"items": rows, "next_cursor": cursor})


@bp.post("/households/<household_id>/items")
@endpoint(permissions=["items:write"], body=ItemIn, response=ItemOut, status=201,
          household=True, tags=["items"], summary="Add a wardrobe item")
def create_item(household: HouseholdScope, body: ItemIn) -> Item:
    return household.add(Item(**body.model_dump(), created_by=household.user_id))


@bp.get("/households/<household_id>/items/<item_id>")
@endpoint(permissions=["items:read"], response=ItemOut, household=True, tags=["items"],
          summary="A wardrobe item")
def get_item(household: HouseholdScope, item_id: str) -> Trusted:
    return Trusted(household.row(Item, item_id, "Item", columns=ITEM_COLUMNS))


@bp.patch("/households/<household_id>/items/<item_id>")
@endpoint(permissions=["items:write"], body=ItemPatch, response=ItemOut, household=True,
          tags=["items"], summary="Change a wardrobe item")
def update_item(household: HouseholdScope, item_id: str, body: ItemPatch) -> Item:
    item = household.get(Item, item_id, "Item", lock="update")  # a concurrent delete: 404
    for field, value in body.model_dump(exclude_unset=True).items():
        if field == "name" and value is None:
            continue
        setattr(item, field, value)
    return item


@bp.delete("/households/<household_id>/items/<item_id>")
@endpoint(permissions=["items:write"], household=True, tags=["items"],
          summary="Remove a wardrobe item (and from every outfit)")
def delete_item(household: HouseholdScope, item_id: str) -> Reply:
    db.session.delete(household.get(Item, item_id, "Item", lock="update"))
    return Reply(status=204)


# -- outfits ---------------------------------------------------------------------------------


def _outfits_out(outfits: list[Outfit]) -> list[OutfitOut]:
    """Item ids of every outfit in one query, whatever the number of outfits."""
    ids = [o.id for o in outfits]
    links: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        rows = db.session.execute(
            select(OutfitItem.outfit_id, OutfitItem.item_id)
            .where(OutfitItem.outfit_id.in_(ids))
            .order_by(OutfitItem.outfit_id, OutfitItem.position)
        )
        for outfit_id, item_id in rows:
            links[outfit_id].append(item_id)
    return [OutfitOut(id=o.id, name=o.name, item_ids=links[o.id], created_at=o.created_at)
            for o in outfits]


# Reads, built once (app.gateway.fastread).
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
_OUTFIT_COLUMNS = ("id", "name", "created_at")
_OUTFITS = keyset(
    select(Outfit.id, Outfit.name, Outfit.created_at)
    .where(Outfit.household_id == bindparam("household_id")),
    Outfit.created_at, Outfit.id)
_LINKS = (select(OutfitItem.outfit_id, OutfitItem.item_id)
          .where(OutfitItem.household_id == bindparam("household_id"))
          .order_by(OutfitItem.outfit_id, OutfitItem.position))
_PAGE_LINKS = tuple(
    Read(_LINKS.where(OutfitItem.outfit_id.in_(
        select(page.statement.with_only_columns(Outfit.id).subquery().c.id))))
    for page in (_OUTFITS.first, _OUTFITS.after))
_OUTFIT_LINKS = Read(_LINKS.where(OutfitItem.outfit_id == bindparam("outfit_id")))


def _cursor_params(cursor: str | None) -> dict[str, object]:
    if not cursor:
        return {}
    stamp, ident = decode_cursor(cursor)
    return {"after_stamp": stamp, "after_id": ident}


def _with_item_ids(outfits: list[dict[str, Any]], links: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
    by_outfit: dict[str, list[str]] = {outfit["id"]: [] for outfit in outfits}
    for link in links:
        if link["outfit_id"] in by_outfit:
            by_outfit[link["outfit_id"]].append(link["item_id"])
    for outfit in outfits:
        outfit["item_ids"] = by_outfit[outfit["id"]]
    return outfits


def _link_items(household: HouseholdScope, outfit: Outfit, item_ids: list[str]) -> None:
    # 404 unless all are this household's; locked so that none is deleted under the new links
    items = household.get_many(Item, item_ids, "Item", lock="key share")
    db.session.execute(delete(OutfitItem).where(OutfitItem.outfit_id == outfit.id))
    for position, item in enumerate(items):
        household.add(OutfitItem(outfit_id=outfit.id, item_id=item.id, position=position))


@bp.get("/households/<household_id>/outfits")
@endpoint(permissions=["outfits:read"], query=PageQuery, response=OutfitPage, household=True,
          tags=["outfits"], summary="Outfits")
def list_outfits(household: HouseholdScope, query: PageQuery) -> Trusted:
    params = {"household_id": household.id}
    rows, cursor = _OUTFITS.page(params, limit=query.limit, cursor=query.cursor)
    if rows:  # the links of the same page (and of the one extra outfit fetched past it)
        links = (_PAGE_LINKS[1] if query.cursor else _PAGE_LINKS[0]).rows(
            {**params, "page_limit": query.limit + 1,
             **_cursor_params(query.cursor)})
        _with_item_ids(rows, links)
    return Trusted({"items": rows, "next_cursor": cursor})


@bp.post("/households/<household_id>/outfits")
@endpoint(permissions=["outfits:write"], body=OutfitIn, response=OutfitOut, status=201,
          household=True, tags=["outfits"],
          summary="Create an outfit; every item must belong to this household")
def create_outfit(household: HouseholdScope, body: OutfitIn) -> OutfitOut:
    outfit = household.add(Outfit(name=body.name, created_by=household.user_id))
    db.session.flush()
    _link_items(household, outfit, body.item_ids)
    return _outfits_out([outfit])[0]


@bp.get("/households/<household_id>/outfits/<outfit_id>")
@endpoint(permissions=["outfits:read"], response=OutfitOut, household=True, tags=["outfits"],
          summary="An outfit")
def get_outfit(household: HouseholdScope, outfit_id: str) -> Trusted:
    outfit = household.row(Outfit, outfit_id, "Outfit", columns=_OUTFIT_COLUMNS)
    links = _OUTFIT_LINKS.rows({"household_id": household.id, "outfit_id": outfit_id})
    return Trusted(_with_item_ids([outfit], links)[0])


@bp.patch("/households/<household_id>/outfits/<outfit_id>")
@endpoint(permissions=["outfits:write"], body=OutfitPatch, response=OutfitOut, household=True,
          tags=["outfits"], summary="Rename an outfit or replace its items")
def update_outfit(household: HouseholdScope, outfit_id: str, body: OutfitPatch) -> OutfitOut:
    outfit = household.get(Outfit, outfit_id, "Outfit", lock="update")  # one replacement at a time
    if body.name is not None:
        outfit.name = body.name
    if body.item_ids is not None:
        _link_items(household, outfit, body.item_ids)
    db.session.flush()
    return _outfits_out([outfit])[0]


@bp.delete("/households/<household_id>/outfits/<outfit_id>")
@endpoint(permissions=["outfits:write"], household=True, tags=["outfits"],
          summary="Delete an outfit")
def delete_outfit(household: HouseholdScope, outfit_id: str) -> Reply:
    db.session.delete(household.get(Outfit, outfit_id, "Outfit", lock="update"))
    return Reply(status=204)
