"""Readiness checks: each component registers a named check that raises when it is down."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask
from sqlalchemy import text

from app.db import Database
from app.state import Slot

log = logging.getLogger(__name__)

Check = Callable[[Flask], None]

CHECKS: Slot[dict[str, Check]] = Slot("readiness")  # by name, in the order they were added


def add_check(app: Flask, name: str, check: Check) -> None:
    CHECKS.setdefault(app, {})[name] = check


def run_checks(app: Flask) -> dict[str, bool]:
    results = {}
    for name, check in (CHECKS.find(app) or {}).items():
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
