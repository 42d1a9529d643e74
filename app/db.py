"""The database: one engine per app, one session per request, committed by the gateway.

Plain SQLAlchemy 2.0 rather than Flask-SQLAlchemy: the request path opens a session lazily,
the endpoint wrapper commits it after the handler and its after guards (so an audit write and the
change it records share one transaction), and teardown closes it.

SQLite has one writer at a time. A transaction that reads and then writes cannot wait for the
write lock (SQLite answers "database is locked" at once: its snapshot may be stale), so every
session of the app's ``sessionmaker`` begins with ``BEGIN IMMEDIATE``: it takes the write lock
first, waiting up to the busy timeout, and concurrent writers queue instead of failing, as they
do on PostgreSQL's row locks. Reads do not queue: a request the gateway knows to be read-only
(``GET`` without ``writes=True``) gets a session on ``Database.reader``, whose ``BEGIN`` is
deferred, as are connections taken from the engine itself (readiness, exports). On PostgreSQL
both begin alike, and every transaction of the engine, a session's or a raw connection's, starts
by telling the database who is asking (``app.rowsecurity``): the row-level security policies
read it, and it ends with the transaction.

A request that reads (``app.fastread``) before anything opens its session runs on a
``RequestTransaction`` (``Database.connection``): a pooled DBAPI connection begun and committed
without SQLAlchemy's ``Connection``, whose bookkeeping costs more than a few small statements.
A session opened later adopts that transaction: one connection and one transaction per request
either way. A writing request's begins as its session's would (on SQLite with the write lock),
and its adopted connection keeps the writer's options. Every transaction begins with the same
steps (``_begin_steps``): SQLite's ``BEGIN`` (``BEGIN IMMEDIATE`` for a writer), and on
PostgreSQL the row-level security scope. SQLAlchemy's transactions run them from the engine's
``begin`` event (``ConnectionEvents``; an ORM session event would miss the reads), a
``RequestTransaction`` runs them itself.
"""

from __future__ import annotations

import secrets
import select
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, g
from psycopg import pq
from sqlalchemy import Connection, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.libpq import run_simple
from app.rawtransaction import (
    ADOPTED,
    WRITE_LOCK,
    BeginSteps,
    RequestTransaction,
    driver_error,
)
from app.rowsecurity import apply_scope, current_scope, refuse_bypassing_role
from app.state import Slot

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def new_id(prefix: str) -> str:
    """An opaque random id such as ``hh_4x9…`` (128 bits, never sequential)."""
    n = secrets.randbits(128)
    chars = []
    for _ in range(26):
        n, r = divmod(n, 32)
        chars.append(_ID_ALPHABET[r])
    return f"{prefix}_{''.join(chars)}"


def utcnow() -> datetime:
    """Naive UTC, stored as such on every backend (SQLite keeps no zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def database_url(configured: str | None, instance_path: str) -> str:
    """Normalise ``DATABASE_URL``; default to SQLite in the instance folder."""
    if not configured:
        return f"sqlite:///{Path(instance_path) / 'hearthgate.sqlite3'}"
    if configured.startswith("postgres://"):
        configured = "postgresql://" + configured[len("postgres://"):]
    if configured.startswith("postgresql://"):
        configured = "postgresql+psycopg://" + configured[len("postgresql://"):]
    return configured


BUSY_TIMEOUT_SECONDS = 15  # SQLite: how long a transaction waits for the write lock (then 503)


def build_engine(url: str, *, pool_size: int = 5, connect_timeout: int = 2) -> Engine:
    """The engine; its own connections begin deferred (``writer`` gives the locking variant).
    Statement parameters are never part of an error's text (they may be an email, a password
    hash or a token, and errors reach the logs)."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
    else:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
        kwargs["pool_timeout"] = connect_timeout
        kwargs["connect_args"] = {"connect_timeout": connect_timeout}
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        event.listen(engine, "checkout", _alive_at_checkout)
        # Every rollback of this engine's connections: a session's, a request transaction's, and
        # the pool's when a connection comes back with its transaction still open.
        engine.dialect.do_rollback = _rollback_keeping_prepared  # type: ignore[method-assign]
    return engine


def _rollback_keeping_prepared(dbapi_connection: Any) -> None:
    """``ROLLBACK`` on a psycopg connection (or the pool's proxy of one), keeping the statements
    psycopg prepared on it.

    psycopg's own ``rollback()`` also forgets every statement it prepared and sends ``DEALLOCATE
    ALL``: a rolled-back transaction may have dropped or altered what a plan refers to. This
    engine's transactions run no DDL (migrations run on their own connections), and PostgreSQL
    keeps prepared statements across a rollback: they belong to the session. Forgetting them
    cost more than the rollback: psycopg prepares a statement on its sixth run, so on a
    connection where every few requests ended in an error (a 404 after the membership read, a
    denial, a lost race) no read stayed prepared and PostgreSQL planned each one afresh. With
    one 404 to every three item reads, PostgreSQL planned the membership read on 799 of 800
    calls (224 µs each, by pg_stat_statements), and its CPU per request dropped from 610–630
    to 175–200 µs once the statements were kept."""
    # The pool's proxy (its ``info`` is the pool's, not psycopg's), or psycopg's connection.
    driver = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
    if driver.pgconn.transaction_status != pq.TransactionStatus.IDLE:  # else, as psycopg: no
        run_simple(driver, "ROLLBACK")  # round trip when there is nothing to roll back


