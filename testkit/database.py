"""The test database: emptied between tests on PostgreSQL, and watched for transactions begun
read-only that write after reading."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import Connection, create_engine, event, text

from app import fastread
from app.db import Base, Database, build_engine
from app.rawtransaction import ADOPTED, WRITE_LOCK, RequestTransaction
from app.rowsecurity import SYSTEM, Scope, apply_scope


def truncate_all(url: str) -> None:
    engine = build_engine(url)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def watch_read_only_transactions(app: Flask, found: list[str]) -> None:
    """Collect every write that follows a read in a transaction begun without the write lock
    (``app.db``): on SQLite such a transaction fails under a concurrent writer instead of
    waiting. A GET that writes must declare ``writes=True``."""
    engine = Database.engine(app)

    def begun(conn: Any) -> None:
        if not conn.get_execution_options().get(ADOPTED):  # an adopted read has read already
            conn.info["hearthgate.test.read"] = False

    def statement(conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if conn.get_execution_options().get(WRITE_LOCK) or not conn.in_transaction():
            return
        if sql.lstrip().upper().startswith(_WRITES):
            if conn.info.get("hearthgate.test.read"):
                found.append(" ".join(sql.split())[:120])
        else:
            conn.info["hearthgate.test.read"] = True

    event.listen(engine, "begin", begun)
    event.listen(engine, "before_cursor_execute", statement)
    _watch_fast_reads()


def _watch_fast_reads() -> None:
    """Reads through ``app.fastread`` reach the driver without SQLAlchemy's events:
    they mark their transaction as having read all the same (once per test process)."""
    if getattr(fastread._execute, "watched", False):
        return
    original = fastread._execute

    def execute(connection: Any, compiled: Any, params: Any) -> Any:
        if isinstance(connection, RequestTransaction) and not connection.writes or (
                not isinstance(connection, RequestTransaction) and connection.in_transaction()
                and not connection.get_execution_options().get(WRITE_LOCK)):
            connection.connection.info["hearthgate.test.read"] = True
        return original(connection, compiled, params)

    execute.watched = True  # type: ignore[attr-defined]
    fastread._execute = execute  # type: ignore[assignment]


@contextmanager
def statements_sent(app: Flask) -> Iterator[list[str]]:
    """The SQL of every statement ``app`` sends meanwhile, whitespace collapsed: those executed
    through SQLAlchemy (its ``before_cursor_execute`` event) and those compiled once and sent
    straight to the driver (``app.fastread``: reads, and the audit append on PostgreSQL)."""
    statements: list[str] = []
    engine = Database.engine(app)

    def seen(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        statements.append(" ".join(sql.split()))

    execute = fastread._execute

    def fast(connection: Any, compiled: Any, params: Any) -> Any:
        seen(connection, None, compiled.sql)
        return execute(connection, compiled, params)

    event.listen(engine, "before_cursor_execute", seen)
    fastread._execute = fast  # type: ignore[assignment]
    try:
        yield statements
    finally:
        fastread._execute = execute  # type: ignore[assignment]
        event.remove(engine, "before_cursor_execute", seen)


@contextmanager
def system_connection(database_url: str) -> Iterator[Connection]:
    """A connection to ``database_url`` that sees every row, to count what a test wrote: on
    PostgreSQL its transaction runs in row-level security's ``system`` scope, as the command line
    does (a plain connection of the service's role sees nothing)."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                apply_scope(connection.connection.driver_connection, Scope(service=SYSTEM))
            yield connection
    finally:
        engine.dispose()
