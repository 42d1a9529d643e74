"""Registers the development helpers through the plugin hooks, like any optional feature."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import click
from flask import Blueprint, Flask

from app.hookspecs import hookimpl

log = logging.getLogger(__name__)


def demo_helpers_wanted(config: Mapping[str, Any]) -> bool:
    return bool(config.get("DEMO_HELPERS_ENABLED")) and config.get("HEARTHGATE_ENV") != "production"


@hookimpl
def register_blueprints(app: Flask) -> list[Blueprint] | None:
    if not demo_helpers_wanted(app.config):
        return None
    from app.devtools.routes import bp

    log.warning("demo helpers are on: /api/dev/* simulates the orchestrator")
    return [bp]


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``flask demo seed``; the command itself refuses to run in production."""
    from app.devtools.seed import demo_cli

    cli.add_command(demo_cli)
