"""Keyset (cursor) pagination, stable under inserts: rows are ordered by (timestamp, id) and the
cursor names the last row served, so a row inserted meanwhile neither repeats nor shifts a page."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from app.db import db
from app.gateway.errors import ValidationError

T = TypeVar("T")


def encode_cursor(stamp: datetime, ident: str) -> str:
    raw = json.dumps([stamp.isoformat(), ident], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, ident = json.loads(raw)
        return datetime.fromisoformat(stamp), str(ident)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            "Request failed validation", details=[{"field": "cursor", "message": "Invalid cursor"}]
        ) from None


def paginate(
    statement: Select[Any],
    stamp_column: InstrumentedAttribute[datetime],
    id_column: InstrumentedAttribute[str],
    *,
    limit: int,
    cursor: str | None,
    newest_first: bool = False,
) -> tuple[list[Any], str | None]:
    """One query for a page of rows (``limit + 1`` fetched to know whether another page exists).

    A statement of plain columns yields dicts; of several entities, ``execute`` rows; of one
    entity, ORM objects. Returns ``(rows, next_cursor)``.
    """
    if cursor:
        stamp, ident = decode_cursor(cursor)
        if newest_first:
            after = or_(stamp_column < stamp, and_(stamp_column == stamp, id_column < ident))
        else:
            after = or_(stamp_column > stamp, and_(stamp_column == stamp, id_column > ident))
        statement = statement.where(after)
    order = (stamp_column.desc(), id_column.desc()) if newest_first else (stamp_column, id_column)
    statement = statement.order_by(*order).limit(limit + 1)
    descriptions = statement.column_descriptions
    entities = [d for d in descriptions if d.get("entity") is not None and d["entity"] is d["type"]]
    if not entities:  # plain rows: Core execution on the session's connection, no ORM work
        # As dicts: response schemas read them by key, cheaper than attribute probing on rows.
        result = db.session.connection().execute(statement)
        keys = list(result.keys())
        rows: list[Any] = [dict(zip(keys, row, strict=True)) for row in result]
        last_of = _itself
    elif len(descriptions) > 1:  # (entity, extra columns...) tuples, keyed on the first entity
        rows = list(db.session.execute(statement).all())
        last_of = _first
    else:
        rows = list(db.session.scalars(statement))
        last_of = _itself
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = last_of(rows[-1])
    if isinstance(last, dict):
        return rows, encode_cursor(last[stamp_column.key], last[id_column.key])
    return rows, encode_cursor(getattr(last, stamp_column.key), getattr(last, id_column.key))


def _itself(row: Any) -> Any:
    return row


def _first(row: Any) -> Any:
    return row[0]
