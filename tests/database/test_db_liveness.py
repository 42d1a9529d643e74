"""A pooled PostgreSQL connection is tested for liveness at checkout without a round trip.

An idle connection between transactions has nothing to read: a readable socket (the server's
termination notice, or end of file) or a closed connection means the server went away, and the
pool replaces it instead of handing it to a request (which would then fail). The restart under
load itself is proven by ``tests/test_load_faults.py``.
"""

from __future__ import annotations

import socket
import time

import pytest
from flask import Flask
from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import QueuePool

from app.db import Database, _alive_at_checkout, build_engine
from testkit.builders.households import AuthActions


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


@pytest.mark.postgres_only
def test_connections_the_server_ended_are_replaced_before_a_request_sees_them(
        app: Flask, auth: AuthActions) -> None:
    user = auth.user("reader@example.test")
    client = app.test_client()
    headers = auth.headers(user)
    household = client.post("/api/households", json={"name": "H"}, headers=headers).get_json()["id"]
    engine = Database.engine(app)
    pings: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: pings.append(args[2]) if "SELECT 1" in args[2] else None)
    assert client.get(f"/api/households/{household}/items", headers=headers).status_code == 200
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
    answers = [client.get(f"/api/households/{household}/items", headers=headers).status_code
               for _ in range(3)]
    assert answers == [200, 200, 200]
