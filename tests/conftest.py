"""Fixtures every folder uses: the database (SQLite or a real PostgreSQL, chosen by
``HEARTHGATE_TEST_DB``), ``make_app``, ``app``, ``client``, ``runner``, ``auth``, a buy-flow
``family``, and the session's real servers that several folders share (PostgreSQL, Redis,
OpenBao, moto, an OpenID provider of one's own). A folder's own fixtures are in its conftest.py.

Modules choose the settings of ``app`` and ``family`` with ``pytest.mark.settings(**overrides)``
and the extra blueprints of ``app`` with ``pytest.mark.blueprints(*blueprints)``."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app import create_app
from app.cli import migrate
from app.db import Database
from testkit.builders.families import Family, build_family
from testkit.builders.households import AuthActions
from testkit.config import APP_ROLE, BASE_CONFIG, DB_BACKEND
from testkit.database import truncate_all, watch_read_only_transactions
from testkit.servers.oidc import OidcProvider, SecretWatch, start_provider
from testkit.servers.postgres import Postgres, postgres_server
from testkit.servers.ratelimit import Redis, redis_server
from testkit.servers.secrets import Moto, OpenBao, moto_server, openbao_server
from testkit.typing import MakeApp

# log_leaks: the whole-session log capture (autouse); audit_leaks: no credential in stored audit
# details after any test with a database; app.plugin_testing: the plugin authors' fixtures
# (``hearthgate_app``…), tests/test_plugin_hooks.py.
pytest_plugins = ("testkit.checks.log_leaks", "testkit.checks.audit_leaks", "app.plugin_testing")


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
        url = server.owned_database("hearthgate", APP_ROLE)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'template.sqlite3'}"
    migrate(url)
    return url


@pytest.fixture
def database_url(migrated_database: str, tmp_path: Path) -> Iterator[str]:
    if migrated_database.startswith("sqlite:///"):
        copy = tmp_path / "hearthgate.sqlite3"
        shutil.copyfile(migrated_database.removeprefix("sqlite:///"), copy)
        yield f"sqlite:///{copy}"
    else:
        yield migrated_database
        truncate_all(migrated_database)


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[MakeApp]:
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


def marked_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The overrides of the closest ``settings`` marker, none without one."""
    marker = request.node.get_closest_marker("settings")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture
def app(make_app: MakeApp, request: pytest.FixtureRequest) -> Flask:
    built = make_app(**marked_settings(request))
    marker = request.node.get_closest_marker("blueprints")
    blueprints: tuple[Blueprint, ...] = marker.args if marker else ()
    for blueprint in blueprints:
        built.register_blueprint(blueprint)
    return built


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def auth(app: Flask) -> AuthActions:
    return AuthActions(app)


@pytest.fixture
def family(make_app: MakeApp, request: pytest.FixtureRequest) -> Family:
    """A household with its members, on an app with the module's ``settings``."""
    return build_family(make_app(**marked_settings(request)))


@pytest.fixture
def redis() -> Iterator[Redis]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def openbao() -> Iterator[OpenBao]:
    with openbao_server() as server:
        yield server


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    with moto_server() as server:
        yield server


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto accepts any credentials; boto3 needs some, and never the developer's real ones."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def own_provider(tmp_path: Path) -> Iterator[OidcProvider]:
    """An OpenID provider for this test alone, free to rotate keys or be stopped."""
    provider = start_provider(tmp_path)
    yield provider
    provider.stop()


@pytest.fixture
def secret_watch(caplog: pytest.LogCaptureFixture) -> Iterator[SecretWatch]:
    """Fails the test when a value added to the watch appears in its log output."""
    caplog.set_level(logging.DEBUG)
    watch = SecretWatch()
    yield watch
    text = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''}"
        for phase in ("setup", "call") for r in caplog.get_records(phase)
    )
    leaked = [v[:12] + "…" for v in watch.values if v in text]
    assert not leaked, f"secret values in log output: {leaked}"
