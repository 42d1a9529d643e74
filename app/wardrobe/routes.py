"""Routes of the wardrobe (items and outfits), on the households blueprint. Thin: each route
declares its contract; the rules live in services.py."""

from __future__ import annotations

from app.gateway.contracts import Reply, endpoint
from app.gateway.schemas import PageQuery, Trusted
from app.gateway.tenancy import HouseholdScope
from app.households import bp
from app.models import Item
from app.wardrobe import services
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

# -- items -----------------------------------------------------------------------------------


@bp.get("/households/<household_id>/items")
@endpoint(permissions=["items:read"], query=ItemQuery, response=ItemPage, household=True,
          tags=["items"], summary="Wardrobe items, filterable by category, color and size")
def list_items(household: HouseholdScope, query: ItemQuery) -> Trusted:
    return services.item_page(household, query)


@bp.post("/households/<household_id>/items")
@endpoint(permissions=["items:write"], body=ItemIn, response=ItemOut, status=201,
          household=True, tags=["items"], summary="Add a wardrobe item")
def create_item(household: HouseholdScope, body: ItemIn) -> Item:
    return services.create_item(household, body)


@bp.get("/households/<household_id>/items/<item_id>")
@endpoint(permissions=["items:read"], response=ItemOut, household=True, tags=["items"],
          summary="A wardrobe item")
def get_item(household: HouseholdScope, item_id: str) -> Trusted:
    return services.get_item(household, item_id)


@bp.patch("/households/<household_id>/items/<item_id>")
@endpoint(permissions=["items:write"], body=ItemPatch, response=ItemOut, household=True,
          tags=["items"], summary="Change a wardrobe item")
def update_item(household: HouseholdScope, item_id: str, body: ItemPatch) -> Item:
    return services.update_item(household, item_id, body)


@bp.delete("/households/<household_id>/items/<item_id>")
@endpoint(permissions=["items:write"], household=True, tags=["items"],
          summary="Remove a wardrobe item (and from every outfit)")
def delete_item(household: HouseholdScope, item_id: str) -> Reply:
    services.delete_item(household, item_id)
    return Reply(status=204)


# -- outfits ---------------------------------------------------------------------------------


@bp.get("/households/<household_id>/outfits")
@endpoint(permissions=["outfits:read"], query=PageQuery, response=OutfitPage, household=True,
          tags=["outfits"], summary="Outfits")
def list_outfits(household: HouseholdScope, query: PageQuery) -> Trusted:
    return services.outfit_page(household, query)


@bp.post("/households/<household_id>/outfits")
@endpoint(permissions=["outfits:write"], body=OutfitIn, response=OutfitOut, status=201,
          household=True, tags=["outfits"],
          summary="Create an outfit; every item must belong to this household")
def create_outfit(household: HouseholdScope, body: OutfitIn) -> OutfitOut:
    return services.create_outfit(household, body)


@bp.get("/households/<household_id>/outfits/<outfit_id>")
@endpoint(permissions=["outfits:read"], response=OutfitOut, household=True, tags=["outfits"],
          summary="An outfit")
def get_outfit(household: HouseholdScope, outfit_id: str) -> Trusted:
    return services.get_outfit(household, outfit_id)


@bp.patch("/households/<household_id>/outfits/<outfit_id>")
@endpoint(permissions=["outfits:write"], body=OutfitPatch, response=OutfitOut, household=True,
          tags=["outfits"], summary="Rename an outfit or replace its items")
def update_outfit(household: HouseholdScope, outfit_id: str, body: OutfitPatch) -> OutfitOut:
    return services.update_outfit(household, outfit_id, body)


@bp.delete("/households/<household_id>/outfits/<outfit_id>")
@endpoint(permissions=["outfits:write"], household=True, tags=["outfits"],
          summary="Delete an outfit")
def delete_outfit(household: HouseholdScope, outfit_id: str) -> Reply:
    services.delete_outfit(household, outfit_id)
    return Reply(status=204)
