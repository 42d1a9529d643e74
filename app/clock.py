"""The identity clock: one module-level function, so that tests can move time (the refresh
reuse grace, step-up ages) without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime

from app.db import utcnow


def now() -> datetime:
    """Naive UTC, like every timestamp the models store."""
    return utcnow()


def epoch(moment: datetime) -> int:
    """Unix seconds of a naive UTC timestamp (a JWT NumericDate)."""
    return int(moment.replace(tzinfo=UTC).timestamp())
