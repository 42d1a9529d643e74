"""Fixtures: ``app``, ``client``, ``runner``, the database (SQLite or a real PostgreSQL, chosen by
``HEARTHGATE_TEST_DB``), and ``auth`` for users and their tokens."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import event, text

from app import create_app
from app.db import WRITE_LOCK, Base, Database, build_engine
from app.gateway import fastread
from tests.helpers import AuthActions
from tests.services import Postgres, postgres_server

# leakcheck: the whole-session log capture (autouse); secret_services: OpenBao and moto servers;
# audit_secret_scan: no credential in stored audit details after any test with a database;
# browser_services: the system Chromium through Playwright (the ``browser`` fixture);
# app.plugin_testing: the plugin authors' fixtures (``hearthgate_app``…), tests/test_plugin_hooks.py.
pytest_plugins = (
    "tests.leakcheck", "tests.secret_services", "tests.audit_secret_scan", "tests.limit_services",
    "tests.browser_services", "app.plugin_testing",
)

DB_BACKEND = os.environ.get("HEARTHGATE_TEST_DB", "sqlite")
# The PostgreSQL suite's role: it owns the database and its tables, and is neither a superuser
# nor BYPASSRLS, so the row-level security policies (FORCE) bind every test, as in production.
APP_ROLE = "hearthgate_app"
TEST_JWT_SECRET = "test-jwt-secret-0123456789abcdef-not-for-production"

BASE_CONFIG: dict[str, Any] = {
    "HEARTHGATE_ENV": "test",
    "SECRET_STORE_URL": "memory://",
    "AUTH_JWT_SECRET": TEST_JWT_SECRET,
    "RATELIMIT_ENABLED": False,
    "LOG_JSON": True,
    # No timer thread: one that outlived its test would sign the next test's chains with its key.
    "AUDIT_CHECKPOINT_INTERVAL_SECONDS": 0,
    "AUDIT_ANOMALY_ENABLED": False,  # tests/test_audit_anomaly.py turns it on
}


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from app.cli import MIGRATIONS

    engine = build_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    command.upgrade(config, "heads")
    engine.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of one database's own mechanics are deselected on the other, so that a CI run
    reports no skips: ``postgres_only`` (row-lock races), ``sqlite_only`` (SQLite's write lock)."""
    other = "sqlite_only" if DB_BACKEND == "postgresql" else "postgres_only"
    dropped = [item for item in items if item.get_closest_marker(other)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker(other)]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server for the whole session."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def migrated_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated once per session: a SQLite template file, or a PostgreSQL database
    owned by ``APP_ROLE``, migrated and used as that role."""
    if DB_BACKEND == "postgresql":
        server: Postgres = request.getfixturevalue("postgres")
        server.psql(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
        server.psql(f"CREATE DATABASE hearthgate OWNER {APP_ROLE}")
        url = server.url("hearthgate", user=APP_ROLE)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'template.sqlite3'}"
    migrate(url)
    return url


def truncate_all(url: str) -> None:
    engine = build_engine(url)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def database_url(migrated_database: str, tmp_path: Path) -> Iterator[str]:
    if migrated_database.startswith("sqlite:///"):
        copy = tmp_path / "hearthgate.sqlite3"
        shutil.copyfile(migrated_database.removeprefix("sqlite:///"), copy)
        yield f"sqlite:///{copy}"
    else:
        yield migrated_database
        truncate_all(migrated_database)


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def watch_read_only_transactions(app: Flask, found: list[str]) -> None:
    """Collect every write that follows a read in a transaction begun without the write lock
    (``app.db``): on SQLite such a transaction fails under a concurrent writer instead of
    waiting. A GET that writes must declare ``writes=True``."""
    engine = Database.engine(app)

    def begun(conn: Any) -> None:
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
    """Reads through ``app.gateway.fastread`` reach the driver without SQLAlchemy's events:
    they mark their transaction as having read all the same (once per test process)."""
    if getattr(fastread._execute, "watched", False):
        return
    original = fastread._execute

    def execute(connection: Any, compiled: Any, params: Any) -> Any:
        if connection.in_transaction() and not connection.get_execution_options().get(WRITE_LOCK):
            connection.info["hearthgate.test.read"] = True
        return original(connection, compiled, params)

    execute.watched = True  # type: ignore[attr-defined]
    fastread._execute = execute  # type: ignore[assignment]


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build an app with the test settings plus ``overrides``; engines are disposed afterwards.
    Fails the test when a read-only transaction wrote after reading."""
    built: list[Flask] = []
    writes_after_reads: list[str] = []

    def factory(**overrides: Any) -> Flask:
        config = {**BASE_CONFIG, "DATABASE_URL": database_url, **overrides}
        app = create_app(config)
        app.instance_path = str(tmp_path / "instance")
        watch_read_only_transactions(app, writes_after_reads)
        built.append(app)
        return app

    yield factory
    for app in built:
        Database.engine(app).dispose()
    assert not writes_after_reads, (
        "a transaction begun read-only wrote after reading (declare writes=True on a GET "
        f"that writes, or use a writing session): {writes_after_reads}"
    )


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def auth(app: Flask) -> AuthActions:
    return AuthActions(app)
