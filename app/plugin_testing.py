"""A pytest plugin for plugin authors: an application with your plugin registered, a client, a
genuine access token and the audit events your sinks received, without reading ``tests/``.

Load it from your ``conftest.py``::

    pytest_plugins = ["app.plugin_testing"]

    @pytest.fixture
    def hearthgate_plugins():
        return [my_plugin]          # plugin objects or modules, registered after the installed ones

    @pytest.fixture
    def hearthgate_config():
        return {"MY_SETTING": "x"}  # settings on top of the test defaults (typed values)

Fixtures: ``hearthgate_app`` (a new SQLite database in ``tmp_path``, test settings, the memory
secret store), ``hearthgate_client``, ``hearthgate_token`` (``token(email=...,
permissions=...)`` creates the user and returns an access token) and ``hearthgate_audit_events``
(``events()`` waits until every committed event reached every ``audit_sink`` and returns those
received so far). Like ``app.plugin_api``, the fixtures' names and meaning are kept stable.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from app.audit.sinks import AUDIT_SINKS
from app.auth.permissions import CATALOGUE
from app.db import SESSIONS, Base, Database, utcnow
from app.gateway.tokens import ACCESS_TOKENS
from app.hookspecs import hookimpl
from app.models import User

# What a test application starts with: no timers, no rate limits, the memory secret store.
TEST_SETTINGS: dict[str, Any] = {
    "HEARTHGATE_ENV": "test",
    "SECRET_STORE_URL": "memory://",
    "RATELIMIT_ENABLED": False,
    "LOG_JSON": False,
    "AUDIT_CHECKPOINT_INTERVAL_SECONDS": 0,
    "AUDIT_ANOMALY_ENABLED": False,
}
DRAIN_SECONDS = 10.0


class AuditRecorder:
    """An ``audit_sink`` that keeps what it receives (registered on every test application)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    @hookimpl
    def audit_sink(self, event: dict[str, Any]) -> None:
        self.events.append(event)


def create_tables(app: Flask) -> None:
    """The newest schema in the test database: the models' tables, which the migrations' head
    matches (a test of Hearthgate's own checks that), so an installed package needs no
    migration scripts."""
    Base.metadata.create_all(Database.engine(app))


@pytest.fixture
def hearthgate_plugins() -> list[object]:
    """The plugin objects to register; override it to return yours."""
    return []


@pytest.fixture
def hearthgate_config() -> Mapping[str, Any]:
    """Settings on top of ``TEST_SETTINGS``; override it to set yours."""
    return {}


@pytest.fixture
def hearthgate_audit_recorder() -> AuditRecorder:
    return AuditRecorder()


@pytest.fixture
def hearthgate_app(
    tmp_path: Path,
    hearthgate_plugins: list[object],
    hearthgate_config: Mapping[str, Any],
    hearthgate_audit_recorder: AuditRecorder,
) -> Iterator[Flask]:
    config = {
        **TEST_SETTINGS,
        "AUTH_JWT_SECRET": secrets.token_hex(32),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hearthgate.sqlite3'}",
        **hearthgate_config,
    }
    app = create_app(config, plugins=[*hearthgate_plugins, hearthgate_audit_recorder])
    app.instance_path = str(tmp_path / "instance")
    create_tables(app)
    yield app
    Database.engine(app).dispose()


@pytest.fixture
def hearthgate_client(hearthgate_app: Flask) -> FlaskClient:
    return hearthgate_app.test_client()


@pytest.fixture
def hearthgate_token(hearthgate_app: Flask) -> Callable[..., str]:
    """``token(email="user@example.test", permissions=None)``: the user (created when new, with
    every permission of the catalogue unless ``permissions`` says otherwise) and a genuine
    access token of a session opened now."""

    def token(email: str = "user@example.test", permissions: list[str] | None = None) -> str:
        granted = list(CATALOGUE if permissions is None else permissions)
        with SESSIONS.get(hearthgate_app)() as session:
            user = session.scalars(select(User).where(User.email == email)).one_or_none()
            if user is None:
                user = User(email=email, name=email.split("@")[0], issuer="test", subject=email,
                            permissions=granted, email_verified_at=utcnow())
                session.add(user)
                session.commit()
            claims = {"sub": user.id, "email": user.email, "name": user.name,
                      "permissions": granted, "sid": "plugin-test", "auth_time": int(time.time())}
        minted: str = ACCESS_TOKENS.get(hearthgate_app).mint(claims).token
        return minted

    return token


@pytest.fixture
def hearthgate_audit_events(
    hearthgate_app: Flask, hearthgate_audit_recorder: AuditRecorder
) -> Callable[[], list[dict[str, Any]]]:
    """``events()``: waits until the audit sinks received every committed event (fails the test
    after ``DRAIN_SECONDS``) and returns the events received so far, in commit order."""

    def events() -> list[dict[str, Any]]:
        relay = AUDIT_SINKS.get(hearthgate_app)
        if not relay.drain(DRAIN_SECONDS):
            pytest.fail(f"the audit sinks did not drain within {DRAIN_SECONDS} s")
        return list(hearthgate_audit_recorder.events)

    return events
