"""Atomic state transitions: one conditional ``UPDATE … WHERE status IN (:expected)`` per row.

The row count says whether this transaction won: under concurrent calls PostgreSQL re-checks the
``WHERE`` clause after a competing writer commits, so exactly one caller sees ``1`` and every other
sees ``0`` and answers 409. Callers write the audit event in the same transaction. A move that
app/buyflow/states.py does not list is refused before any SQL runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import update

from app.buyflow import clock
from app.buyflow.states import TABLES, refuse_unlisted
from app.db import db
from app.gateway.errors import Conflict
from app.models import PurchaseIntent, PurchaseRequest
from app.sqltypes import rows_changed

Model = type[PurchaseRequest] | type[PurchaseIntent]


def transition(
    model: Model,
    row_id: str,
    expected: Iterable[str],
    new_status: str,
    *,
    where: Iterable[Any] = (),
    **values: Any,
) -> bool:
    """Move ``row_id`` from one of ``expected`` to ``new_status``; ``True`` when this call did."""
    expected = tuple(expected)
    refuse_unlisted(TABLES[model], expected, new_status)
    statement = (
        update(model)
        .where(model.id == row_id, model.status.in_(expected), *where)
        .values(status=new_status, updated_at=clock.now(), **values)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(db.session.execute(statement)) == 1


def transition_or_conflict(
    model: Model,
    row_id: str,
    expected: Iterable[str],
    new_status: str,
    *,
    what: str,
    where: Iterable[Any] = (),
    **values: Any,
) -> None:
    expected = tuple(expected)
    if not transition(model, row_id, expected, new_status, where=where, **values):
        raise Conflict(
            f"{what} cannot become {new_status} now",
            allowedFrom=list(expected),
        )
