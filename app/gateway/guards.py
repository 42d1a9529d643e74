"""Guard factories shared by features. A guard is ``guard(call) -> None`` that raises to refuse;
before guards run after validation and membership, after guards before the commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app import audit
from app.gateway.contracts import Call, Guard


def audited(
    action: str,
    resource: Callable[[Call], str | None] | None = None,
    details: Callable[[Call], dict[str, Any] | None] | None = None,
) -> Guard:
    """After guard: record ``action`` in the household's chain (or the system chain), in the same
    transaction as the change, so that the change commits only with its audit event."""

    def guard(call: Call) -> None:
        audit.record(
            action,
            household_id=call.household.id if call.household is not None else None,
            resource=resource(call) if resource else None,
            details=details(call) if details else None,
        )

    return guard
