"""Identity's start-up: the login providers of the plugins, the failed-login throttle and the
development user. Runs after the plugins and secrets are loaded (see ``create_app``)."""

from __future__ import annotations

from flask import Flask

from app.auth.dev import init_development_auth
from app.auth.providers import LOGIN_PROVIDERS
from app.auth.throttle import init_throttle
from app.plugins import hook


def init_auth(app: Flask) -> None:
    """Login providers from the plugins, the failed-login throttle and the development user."""
    providers = [p for found in hook(app).login_providers(app=app) for p in found or []]
    LOGIN_PROVIDERS.set(app, providers)
    init_throttle(app)
    init_development_auth(app)
