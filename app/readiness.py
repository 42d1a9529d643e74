"""Readiness checks: each component registers a named check that raises when it is down."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask
from sqlalchemy import text

from app.db import Database

log = logging.getLogger(__name__)

Check = Callable[[Flask], None]


def add_check(app: Flask, name: str, check: Check) -> None:
    app.extensions.setdefault("hearthgate.readiness", {})[name] = check


def run_checks(app: Flask) -> dict[str, bool]:
    results = {}
    for name, check in app.extensions.get("hearthgate.readiness", {}).items():
        try:
            check(app)
            results[name] = True
        except Exception as exc:  # noqa: BLE001 - any failure means "down"
            log.warning("readiness check %s failed: %s", name, type(exc).__name__)
            results[name] = False
    return results


def database_check(app: Flask) -> None:
    with Database.engine(app).connect() as connection:
        connection.execute(text("SELECT 1"))
