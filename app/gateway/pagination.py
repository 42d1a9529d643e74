"""Keyset (cursor) pagination, stable under inserts: rows are ordered by (timestamp, id) and the
cursor names the last row served, so a row inserted meanwhile neither repeats nor shifts a page."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, Table, and_, bindparam, or_, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from app.fastread import Read
from app.gateway.errors import ValidationError
from app.gateway.jsonbody import unstorable

T = TypeVar("T")
Column_ = ColumnElement[Any] | InstrumentedAttribute[Any]


_INVALID_CURSOR = "Invalid cursor"
_MAX_SEQ = 2**63 - 1  # the largest BIGINT


def _invalid_cursor() -> ValidationError:
    return ValidationError(
        "Request failed validation", details=[{"field": "cursor", "message": _INVALID_CURSOR}]
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(cursor: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, binascii.Error):
        raise _invalid_cursor() from None


def encode_cursor(stamp: datetime, ident: str) -> str:
    return _b64(json.dumps([stamp.isoformat(), ident], separators=(",", ":")).encode())


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (timestamp, id) that ``encode_cursor`` wrote, else 400.

    A cursor is accepted only when encoding its values again gives the very same text: anything
    a client edited or invented (other types, time zones, lone surrogates, NUL, another spelling)
    is refused before it reaches a query."""
    try:
        stamp_text, ident = json.loads(_unb64(cursor), parse_constant=_refuse)
        if not isinstance(stamp_text, str) or not isinstance(ident, str) or unstorable(ident):
            raise ValueError("not a cursor")
        stamp = datetime.fromisoformat(stamp_text)
        if stamp.tzinfo is not None or encode_cursor(stamp, ident) != cursor:
            raise ValueError("not a cursor")
    except (ValueError, TypeError, RecursionError):
        raise _invalid_cursor() from None
    return stamp, ident


def encode_seq_cursor(prefix: str, seq: int) -> str:
    """A cursor over a sequence number (``audit:42``), for lists ordered by one integer."""
    return _b64(f"{prefix}{seq}".encode())


def decode_seq_cursor(prefix: str, cursor: str) -> int:
    """The sequence number ``encode_seq_cursor`` wrote (1 ≤ n < 2^63), else 400; as with
    ``decode_cursor``, only the exact text it writes is accepted."""
    try:
        text = _unb64(cursor).decode("ascii")
        digits = text.removeprefix(prefix)
        if digits == text or not digits.isascii() or not digits.isdigit() or len(digits) > 19:
            raise ValueError("not a cursor")
        seq = int(digits)
        if not 1 <= seq <= _MAX_SEQ or encode_seq_cursor(prefix, seq) != cursor:
            raise ValueError("not a cursor")
    except ValueError:  # UnicodeDecodeError included
        raise _invalid_cursor() from None
    return seq


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# -- pages of plain rows from prebuilt reads ----------------------------------------------------
#
# Building a SELECT, adding its filters, order and limit, and then computing its cache key cost
# more than running it. A list's statements differ only in whether a cursor is given (and, for
# filterable lists, which filters are present), so each shape is built and compiled once
# (``app.fastread``) and reused.


def _keyset_select(statement: Select[Any], stamp_column: Column_, id_column: Column_,
                   after: bool, newest_first: bool) -> Select[Any]:
    """``statement`` [AND after the cursor] ORDER BY stamp, id LIMIT :page_limit; the cursor's
    parameters are ``:after_stamp`` and ``:after_id``."""
    if after:
        at: BindParameter[Any] = bindparam("after_stamp", type_=stamp_column.type)
        past: BindParameter[Any] = bindparam("after_id", type_=id_column.type)
        if newest_first:
            statement = statement.where(
                or_(stamp_column < at, and_(stamp_column == at, id_column < past)))
        else:
            statement = statement.where(
                or_(stamp_column > at, and_(stamp_column == at, id_column > past)))
    order = (stamp_column.desc(), id_column.desc()) if newest_first else (stamp_column, id_column)
    return statement.order_by(*order).limit(bindparam("page_limit"))


@dataclass(frozen=True)
class Keyset:
    """A list's two prebuilt reads, the first page and the page after a cursor; its rows carry
    the stamp and id under the names ``stamp`` and ``ident``."""

    first: Read
    after: Read
    stamp: str
    ident: str

    def page(self, params: Mapping[str, Any], *, limit: int, cursor: str | None
             ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of rows (``limit + 1`` fetched to know whether another page exists) and the
        cursor of the next one, if any."""
        rows = (self.after if cursor else self.first).rows(self.values(params, limit, cursor))
        if len(rows) <= limit:
            return rows, None
        del rows[limit:]
        return rows, encode_cursor(rows[-1][self.stamp], rows[-1][self.ident])

    @staticmethod
    def values(params: Mapping[str, Any], limit: int, cursor: str | None) -> dict[str, Any]:
        """The parameters of the page's read (``first``, or ``after`` with a cursor): also those of
        a read built on the same page's statement, such as its rows' links."""
        values = dict(params, page_limit=limit + 1)
        if cursor:
            values["after_stamp"], values["after_id"] = decode_cursor(cursor)
        return values


def keyset(statement: Select[Any], stamp_column: Column_, id_column: Column_, *,
           newest_first: bool = False) -> Keyset:
    """The keyset reads of ``statement`` (built once, at import time, by the module that lists)."""
    return Keyset(
        Read(_keyset_select(statement, stamp_column, id_column, False, newest_first)),
        Read(_keyset_select(statement, stamp_column, id_column, True, newest_first)),
        str(stamp_column.key), str(id_column.key))


@functools.lru_cache(maxsize=256)
def keyset_statement(
    table: Table,
    wanted: tuple[str, ...] | None,
    equal: tuple[str, ...],
    stamp: str,
    ident: str,
    after: bool,
    newest_first: bool,
) -> Select[Any]:
    """``SELECT <wanted columns, else all> FROM table WHERE <column = :column for each of equal>
    [AND after the cursor] ORDER BY stamp, ident LIMIT :page_limit``."""
    columns = table.c
    names = (*wanted, *(n for n in (stamp, ident) if n not in wanted)) if wanted else columns.keys()
    statement = select(*(columns[name] for name in names))
    statement = statement.where(*(columns[name] == bindparam(name) for name in equal))
    return _keyset_select(statement, columns[stamp], columns[ident], after, newest_first)


@functools.lru_cache(maxsize=256)
def _table_keyset(table: Table, wanted: tuple[str, ...] | None, equal: tuple[str, ...],
                  stamp: str, ident: str, newest_first: bool) -> Keyset:
    return Keyset(
        Read(keyset_statement(table, wanted, equal, stamp, ident, False, newest_first)),
        Read(keyset_statement(table, wanted, equal, stamp, ident, True, newest_first)),
        stamp, ident)


def rows_page(
    table: Table,
    equal: Mapping[str, Any],
    *,
    limit: int,
    cursor: str | None,
    columns: tuple[str, ...] | None = None,
    stamp: str = "created_at",
    ident: str = "id",
    newest_first: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of ``table``'s rows as dicts (column name → value) where every ``equal`` column
    has its value, with only ``columns`` when given; ``(rows, next_cursor)``. One prebuilt
    ``Keyset`` per shape (which filters are present)."""
    reads = _table_keyset(table, columns, tuple(sorted(equal)), stamp, ident, newest_first)
    return reads.page(equal, limit=limit, cursor=cursor)
