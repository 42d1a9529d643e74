"""Bodies of the development helpers."""

from __future__ import annotations

from pydantic import Field

from app.buyflow.schemas import MAX_AMOUNT_MINOR
from app.gateway.schemas import Body


class SimulatedCartIn(Body):
    """What the simulated orchestrator puts in the cart; by default exactly what was approved."""

    total_minor: int | None = Field(default=None, ge=0, le=MAX_AMOUNT_MINOR)
