"""A statement sent as one simple query straight to libpq, past psycopg's own bookkeeping: the
row-level security scope with its ``BEGIN`` (``app.rowsecurity``, one round trip where psycopg
would take two) and the engine's ``ROLLBACK`` (``app.db``, which keeps the prepared statements
psycopg's ``rollback()`` would forget). Its failure is raised as psycopg raises one: a connection
the server dropped as ``OperationalError`` (SQLAlchemy then invalidates it), a statement the
server refused as the error class of its SQLSTATE."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq

_DONE = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)


def run_simple(connection: Any, sql: str) -> None:
    """Run ``sql`` (one or more statements) on ``connection``, a psycopg connection."""
    pgconn = connection.pgconn
    encoding = connection.info.encoding
    result = pgconn.exec_(sql.encode(encoding))
    if result.status in _DONE:
        return
    if pgconn.status == pq.ConnStatus.BAD:
        raise psycopg.OperationalError((result.error_message or b"").decode(errors="replace"))
    raise psycopg.errors.error_from_result(result, encoding=encoding)
