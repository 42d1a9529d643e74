"""Idempotency keys of the buy-flow's POSTs, each with the response it produced."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id, utcnow


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
