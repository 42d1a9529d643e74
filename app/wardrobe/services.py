"""Rules of the wardrobe: items and outfits, always inside the caller's household scope."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, select

from app.db import db
from app.fastread import Read
from app.gateway.pagination import keyset
from app.gateway.schemas import PageQuery, Trusted
from app.gateway.tenancy import HouseholdScope
from app.models import Item, Outfit, OutfitItem
from app.wardrobe.schemas import (
    ItemIn,
    ItemOut,
    ItemPatch,
    ItemQuery,
    OutfitIn,
    OutfitOut,
    OutfitPatch,
)

ITEM_COLUMNS = tuple(ItemOut.model_fields)  # what a list shows of each item, no more


# -- items -----------------------------------------------------------------------------------


def item_page(household: HouseholdScope, query: ItemQuery) -> Trusted:
    filters = {"category": query.category, "color": query.color, "size": query.size}
    rows, cursor = household.rows_page(
        Item, {name: value for name, value in filters.items() if value is not None},
        limit=query.limit, cursor=query.cursor, columns=ITEM_COLUMNS)
    return Trusted({"items": rows, "next_cursor": cursor})


def create_item(household: HouseholdScope, body: ItemIn) -> Item:
    return household.add(Item(**body.model_dump(), created_by=household.user_id))


def get_item(household: HouseholdScope, item_id: str) -> Trusted:
    return Trusted(household.row(Item, item_id, "Item", columns=ITEM_COLUMNS))


def update_item(household: HouseholdScope, item_id: str, body: ItemPatch) -> Item:
    item = household.get(Item, item_id, "Item", lock="update")  # a concurrent delete: 404
    for field, value in body.model_dump(exclude_unset=True).items():
        if field == "name" and value is None:
            continue
        setattr(item, field, value)
    return item


def delete_item(household: HouseholdScope, item_id: str) -> None:
    db.session.delete(household.get(Item, item_id, "Item", lock="update"))


# -- outfits ---------------------------------------------------------------------------------


def outfits_out(outfits: list[Outfit]) -> list[OutfitOut]:
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


def _link_items(household: HouseholdScope, outfit: Outfit, item_ids: list[str]) -> None:
    # 404 unless all are this household's; locked so that none is deleted under the new links
    items = household.get_many(Item, item_ids, "Item", lock="key share")
    db.session.execute(delete(OutfitItem).where(OutfitItem.outfit_id == outfit.id))
    for position, item in enumerate(items):
        household.add(OutfitItem(outfit_id=outfit.id, item_id=item.id, position=position))


# Outfit reads, built once (app.fastread): a page of outfits, then the item links of the
# same page (and of the one extra outfit fetched past it) in one statement.
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


def _with_item_ids(outfits: list[dict[str, Any]], links: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
    by_outfit: dict[str, list[str]] = {outfit["id"]: [] for outfit in outfits}
    for link in links:
        if link["outfit_id"] in by_outfit:
            by_outfit[link["outfit_id"]].append(link["item_id"])
    for outfit in outfits:
        outfit["item_ids"] = by_outfit[outfit["id"]]
    return outfits


def outfit_page(household: HouseholdScope, query: PageQuery) -> Trusted:
    params = {"household_id": household.id}
    rows, cursor = _OUTFITS.page(params, limit=query.limit, cursor=query.cursor)
    if rows:
        links = (_PAGE_LINKS[1] if query.cursor else _PAGE_LINKS[0]).rows(
            _OUTFITS.values(params, query.limit, query.cursor))
        _with_item_ids(rows, links)
    return Trusted({"items": rows, "next_cursor": cursor})


def create_outfit(household: HouseholdScope, body: OutfitIn) -> OutfitOut:
    outfit = household.add(Outfit(name=body.name, created_by=household.user_id))
    db.session.flush()
    _link_items(household, outfit, body.item_ids)
    return outfits_out([outfit])[0]


def get_outfit(household: HouseholdScope, outfit_id: str) -> Trusted:
    outfit = household.row(Outfit, outfit_id, "Outfit", columns=_OUTFIT_COLUMNS)
    links = _OUTFIT_LINKS.rows({"household_id": household.id, "outfit_id": outfit_id})
    return Trusted(_with_item_ids([outfit], links)[0])


def update_outfit(household: HouseholdScope, outfit_id: str, body: OutfitPatch) -> OutfitOut:
    outfit = household.get(Outfit, outfit_id, "Outfit", lock="update")  # one replacement at a time
    if body.name is not None:
        outfit.name = body.name
    if body.item_ids is not None:
        _link_items(household, outfit, body.item_ids)
    db.session.flush()
    return outfits_out([outfit])[0]


def delete_outfit(household: HouseholdScope, outfit_id: str) -> None:
    db.session.delete(household.get(Outfit, outfit_id, "Outfit", lock="update"))
