"""Household isolation: every household-scoped read and write goes through a ``HouseholdScope``.

The gateway builds the scope from the path's ``household_id`` and the caller's membership, read
from the database on every request. A non-member and an unknown household get the same 404, and a
child object of another household is 404 too, so a handler cannot leak by forgetting a filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, select

from app.db import db
from app.gateway.errors import NotFound
from app.gateway.pagination import rows_page
from app.models import Household, Member

T = TypeVar("T")

HOUSEHOLD_NOT_FOUND = "Household not found"


@dataclass(frozen=True)
class HouseholdScope:
    """The path's household as seen by a member: its id, name and the caller's role."""

    id: str
    name: str
    created_at: datetime
    user_id: str
    role: str

    @property
    def household(self) -> Household:
        """The ORM row, loaded only by handlers that change the household itself."""
        household = db.session.get(Household, self.id)
        assert household is not None  # noqa: S101 - the scope was loaded in this request
        return household

    def select(self, model: type[T]) -> Select[tuple[T]]:
        """``SELECT model WHERE household_id = this household``; refine it further as needed."""
        return select(model).where(model.household_id == self.id)  # type: ignore[attr-defined]

    def rows_page(
        self,
        model: type[Any],
        equal: Mapping[str, Any],
        *,
        limit: int,
        cursor: str | None,
        columns: tuple[str, ...] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of this household's ``model`` rows as plain dicts, oldest first, where each
        column named in ``equal`` has its value, with only ``columns`` when given: for read-only
        lists, with no ORM work per row and a statement built once per shape
        (``pagination.rows_page``)."""
        if "household_id" in equal:
            raise ValueError("the household is the scope's, never the caller's")
        return rows_page(model.__table__, {**equal, "household_id": self.id},
                         limit=limit, cursor=cursor, columns=columns)

    def get(self, model: type[T], object_id: Any, what: str | None = None) -> T:
        """The object with this id in this household, else 404 (also for other households')."""
        found = db.session.scalars(
            self.select(model).where(model.id == object_id)  # type: ignore[attr-defined]
        ).first()
        if found is None:
            raise NotFound(f"{what or model.__name__} not found")
        return found

    def get_many(self, model: type[T], ids: Iterable[str], what: str | None = None) -> list[T]:
        """Every id must name an object of this household, else 404; order follows ``ids``."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        rows = db.session.scalars(
            self.select(model).where(model.id.in_(wanted))  # type: ignore[attr-defined]
        ).all()
        by_id = {row.id: row for row in rows}  # type: ignore[attr-defined]
        if len(by_id) != len(wanted):
            raise NotFound(f"{what or model.__name__} not found")
        return [by_id[i] for i in wanted]

    def add(self, obj: T) -> T:
        """Stage a new object in this household; its ``household_id`` is set here, nowhere else."""
        obj.household_id = self.id  # type: ignore[attr-defined]
        db.session.add(obj)
        return obj


# Built once: this query runs on every household-scoped request.
_SCOPE_QUERY = (
    select(Household.id, Household.name, Household.created_at, Member.user_id, Member.role)
    .join(Member, Member.household_id == Household.id)
    .where(Household.id == bindparam("household_id"), Member.user_id == bindparam("user_id"))
)


def load_scope(household_id: str, user_id: str) -> HouseholdScope:
    """One query: the household and the caller's membership, or the uniform 404."""
    # Core execution on the session's connection: same transaction, no ORM bookkeeping.
    row = db.session.connection().execute(
        _SCOPE_QUERY, {"household_id": household_id, "user_id": user_id}
    ).first()
    if row is None:
        raise NotFound(HOUSEHOLD_NOT_FOUND)
    return HouseholdScope(*row)
