from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id, utcnow
from app.models.sealed import Sealed

# Stored as their values; app/buyflow/states.py holds the transitions between them. The
# docstrings are the OpenAPI descriptions of the enums.


class RequestStatus(StrEnum):
    """A purchase request's status."""

    SUBMITTED = "SUBMITTED"
    APPROVED = "APPROVED"
    PURCHASING = "PURCHASING"
    CART_READY = "CART_READY"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


class IntentStatus(StrEnum):
    """A purchase intent's status."""

    PURCHASING = "PURCHASING"
    CART_READY = "CART_READY"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


class PurchaseRequest(Base):
    __tablename__ = "purchase_requests"
    __table_args__ = (
        CheckConstraint("amount_minor >= 0 AND amount_minor <= 10000000000", name="amount"),
        Index("ix_purchase_requests_household_page", "household_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "req"))
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    requested_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    url: Mapped[str | None] = mapped_column(Sealed)
    item_id: Mapped[str | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Sealed)
    status: Mapped[str] = mapped_column(String(20), default=RequestStatus.SUBMITTED)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PurchaseIntent(Base):
    """A checkout attempt; the confirmation token is stored only as its SHA-256 hash."""

    __tablename__ = "purchase_intents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "pi"))
    household_id: Mapped[str] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[str] = mapped_column(
        ForeignKey("purchase_requests.id", ondelete="CASCADE"), index=True
    )
    actor_user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default=IntentStatus.PURCHASING)
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    cart: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    """A verified Hyperbeam webhook; ``webhook_id`` de-duplicates deliveries."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "evt"))
    webhook_id: Mapped[str] = mapped_column(String(255), unique=True)
    provider: Mapped[str] = mapped_column(String(50), default="hyperbeam")
    household_id: Mapped[str | None] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    intent_id: Mapped[str | None] = mapped_column(
        ForeignKey("purchase_intents.id", ondelete="SET NULL"), index=True
    )
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(Sealed)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
