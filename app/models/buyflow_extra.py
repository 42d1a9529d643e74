"""Buy-flow tables beyond the foundation's: idempotency keys, orchestrator events and artifacts."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id, utcnow
from app.models.sealed import Sealed


class IdempotencyKey(Base):
    """A buy-flow POST's ``Idempotency-Key`` with the response it produced.

    ``(user_id, key)`` is unique: a concurrent duplicate blocks on the unique index until the first
    transaction ends, then reads the stored response. A row is only ever committed together with the
    change it answers for, so it always carries a status. ``fingerprint`` is the SHA-256 of method,
    path and body; ``response_body`` never holds a confirmation token (see app/buyflow/idempotency).
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "idk"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    household_id: Mapped[str] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IntentEvent(Base):
    """A co-browsing bridge event the orchestrator reported for an intent."""

    __tablename__ = "intent_events"
    __table_args__ = (Index("ix_intent_events_intent_received", "intent_id", "received_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "evt"))
    household_id: Mapped[str] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    intent_id: Mapped[str] = mapped_column(ForeignKey("purchase_intents.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(Sealed)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class IntentArtifact(Base):
    """A receipt, screenshot or other file the orchestrator stored for an intent (by reference)."""

    __tablename__ = "intent_artifacts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "art"))
    household_id: Mapped[str] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    intent_id: Mapped[str] = mapped_column(
        ForeignKey("purchase_intents.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(50))
    uri: Mapped[str] = mapped_column(Sealed)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
