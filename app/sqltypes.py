"""SQLAlchemy's declared types narrowed to what this application's own use of it guarantees,
each checked at run time (a wrong guess fails loudly instead of reading a missing attribute).

- ``table_of``: a model's ``__table__`` is typed as any FromClause; every model here is declared
  on one Table.
- ``rows_changed``: ``Session.execute`` is typed to return a ``Result``; an UPDATE or DELETE
  returns a ``CursorResult``, the one that counts the rows the statement matched.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult, Result, Table
from sqlalchemy.orm import DeclarativeBase


def table_of(model: type[DeclarativeBase]) -> Table:
    """The Table ``model`` maps; a model mapped to anything else (a join) is refused."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to one table")
    return table


def rows_changed(result: Result[Any]) -> int:
    """How many rows the UPDATE or DELETE that answered ``result`` matched."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"{type(result).__name__} is no cursor's result: it counts no rows")
    return int(result.rowcount)
