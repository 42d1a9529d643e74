"""The floor: a bare Flask app doing the secured read's data access and nothing else.

The same two statements as ``GET /api/households/{id}/items?limit=20`` (membership, then a page of
items), on the same engine settings (on PostgreSQL after the same row-level security statement), serialised with ``json.dumps``: no token, no rate limit, no
schema, no security headers. The secured read cannot be faster than this; the gap between the two
is what the gateway itself costs.
"""

import json
import os
from datetime import datetime
from typing import Any

from flask import Flask, Response, abort

from app.db import build_engine
from app.gateway.pagination import keyset_statement
from app.gateway.tenancy import SCOPE_QUERY
from app.models import Item
from app.rowsecurity import Scope, apply_scope

app = Flask(__name__)
engine = build_engine(os.environ["DATABASE_URL"])
_COLUMNS = ("id", "name", "category", "size", "color", "notes", "created_at")
_PAGE = keyset_statement(Item.__table__, _COLUMNS, ("household_id",), "created_at", "id", False, False)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat() + "Z"
    raise TypeError(type(value).__name__)


@app.get("/bare-read/<household_id>/<user_id>")
def bare_read(household_id: str, user_id: str) -> Response:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            apply_scope(connection.connection.driver_connection, Scope(user_id=user_id))
        if connection.execute(SCOPE_QUERY, {"household_id": household_id,
                                             "user_id": user_id}).first() is None:
            abort(404)
        result = connection.execute(_PAGE, {"household_id": household_id, "page_limit": 21})
        keys = list(result.keys())
        items = [dict(zip(keys, row, strict=True)) for row in result.all()]
    body = {"items": items[:20], "nextCursor": None}
    return Response(json.dumps(body, default=_iso), mimetype="application/json")
