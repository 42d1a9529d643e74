"""What the orchestrator reports about a purchase intent: bridge events and artifacts."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id, utcnow
from app.models.sealed import Sealed


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
