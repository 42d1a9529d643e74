"""A pooled PostgreSQL connection is tested for liveness at checkout without a round trip, and
keeps its prepared statements through a rollback.

An idle connection between transactions has nothing to read: a readable socket (the server's
termination notice, or end of file) or a closed connection means the server went away, and the
pool replaces it instead of handing it to a request (which would then fail). The restart under
load itself is proven by ``tests/test_load_faults.py``.

A request that ends in an error rolls its transaction back; psycopg's own rollback would also
drop every statement prepared on the connection, and the next reads would be planned afresh
(``app.db._rollback_keeping_prepared``).
"""

from __future__ import annotations

import socket
import time

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from psycopg import pq
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.pool import QueuePool

from app.db import Database, _alive_at_checkout, build_engine
from app.libpq import run_simple
from testkit.builders.households import AuthActions, json_object
from testkit.spies import spy


class _Connection:
    def __init__(self, sock: socket.socket, closed: bool = False) -> None:
        self.sock, self.closed = sock, closed

    def fileno(self) -> int:
        return self.sock.fileno()


def test_an_idle_connection_passes_and_one_the_server_spoke_on_or_closed_does_not() -> None:
    ours, server = socket.socketpair()
    with ours, server:
        _alive_at_checkout(_Connection(ours), None, None)  # nothing to read: alive
        with pytest.raises(DisconnectionError):
            _alive_at_checkout(_Connection(ours, closed=True), None, None)
        server.sendall(b"E")  # what a terminating server sends first
        with pytest.raises(DisconnectionError):
            _alive_at_checkout(_Connection(ours), None, None)
    first, second = socket.socketpair()
    with first:
        second.close()  # end of file
        with pytest.raises(DisconnectionError):
            _alive_at_checkout(_Connection(first), None, None)


def _reader(app: Flask, auth: AuthActions) -> tuple[FlaskClient, dict[str, str], str]:
    """A client, the headers of a user and the items path of the household they made."""
    client = app.test_client()
    headers = auth.headers(auth.user("reader@example.test"))
    household = json_object(client.post("/api/households", json={"name": "H"}, headers=headers))
    return client, headers, f"/api/households/{household['id']}/items"


@pytest.mark.postgres_only
def test_connections_the_server_ended_are_replaced_before_a_request_sees_them(
        app: Flask, auth: AuthActions) -> None:
    client, headers, items = _reader(app, auth)
    engine = Database.engine(app)
    pings: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: pings.append(args[2]) if "SELECT 1" in args[2] else None)
    assert client.get(items, headers=headers).status_code == 200
    assert pings == []  # the happy path: no liveness round trip
    assert isinstance(engine.pool, QueuePool)  # PostgreSQL's (app.db.build_engine sizes it)
    pooled = engine.pool.checkedin()
    assert pooled >= 1
    admin = build_engine(str(engine.url.render_as_string(hide_password=False)))
    with admin.connect() as connection:  # not the app's pool: it ends every connection of that
        ended = connection.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    admin.dispose()
    assert ended is not None and ended >= pooled
    time.sleep(0.3)  # the termination notices arrive
    answers = [client.get(items, headers=headers).status_code for _ in range(3)]
    assert answers == [200, 200, 200]


def _prepared(engine: Engine) -> set[str]:
    """The names of the statements prepared on the pool's connection (ended with ``COMMIT``, so
    that this look does not roll anything back itself)."""
    with engine.connect() as connection:
        names = set(connection.exec_driver_sql("SELECT name FROM pg_prepared_statements").scalars())
        connection.commit()
    return names


@pytest.mark.postgres_only
def test_a_request_that_ends_in_an_error_leaves_the_connection_s_prepared_statements(
        app: Flask, auth: AuthActions, monkeypatch: pytest.MonkeyPatch) -> None:
    client, headers, items = _reader(app, auth)
    for _ in range(7):  # psycopg prepares a statement on its sixth run
        assert client.get(items, headers=headers).status_code == 200
    engine = Database.engine(app)
    assert isinstance(engine.pool, QueuePool)
    assert engine.pool.checkedin() == 1  # one thread's requests: one pooled connection, this one
    before = _prepared(engine)
    assert len(before) >= 2  # the membership read and the page of items, at least
    rollbacks: list[object] = []
    monkeypatch.setattr(engine.dialect, "do_rollback",
                        spy(engine.dialect.do_rollback, rollbacks.append))
    missing = client.get(f"{items}/itm_{'0' * 26}", headers=headers)
    monkeypatch.undo()
    assert missing.status_code == 404
    assert len(rollbacks) == 1  # the 404 came after the membership read: its transaction rolled back
    assert _prepared(engine) == before
    assert client.get(items, headers=headers).status_code == 200
    assert _prepared(engine) == before  # the read ran on them again: nothing prepared anew


@pytest.mark.postgres_only
def test_the_rollback_rolls_back_and_a_dead_connection_is_discarded(app: Flask) -> None:
    engine = Database.engine(app)
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE TEMPORARY TABLE rolled (x integer)")
        connection.commit()
        connection.exec_driver_sql("INSERT INTO rolled VALUES (1)")
        connection.rollback()
        assert connection.exec_driver_sql("SELECT count(*) FROM rolled").scalar() == 0
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        admin = build_engine(str(engine.url.render_as_string(hide_password=False)))
        with admin.connect() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        admin.dispose()
        time.sleep(0.3)  # the termination notice arrives
        with pytest.raises(OperationalError) as failed:
            connection.rollback()
        assert failed.value.connection_invalidated  # SQLAlchemy knows it lost the connection
    with engine.connect() as fresh:  # the pool discarded it and opened another
        assert fresh.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid


@pytest.mark.postgres_only
def test_a_simple_statement_fails_as_psycopg_would_fail(app: Flask) -> None:
    """``app.libpq.run_simple`` (the scope's ``BEGIN``, the engine's ``ROLLBACK``): a statement
    the server refuses raises the class of its SQLSTATE, and the connection goes on."""
    engine = Database.engine(app)
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        run_simple(driver, "BEGIN; SELECT 1")
        assert driver.pgconn.transaction_status == pq.TransactionStatus.INTRANS
        with pytest.raises(psycopg.errors.DivisionByZero):
            run_simple(driver, "SELECT 1 / 0")
        assert driver.pgconn.transaction_status == pq.TransactionStatus.INERROR
        engine.dialect.do_rollback(driver)  # the engine's ROLLBACK, through run_simple too
        assert driver.pgconn.transaction_status == pq.TransactionStatus.IDLE
        assert connection.exec_driver_sql("SELECT 2").scalar() == 2
