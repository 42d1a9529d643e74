"""The driver's floor: a bare Flask app doing the secured read's data access on the raw driver.

One ``sqlite3`` or ``psycopg`` connection per worker process, no SQLAlchemy: the same two
statements as ``GET /api/households/{id}/items?limit=20`` (membership, then a page of items) and
``json.dumps``. No token, no rate limit, no schema, no security headers, no pool, no session.
What the secured read costs above this is the gateway plus the data layer.
"""

import json
import os
import sqlite3
from datetime import datetime
from typing import Any

from flask import Flask, Response, abort

from app.db import BUSY_TIMEOUT_SECONDS, database_url
from app.rowsecurity import Scope, apply_scope

app = Flask(__name__)
_URL = database_url(os.environ["DATABASE_URL"], "")
_MEMBERSHIP = (
    "SELECT households.id, households.name, households.created_at, members.user_id, members.role"
    " FROM households JOIN members ON members.household_id = households.id"
    " WHERE households.id = {p} AND members.user_id = {p}"
)
_PAGE = (
    "SELECT items.id, items.name, items.category, items.size, items.color, items.notes,"
    " items.created_at FROM items WHERE items.household_id = {p}"
    " ORDER BY items.created_at, items.id LIMIT {p}"
)
_KEYS = ("id", "name", "category", "size", "color", "notes", "created_at")


def _connect() -> Any:
    if _URL.startswith("sqlite:///"):
        return sqlite3.connect(_URL.removeprefix("sqlite:///"), timeout=BUSY_TIMEOUT_SECONDS,
                               check_same_thread=False)
    import psycopg

    return psycopg.connect(_URL.replace("postgresql+psycopg://", "postgresql://"))


_MARK = "?" if _URL.startswith("sqlite:///") else "%s"
_SQL = (_MEMBERSHIP.format(p=_MARK), _PAGE.format(p=_MARK))
_opened: dict[int, Any] = {}  # process id → its connection (never one shared across a fork)


def _connection() -> Any:
    connection = _opened.get(os.getpid())
    if connection is None:
        _opened.clear()
        connection = _opened[os.getpid()] = _connect()
    return connection


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat() + "Z"
    raise TypeError(type(value).__name__)


@app.get("/raw-read/<household_id>/<user_id>")
def raw_read(household_id: str, user_id: str) -> Response:
    connection = _connection()
    try:
        if not isinstance(connection, sqlite3.Connection):
            # The transaction's row-level security scope, as the service states it (one
            # statement, app.rowsecurity): the policies admit nothing without it.
            apply_scope(connection, Scope(user_id=user_id))
        if connection.execute(_SQL[0], (household_id, user_id)).fetchone() is None:
            abort(404)
        rows = connection.execute(_SQL[1], (household_id, 21)).fetchall()
    finally:
        connection.commit()  # end the read's transaction, as the secured read does
    items = [dict(zip(_KEYS, row, strict=True)) for row in rows[:20]]
    body = {"items": items, "nextCursor": None}
    return Response(json.dumps(body, default=_iso), mimetype="application/json")