def _alive_at_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A server may restart under us: a pooled connection is handed out only if it still looks
    alive, tested without a round trip. An idle connection between transactions has nothing to
    read, so a socket that is readable (the server's termination notice, or end of file) or
    closed means the server has gone away; the pool then discards it and checks out (or opens)
    another, and a server that is still down fails that connect (503). A ``SELECT 1`` before
    every checkout (``pool_pre_ping``) would cost a round trip on every request instead."""
    if dbapi_connection.closed or _readable(dbapi_connection.fileno()):
        raise DisconnectionError("the database closed this pooled connection")


def _readable(fileno: int) -> bool:
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def writer(engine: Engine) -> Engine:
    """The same engine and pool, whose transactions take SQLite's write lock when they begin."""
    return engine.execution_options(**{WRITE_LOCK: True})


def _sqlite_begin(connection: Any) -> None:
    options = connection.get_execution_options()
    if not options.get(ADOPTED):
        _begin_sqlite(connection.connection.driver_connection, bool(options.get(WRITE_LOCK)))


def _begin_sqlite(dbapi_connection: Any, write_lock: bool) -> None:
    # Straight to the driver: through exec_driver_sql this BEGIN cost a tenth of a small read.
    statement = "BEGIN IMMEDIATE" if write_lock else "BEGIN"
    try:
        dbapi_connection.execute(statement)
    except sqlite3.OperationalError as exc:
        # The write lock was not free within the busy timeout: the database's error, as
        # SQLAlchemy would have raised it (the gateway answers 503).
        raise OperationalError(statement, None, exc) from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling never emits BEGIN before a SAVEPOINT, so releasing a
    # savepoint would commit; SQLAlchemy's documented recipe: let SQLAlchemy emit BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.close()


def _row_security(app: Flask, engine: Engine) -> None:
    """Each transaction begins with its scope (``DATABASE_ROW_SECURITY``: off only to measure
    what the settings cost; the policies then admit nothing). Production refuses a role that
    row-level security does not bind: checked now, and on the first connection should the
    database be unreachable at start."""
    if app.config["DATABASE_ROW_SECURITY"]:
        event.listen(engine, "begin", _postgres_begin)
    if app.config["HEARTHGATE_ENV"] != "production":
        return
    event.listen(engine, "first_connect", lambda dbapi, _record: refuse_bypassing_role(dbapi))
    try:
        with engine.connect():
            pass  # first_connect ran the check
    except OperationalError:
        pass  # unreachable now: the first connection that succeeds is checked
    finally:
        engine.dispose()  # no pooled connection outlives a start that is refused later


def _postgres_begin(connection: Any) -> None:
    if not connection.get_execution_options().get(ADOPTED):
        _begin_postgres(connection)


def _begin_postgres(connection: Any) -> None:
    # Straight to the driver, as the transaction's first statement (no SQLAlchemy events). A
    # driver error is raised as SQLAlchemy raises it (a lost server: OperationalError, which the
    # gateway answers 503), and a connection the server dropped is invalidated for the pool.
    try:
        apply_scope(connection.connection.driver_connection, current_scope())
    except connection.dialect.loaded_dbapi.Error as exc:
        raise driver_error(connection, "SELECT set_config(...)", exc) from exc


def _begin_steps(engine: Engine, write_lock: bool) -> BeginSteps:
    """What begins a ``RequestTransaction`` on ``engine``: the steps its ``begin`` listeners run
    for a connection with (``writer``) or without the write lock."""
    if engine.dialect.name == "sqlite":
        return lambda read: _begin_sqlite(read.connection.driver_connection, write_lock)
    if event.contains(engine, "begin", _postgres_begin):
        return _begin_postgres
    return lambda read: None  # psycopg begins on the first statement


SESSIONS: Slot[sessionmaker[Session]] = Slot("db")  # sessions that write (module docstring)
ENGINE: Slot[Engine] = Slot("db.engine")
# What a ``RequestTransaction`` begins on, and how (``_begin_steps``): for a reader, the engine
# without the write lock; for a writer, ``writer``'s (built once: an engine with options costs a
# few microseconds to make).
BEGIN_STEPS: Slot[tuple[tuple[Engine, BeginSteps], tuple[Engine, BeginSteps]]] = Slot(
    "db.begin_steps")
ON_COMMIT: Slot[list[Callable[[dict[str, Any]], None]]] = Slot("db.on_commit")


class Database:
    """Flask extension holding the engine and handing out the request's session."""

    def init_app(self, app: Flask) -> None:
        url = database_url(app.config.get("DATABASE_URL"), app.instance_path)
        if url.startswith("sqlite:///"):
            Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        engine = build_engine(
            url,
            pool_size=app.config["DATABASE_POOL_SIZE"],
            connect_timeout=app.config["DATABASE_CONNECT_TIMEOUT_SECONDS"],
        )
        if engine.dialect.name == "postgresql":
            _row_security(app, engine)
        ENGINE.set(app, engine)
        writes = writer(engine)
        ON_COMMIT.set(app, [])
        BEGIN_STEPS.set(app, ((engine, _begin_steps(engine, write_lock=False)),
                              (writes, _begin_steps(engine, write_lock=True))))
        # Sessions write unless told otherwise (module docstring): a forgotten declaration
        # costs a reader some waiting, never a writer a 503.
        SESSIONS.set(app, sessionmaker(writes, expire_on_commit=False))
        app.teardown_appcontext(self._close)

    @staticmethod
    def engine(app: Flask | None = None) -> Engine:
        """The engine; its connections begin without the write lock."""
        return ENGINE.get(app)

    @staticmethod
    def reader(app: Flask | None = None) -> Session:
        """A new session that only reads: it never takes SQLite's write lock, so it never
        waits for a writer (and must not write: under contention that fails)."""
        return SESSIONS.get(app)(bind=ENGINE.get(app))

    @staticmethod
    def read_only_request() -> None:
        """Declare that this request only reads: its session (opened later) is a ``reader``."""
        g._db_read_only = True

    @property
    def session(self) -> Session:
        session: Session | None = g.get("_db_session")
        if session is None:
            raw: RequestTransaction | None = g.get("_db_connection")
            if raw is not None:  # carries on the transaction already begun, as its own:
                # its commit and rollback are the transaction's (then its listeners run)
                session = SESSIONS.get()(bind=raw.adopt(), join_transaction_mode="control_fully")
                # What the transaction's code kept so far goes on with it: the session's events
                # hand it on when it commits (and drop it when it rolls back).
                session.info.update(raw.info)
                raw.info = {}
                session.connection()  # joined now: a rollback before any statement ends it too
            elif g.get("_db_read_only"):
                session = self.reader()
            else:
                session = SESSIONS.get()()
            g._db_session = session
        return session

    @staticmethod
    def opened_session() -> Session | None:
        """The request's session if it is open already (``session`` opens it)."""
        return g.get("_db_session")  # type: ignore[no-any-return]

    def connection(self) -> Connection | RequestTransaction:
        """The connection of the request's transaction, begun on first use: the session's, or
        for a request that has no session yet a ``RequestTransaction`` (a session opened later
        adopts it), begun as the request's session would begin (a writing request's with the
        write lock). Reads run here (``app.fastread``): a session's bookkeeping (its
        transaction object, identity map, commit and close) costs more than a small read."""
        raw: RequestTransaction | None = g.get("_db_connection")
        if raw is not None:
            return raw
        if g.get("_db_session") is None:
            reader, writes = BEGIN_STEPS.get()
            raw = RequestTransaction(*(reader if g.get("_db_read_only") else writes))
            g._db_connection = raw
            return raw
        return self.session.connection()

    @staticmethod
    def on_commit(app: Flask, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call ``listener`` with a ``RequestTransaction``'s ``info`` once the transaction it began
        committed (never for one that rolled back). A session that adopts the transaction takes
        its ``info`` over (into ``session.info``): from then on its ``after_commit`` and
        rollback events see to it."""
        ON_COMMIT.get(app).append(listener)

    @staticmethod
    def commit() -> None:
        """Commit the request's transaction (the session's, or its ``RequestTransaction``'s);
        then the ``on_commit`` listeners run, as the session's ``after_commit`` listeners (the
        audit sinks and witnesses) do: once the database has committed, never before."""
        session: Session | None = g.get("_db_session")
        raw: RequestTransaction | None = g.get("_db_connection")
        began = raw is not None and raw.begun_open
        if session is not None:
            session.commit()
        if raw is not None and raw.in_transaction():
            raw.commit()
        if raw is not None and raw.info:
            info, raw.info = raw.info, {}
            if began:  # else it ended meanwhile (rolled back), and what it held with it
                for listener in ON_COMMIT.get():
                    listener(info)

    @staticmethod
    def rollback() -> None:
        """Roll the request's transaction back, if it has begun."""
        session: Session | None = g.get("_db_session")
        if session is not None:
            session.rollback()
        raw: RequestTransaction | None = g.get("_db_connection")
        if raw is not None:
            raw.info = {}
            if raw.in_transaction():
                raw.rollback()

    @staticmethod
    def _close(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("_db_session", None)
        if session is not None:
            session.close()
        raw: RequestTransaction | None = g.pop("_db_connection", None)
        if raw is not None:
            raw.close()


db = Database()
