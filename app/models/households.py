from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import partial

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id, utcnow
from app.models.sealed import Sealed


class HouseholdRole(StrEnum):
    """A member's role in a household: what the contracts' ``roles`` name. Stored as its value."""

    OWNER = "owner"
    ADULT = "adult"
    CHILD = "child"


INVITATION_STATES = ("PENDING", "ACCEPTED", "DECLINED", "REVOKED")
ROLE_CHECK = "role IN (" + ", ".join(f"'{role}'" for role in HouseholdRole) + ")"

class Household(Base):
    __tablename__ = "households"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "hh"))
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint(ROLE_CHECK, name="role"),
        Index("ix_members_user", "user_id"),
    )

    household_id: Mapped[str] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(10))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)

class Item(Base):
    __tablename__ = "items"
    __table_args__ = (Index("ix_items_household_page", "household_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "itm"))
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[str | None] = mapped_column(String(50))
    color: Mapped[str | None] = mapped_column(String(50))
    notes: Mapped[str | None] = mapped_column(Sealed)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

class Outfit(Base):
    __tablename__ = "outfits"
    __table_args__ = (Index("ix_outfits_household_page", "household_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "oft"))
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

class OutfitItem(Base):
    __tablename__ = "outfit_items"

    outfit_id: Mapped[str] = mapped_column(
        ForeignKey("outfits.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[str] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)


class Invitation(Base):
    """An owner's invitation of an email address into a household with a role. Only the person
    whose verified address it names accepts (then a ``Member`` row) or declines it; an owner may
    revoke it while pending. Past ``expires_at`` a pending invitation is expired (status shown as
    ``EXPIRED``; nothing writes that)."""

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint(ROLE_CHECK, name="role"),
        CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in INVITATION_STATES) + ")",
                        name="status"),
        Index("ix_invitations_household_page", "household_id", "created_at", "id"),
        Index("ix_invitations_email", "email", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "inv"))
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="PENDING")
    invited_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
