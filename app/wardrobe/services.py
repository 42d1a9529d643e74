"""Rules of the wardrobe: items and outfits, always inside the caller's household scope."""

from __future__ import annotations

from sqlalchemy import delete, select

from app.db import db
from app.gateway.pagination import paginate
from app.gateway.schemas import PageQuery
from app.gateway.tenancy import HouseholdScope
from app.models import Item, Outfit, OutfitItem
from app.wardrobe.schemas import (
    ItemIn,
    ItemOut,
    ItemPage,
    ItemPatch,
    ItemQuery,
    OutfitIn,
    OutfitOut,
    OutfitPage,
    OutfitPatch,
)

ITEM_COLUMNS = tuple(ItemOut.model_fields)  # what a list shows of each item, no more


# -- items -----------------------------------------------------------------------------------


def item_page(household: HouseholdScope, query: ItemQuery) -> ItemPage:
    filters = {"category": query.category, "color": query.color, "size": query.size}
    rows, cursor = household.rows_page(
        Item, {name: value for name, value in filters.items() if value is not None},
        limit=query.limit, cursor=query.cursor, columns=ITEM_COLUMNS)
    return ItemPage.model_validate({"items": rows, "next_cursor": cursor})


def create_item(household: HouseholdScope, body: ItemIn) -> Item:
    return household.add(Item(**body.model_dump(), created_by=household.user_id))


def get_item(household: HouseholdScope, item_id: str) -> Item:
    return household.get(Item, item_id, "Item")


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


def outfit_page(household: HouseholdScope, query: PageQuery) -> OutfitPage:
    rows, cursor = paginate(household.select(Outfit), Outfit.created_at, Outfit.id,
                            limit=query.limit, cursor=query.cursor)
    return OutfitPage(items=outfits_out(rows), next_cursor=cursor)


def create_outfit(household: HouseholdScope, body: OutfitIn) -> OutfitOut:
    outfit = household.add(Outfit(name=body.name, created_by=household.user_id))
    db.session.flush()
    _link_items(household, outfit, body.item_ids)
    return outfits_out([outfit])[0]


def get_outfit(household: HouseholdScope, outfit_id: str) -> OutfitOut:
    return outfits_out([household.get(Outfit, outfit_id, "Outfit")])[0]


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
