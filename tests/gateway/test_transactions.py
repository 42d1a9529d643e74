"""Which transactions take SQLite's write lock (``app.db``): the app's sessions do from their
first statement, so concurrent writers queue; GET requests, ``Database.reader`` and the engine's
own connections do not, so reads never wait. The suite's watch (``tests/conftest.py``) catches a
read-only transaction that writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from app import create_app
from app.db import SESSIONS, Database, db
from app.gateway.contracts import endpoint
from app.models import User
from app.rowsecurity import in_flow
from testkit.builders.households import json_object
from testkit.config import BASE_CONFIG
from testkit.database import watch_read_only_transactions

sqlite_only = pytest.mark.sqlite_only  # SQLite's write lock


@contextmanager
def other_connection(database_url: str) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0,
                                 isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def write_lock_is_free(database_url: str) -> bool:
    with other_connection(database_url) as connection:
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        connection.execute("ROLLBACK")
        return True


@sqlite_only
def test_a_session_takes_the_write_lock_with_its_first_statement(
    app: Flask, database_url: str
) -> None:
    with SESSIONS.get(app)() as session:
        session.execute(select(User.id)).all()  # a read, yet the lock is taken
        assert not write_lock_is_free(database_url)
        session.rollback()
        assert write_lock_is_free(database_url)


@sqlite_only
def test_readers_and_the_engine_take_no_lock(app: Flask, database_url: str) -> None:
    with Database.reader(app) as session:
        session.execute(select(User.id)).all()
        assert write_lock_is_free(database_url)
    with Database.engine(app).connect() as connection:
        connection.execute(text("SELECT 1")).all()
        assert write_lock_is_free(database_url)


def probe_app(database_url: str, writes: bool) -> Flask:
    app = create_app({**BASE_CONFIG, "DATABASE_URL": database_url, "AUTH_JWT_SECRET": "x" * 40})

    @app.get("/api/probe")
    @endpoint(auth="public", writes=writes, summary="reads, then writes")
    def probe() -> None:
        # As a registration does (an anonymous route may write only what its flow is admitted
        # to on PostgreSQL: app/rowsecurity.py).
        with in_flow("register"):
            db.session.execute(select(User.id)).all()
            db.session.add(User(email="written-by-a-get@example.test"))
            db.session.flush()

    return app


@pytest.mark.parametrize("writes", [False, True])
def test_a_get_that_writes_must_say_so(database_url: str, writes: bool) -> None:
    found: list[str] = []
    app = probe_app(database_url, writes)
    watch_read_only_transactions(app, found)
    try:
        assert app.test_client().get("/api/probe").status_code == 204
    finally:
        Database.engine(app).dispose()
    if writes:
        assert found == []
    else:
        assert found and found[0].startswith("INSERT INTO users")


@sqlite_only
def test_a_get_reads_while_another_connection_holds_the_write_lock(
    app: Flask, auth: Any, database_url: str
) -> None:
    user = auth.user("reader@example.test")
    headers = {"Authorization": f"Bearer {auth.token(user)}"}
    client = app.test_client()
    with other_connection(database_url) as holder:
        holder.execute("BEGIN IMMEDIATE")
        try:
            r = client.get("/api/households", headers=headers)
        finally:
            holder.execute("ROLLBACK")
    assert r.status_code == 200 and json_object(r)["items"] == []
