"""What the start refuses, and ``flask security check`` reports: every unsafe setting, the
plugins' start-up checks and a rate-limit storage nothing serves."""

from __future__ import annotations

from flask import Flask

from app.config import ConfigurationRefused, configuration_problems
from app.plugins import hook
from app.ratelimit.storage import storage_uri


def configuration_report(app: Flask) -> list[str]:
    """Every unsafe setting of ``app``: the rules of ``app.config``, the plugins' start-up
    checks and the rate-limit storage. The start refuses them (production) and ``flask security
    check`` prints them."""
    extra = [m for found in hook(app).startup_checks(config=dict(app.config)) for m in found or []]
    return configuration_problems(app.config, [*extra, *limiter_storage_refusals(app)])


def limiter_storage_refusals(app: Flask) -> list[str]:
    """What the rate-limit set-up would refuse about its storage, asked before it runs."""
    if not app.config["RATELIMIT_ENABLED"]:
        return []
    try:
        storage_uri(app, hook(app).limiter_storage)
    except ConfigurationRefused as refused:
        return refused.problems
    return []
