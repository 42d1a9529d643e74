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
from sqlalchemy import text

from app import create_app
from app.db import Base, Database, build_engine
from tests.helpers import AuthActions
from tests.services import Postgres, postgres_server

# leakcheck: the whole-session log capture (autouse); secret_services: OpenBao and moto servers;
# audit_secret_scan: no credential in stored audit details after any test with a database.
pytest_plugins = (
    "tests.leakcheck", "tests.secret_services", "tests.audit_secret_scan", "tests.limit_services",
)

DB_BACKEND = os.environ.get("HEARTHGATE_TEST_DB", "sqlite")
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
    """Races are proved on PostgreSQL only: on SQLite those tests are deselected, so that a CI
    run reports no skips (SQLite serializes writers and would hide what they look for)."""
    if DB_BACKEND == "postgresql":
        return
    dropped = [item for item in items if item.get_closest_marker("postgres_only")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("postgres_only")]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server for the whole session."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def migrated_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated once per session: a SQLite template file, or a PostgreSQL database."""
    if DB_BACKEND == "postgresql":
        server: Postgres = request.getfixturevalue("postgres")
        server.psql("CREATE DATABASE hearthgate")
        url = server.url("hearthgate")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'template.sqlite3'}"
    migrate(url)
    return url


def _truncate_all(url: str) -> None:
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
        _truncate_all(migrated_database)


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build an app with the test settings plus ``overrides``; engines are disposed afterwards."""
    built: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        config = {**BASE_CONFIG, "DATABASE_URL": database_url, **overrides}
        app = create_app(config)
        app.instance_path = str(tmp_path / "instance")
        built.append(app)
        return app

    yield factory
    for app in built:
        Database.engine(app).dispose()


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
