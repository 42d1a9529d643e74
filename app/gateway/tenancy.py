"""Household isolation: every household-scoped read and write goes through a ``HouseholdScope``.

The gateway builds the scope from the path's ``household_id`` and the caller's membership, read
from the database on every request. A non-member and an unknown household get the same 404, and a
child object of another household is 404 too, so a handler cannot leak by forgetting a filter.

Lock order (PostgreSQL; SQLite serializes writers and ignores these clauses): a write first locks
the household row, then the rows it changes or references, and appends to the audit chain last.
A write that adds or changes things inside the household holds the row ``FOR KEY SHARE`` (many at
once, and a rename or a guard's ``FOR NO KEY UPDATE`` still passes); deleting the household takes
it ``FOR UPDATE`` before anything else. So a deletion waits for the writes already inside, and a
write that arrives during a deletion waits at its first statement and then finds no household
(404), instead of holding a row lock that the deletion needs while it waits for the chain.
Internal callbacks reach a household through an intent and take the same lock with
``lock_household`` before touching the intent.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Select, Table, bindparam, select

from app.db import db
from app.fastread import Read
from app.gateway.errors import NotFound
from app.gateway.pagination import rows_page
from app.models import Household, Member

T = TypeVar("T")
HouseholdLock = Literal["key share", "update"]

HOUSEHOLD_NOT_FOUND = "Household not found"


def _locked(statement: Select[Any], lock: HouseholdLock) -> Select[Any]:
    """``FOR KEY SHARE`` or ``FOR UPDATE`` (SQLAlchemy spells the first read + key_share)."""
    share = lock == "key share"
    return statement.with_for_update(read=share, key_share=share)


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
        newest_first: bool = False,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of this household's ``model`` rows as plain dicts, oldest first unless
        ``newest_first``, where each column named in ``equal`` has its value, with only
        ``columns`` when given: for read-only lists, with no ORM work per row and a read built
        once per shape (``pagination.rows_page``)."""
        if "household_id" in equal:
            raise ValueError("the household is the scope's, never the caller's")
        return rows_page(model.__table__, {**equal, "household_id": self.id},
                         limit=limit, cursor=cursor, columns=columns, newest_first=newest_first)

    def row(self, model: type[Any], object_id: Any, what: str | None = None, *,
            columns: tuple[str, ...] | None = None) -> dict[str, Any]:
        """For reads: the row with this id in this household as a dict (only ``columns`` when
        given), else the same 404 as ``get``."""
        found = _row_by_id(model.__table__, columns).first(
            {"household_id": self.id, "id": object_id})
        if found is None:
            raise NotFound(f"{what or model.__name__} not found")
        return found

    def get(self, model: type[T], object_id: Any, what: str | None = None, *,
            lock: HouseholdLock | None = None) -> T:
        """The object with this id in this household, else 404 (also for other households').

        ``lock="update"`` before deleting or rewriting it: a concurrent caller waits, then finds
        it gone (404) or changed; ``lock="key share"`` before referencing it from a new row, so
        that it cannot be deleted under the reference (which would be a foreign-key error)."""
        statement = self.select(model).where(model.id == object_id)  # type: ignore[attr-defined]
        if lock is not None:
            statement = _locked(statement, lock)
        found = db.session.scalars(statement).first()
        if found is None:
            raise NotFound(f"{what or model.__name__} not found")
        return found

    def get_many(self, model: type[T], ids: Iterable[str], what: str | None = None, *,
                 lock: HouseholdLock | None = None) -> list[T]:
        """Every id must name an object of this household, else 404; order follows ``ids``.
        ``lock`` as for ``get``."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        statement = self.select(model).where(model.id.in_(wanted))  # type: ignore[attr-defined]
        if lock is not None:
            statement = _locked(statement, lock)
        rows = db.session.scalars(statement).all()
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
SCOPE_QUERY = (
    select(Household.id, Household.name, Household.created_at, Member.user_id, Member.role)
    .join(Member, Member.household_id == Household.id)
    .where(Household.id == bindparam("household_id"), Member.user_id == bindparam("user_id"))
)
_SCOPE_READS: dict[HouseholdLock | None, Read] = {
    None: Read(SCOPE_QUERY),
    "key share": Read(SCOPE_QUERY.with_for_update(read=True, key_share=True, of=Household)),
    "update": Read(SCOPE_QUERY.with_for_update(of=Household)),
}
_LOCK_HOUSEHOLD = (
    select(Household.id).where(Household.id == bindparam("household_id"))
    .with_for_update(read=True, key_share=True)
)


def load_scope(household_id: str, user_id: str, lock: HouseholdLock | None = None
               ) -> HouseholdScope:
    """One query: the household and the caller's membership, or the uniform 404; with ``lock``,
    the household row locked in that mode (module docstring: lock order)."""
    row = _SCOPE_READS[lock].first({"household_id": household_id, "user_id": user_id})
    if row is None:
        raise NotFound(HOUSEHOLD_NOT_FOUND)
    return HouseholdScope(**row)


@functools.lru_cache(maxsize=64)
def _row_by_id(table: Table, columns: tuple[str, ...] | None) -> Read:
    selected = [table.c[name] for name in columns] if columns else list(table.c)
    return Read(select(*selected).where(table.c.household_id == bindparam("household_id"),
                                        table.c.id == bindparam("id")))


def lock_household(household_id: str | None) -> bool:
    """Lock the household ``FOR KEY SHARE`` before a write that reaches it other than through a
    scope (an internal callback, a webhook); whether it still exists."""
    if household_id is None:
        return False
    row = db.session.connection().execute(_LOCK_HOUSEHOLD, {"household_id": household_id})
    return row.first() is not None
