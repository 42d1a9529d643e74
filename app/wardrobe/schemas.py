"""Wire shapes of wardrobe items and outfits: what a client may send and see."""

from __future__ import annotations

from pydantic import Field

from app.gateway.schemas import Body, PageQuery, Schema, Timestamp
from app.households.schemas import Name


class ItemIn(Body):
    name: str = Name
    category: str | None = Field(default=None, max_length=100)
    size: str | None = Field(default=None, max_length=50)
    color: str | None = Field(default=None, max_length=50)
    notes: str | None = Field(default=None, max_length=2000)


class ItemPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    category: str | None = Field(default=None, max_length=100)
    size: str | None = Field(default=None, max_length=50)
    color: str | None = Field(default=None, max_length=50)
    notes: str | None = Field(default=None, max_length=2000)


class ItemOut(Schema):
    id: str
    name: str
    category: str | None
    size: str | None
    color: str | None
    notes: str | None
    created_at: Timestamp


class ItemQuery(PageQuery):
    category: str | None = Field(default=None, max_length=100)
    color: str | None = Field(default=None, max_length=50)
    size: str | None = Field(default=None, max_length=50)


class OutfitIn(Body):
    name: str = Name
    item_ids: list[str] = Field(default_factory=list, max_length=50)


class OutfitPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    item_ids: list[str] | None = Field(default=None, max_length=50)


class OutfitOut(Schema):
    id: str
    name: str
    item_ids: list[str]
    created_at: Timestamp


class ItemPage(Schema):
    items: list[ItemOut]
    next_cursor: str | None = None


class OutfitPage(Schema):
    items: list[OutfitOut]
    next_cursor: str | None = None

