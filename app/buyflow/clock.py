"""The buy-flow's clock: one module-level function, so that tests can move time (TTL edges)."""

from __future__ import annotations

from datetime import datetime

from app.db import utcnow


def now() -> datetime:
    """Naive UTC, like every timestamp the models store."""
    return utcnow()
