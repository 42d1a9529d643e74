from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id, utcnow
from app.models.sealed import Sealed


class LoginFlow(Base):
    """One authorization-code login: the provider round trip, then the one-time exchange code.

    ``state_hash`` and ``browser_hash`` bind the callback to the browser that started the flow;
    ``code_hash`` is set at the callback and spent (``consumed_at``) by the exchange, which must
    present the verifier whose S256 is ``spa_challenge``: the code is bound to the SPA instance
    that started the flow, so a code planted in another browser is useless (login CSRF).
    """

    __tablename__ = "login_flows"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "lgf"))
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(128))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    # BASE64URL(SHA-256(the SPA's verifier)); NULL (a flow from before the column) never exchanges.
    spa_challenge: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    callback_at: Mapped[datetime | None]
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    code_expires_at: Mapped[datetime | None]
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    consumed_at: Mapped[datetime | None]
    # The ID-token claims verified at the callback, for the session the exchange opens.
    claims: Mapped[dict[str, Any] | None] = mapped_column(Sealed)
