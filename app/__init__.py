"""Hearthgate: the application factory.

``create_app`` is a list of small named steps; nothing happens at import time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask

from app import state
from app.config import (
    ConfigurationRefused,
    load_settings,
    read_settings,
    refused_everywhere,
)
from app.db import db
from app.gateway.errors import secret_store_unavailable
from app.logs import configure_logging, redactor
from app.rowsecurity import BypassingRole
from app.secrets import (
    SECRET_STORE,
    BackendUnavailable,
    SecretAccessDenied,
    SecretNotFound,
    SecretStoreError,
    resolve_secret_settings,
    split_store_url,
)
from app.settings import BY_NAME as SETTINGS_BY_NAME
from app.settings import SETTINGS
from app.state import Slot


def create_app(
    test_config: Mapping[str, Any] | None = None, plugins: Iterable[object] = ()
) -> Flask:
    """The application; ``plugins`` are plugin objects registered after the installed ones
    (tests, ``app.plugin_testing``)."""
    app = Flask(__name__, instance_relative_config=True)
    state.init_app(app)
    load_configuration(app, test_config)
    register_extensions(app)
    register_plugins(app, plugins)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    deny_by_default(app)
    refuse_unsafe_configuration(app)
    return app


def load_configuration(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    """Settings from the environment, then ``test_config`` on top (tests only). The defaults of
    secret settings wait for the secret store (``open_secret_store``)."""
    fallbacks: dict[str, Any] = {}
    app.config.update(load_settings(os.environ, overrides=test_config, secret_fallbacks=fallbacks))
    _STORE_FALLBACKS.set(app, fallbacks)
    app.config["DEBUG"] = bool(app.config["DEBUG"])
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep fields in declared order
    # A path with "//" (an empty or "/"-holding id) is routed as it is, to the JSON 404, never
    # answered with werkzeug's HTML redirect to another path.
    app.url_map.merge_slashes = False
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_JSON"])


def register_extensions(app: Flask) -> None:
    from app.gateway.bodylimit import init_body_limit
    from app.gateway.clientip import init_client_ip
    from app.gateway.headers import init_headers
    from app.gateway.nosession import init_no_session
    from app.readiness import add_check, database_check

    try:
        db.init_app(app)
    except BypassingRole as refused:  # production, a role the policies do not bind
        raise ConfigurationRefused([f"DATABASE_URL: {refused}"]) from None
    add_check(app, "database", database_check)
    init_headers(app)
    init_client_ip(app)
    init_body_limit(app)
    init_no_session(app)


def register_plugins(app: Flask, extra: Iterable[object] = ()) -> None:
    """Plugin manager and the plugins' own settings, then the secret store it provides, then
    what needs secrets: the access tokens, the rate limits (their storage comes from the
    ``limiter_storage`` hook), identity and the audit trail."""
    from app.audit import init_audit
    from app.auth.setup import init_auth
    from app.plugins import PLUGINS, build_manager
    from app.ratelimit.setup import init_rate_limits

    PLUGINS.set(app, build_manager(app.config["HEARTHGATE_PLUGINS"], extra))
    load_plugin_settings(app)
    open_secret_store(app)
    check_configuration(app)
    init_access_tokens(app)
    init_rate_limits(app)
    init_auth(app)
    init_audit(app)
    init_data_encryption(app)


# The defaults of secret settings, from load_configuration until the secret store is open.
_STORE_FALLBACKS: Slot[dict[str, Any]] = Slot("store_fallbacks")


def load_plugin_settings(app: Flask) -> None:
    """The settings plugins declare (``register_settings``), read as the core's are: from the
    environment with their defaults, ``test_config`` on top, secrets left for the store."""
    from app.plugins import PLUGIN_SETTINGS, PLUGINS, plugin_settings

    reserved = {*SETTINGS_BY_NAME, *Flask.default_config}
    declared = plugin_settings(PLUGINS.get(app), reserved)
    settings = [setting for _, setting in declared]
    overrides = {s.name: app.config[s.name] for s in settings if s.name in app.config}
    values = read_settings(settings, app.config["HEARTHGATE_ENV"], os.environ, overrides,
                           _STORE_FALLBACKS.get(app))
    app.config.update({**values, **overrides})
    PLUGIN_SETTINGS.set(app, declared)


def open_secret_store(app: Flask) -> None:
    """The store for ``SECRET_STORE_URL``, then the secret settings read through it: a value
    given in the environment first, then the store, then the development default. Unreachable
    or unreadable refuses the start in every environment: never a fall-back to defaults."""
    from app.plugins import PLUGIN_SETTINGS, hook
    from app.readiness import add_check

    scheme, url, query = split_store_url(app.config["SECRET_STORE_URL"])
    query.setdefault("cache_ttl", [str(app.config["SECRET_STORE_CACHE_TTL_SECONDS"])])
    try:
        store = hook(app).secret_store(scheme=scheme, url=url, query=query, config=dict(app.config))
    except (ValueError, ImportError) as exc:
        raise ConfigurationRefused([f"SECRET_STORE_URL: {exc}"]) from None
    if store is None:
        raise ConfigurationRefused([f"SECRET_STORE_URL has no store for scheme '{scheme}'"])
    store.on_value = redactor.add
    SECRET_STORE.set(app, store)
    add_check(app, "secrets", lambda _app: store.check())
    for unavailable in (BackendUnavailable, SecretNotFound, SecretAccessDenied):
        app.register_error_handler(unavailable, secret_store_unavailable)
    try:
        store.check()
        settings = [*SETTINGS, *(s for _, s in PLUGIN_SETTINGS.get(app))]
        resolve_secret_settings(app.config, store, _STORE_FALLBACKS.pop(app) or {},
                                settings)
    except SecretStoreError as exc:
        raise ConfigurationRefused([f"SECRET_STORE_URL ({store.describe()}): {exc}"]) from None


def init_data_encryption(app: Flask) -> None:
    """The data encryption keys (``app.crypto.keys``): each is masked in every log line, and one
    generated outside production is kept in the secret store (as the audit signing key is)."""
    from app.crypto.keys import KEYS_SETTING, init_keys
    from app.secrets import secret_store

    configured = bool(app.config.get(KEYS_SETTING))
    keys = init_keys(app)
    for key in keys:
        redactor.add(key)
    if not configured:
        store = secret_store(app)
        try:
            store.set(KEYS_SETTING, keys[0])
        except SecretStoreError:
            pass  # a read-only store: the key lives in the configuration only


def check_configuration(app: Flask) -> None:
    """Production refuses every unsafe setting at once; elsewhere a few are refused as well
    (``refused_everywhere``, a rate-limit storage nothing serves) and the rest are logged."""
    from app.startup import configuration_report, limiter_storage_refusals

    problems = configuration_report(app)
    if not problems:
        return
    everywhere = refused_everywhere(app.config) + limiter_storage_refusals(app)
    if app.config["HEARTHGATE_ENV"] == "production":
        raise ConfigurationRefused(problems)
    if everywhere:
        raise ConfigurationRefused(everywhere)
    app.logger.warning("unsafe configuration: %s", "; ".join(problems))


def init_access_tokens(app: Flask) -> None:
    from app.gateway.tokencache import VERIFIED_TOKENS, VerifiedTokens
    from app.gateway.tokens import ACCESS_TOKENS, AccessTokens

    tokens = ACCESS_TOKENS.set(app, AccessTokens(app.config))
    VERIFIED_TOKENS.set(app, VerifiedTokens(tokens, app.config["AUTH_VERIFIED_TOKEN_CACHE_SIZE"]))


def register_blueprints(app: Flask) -> None:
    """Each feature package holds its blueprint (the wardrobe's routes attach to the households
    one, under whose URLs they live); importing a route module attaches its routes to it, so the
    route modules are imported here, before the blueprints are registered."""
    from app import auth, buyflow, households, meta, voice, webhooks
    from app.auth import routes as auth_routes  # noqa: F401
    from app.buyflow import callback_routes  # noqa: F401
    from app.buyflow import routes as buyflow_routes  # noqa: F401
    from app.households import audit_routes, invitation_routes  # noqa: F401
    from app.households import routes as households_routes  # noqa: F401
    from app.meta import routes as meta_routes  # noqa: F401
    from app.plugins import hook
    from app.voice import routes as voice_routes  # noqa: F401
    from app.wardrobe import routes as wardrobe_routes  # noqa: F401
    from app.webhooks import routes as webhooks_routes  # noqa: F401

    app.register_blueprint(meta.bp)
    app.register_blueprint(auth.wellknown)
    for blueprint in (auth.bp, households.bp, buyflow.bp, buyflow.internal, webhooks.bp, voice.bp):
        app.register_blueprint(blueprint, url_prefix="/api")
    for blueprints in hook(app).register_blueprints(app=app):
        for blueprint in blueprints or []:
            app.register_blueprint(blueprint)
    register_pages(app)


def register_pages(app: Flask) -> None:
    """The interactive API docs and the reference SPA, each when its setting is on."""
    if app.config["API_DOCS_ENABLED"]:
        from app.web import docs

        app.register_blueprint(docs.bp)
    if app.config["SPA_ENABLED"]:
        from app.web import spa

        app.register_blueprint(spa.bp)


def register_errorhandlers(app: Flask) -> None:
    from app.gateway.errors import register_error_handlers

    register_error_handlers(app)


def register_commands(app: Flask) -> None:
    """The core's groups, the features' groups, then the plugins' commands."""
    from app.audit.cli import audit_cli
    from app.auth.cli import users_cli
    from app.buyflow.cli import buyflow_cli
    from app.cli import register_cli

    register_cli(app, features=(audit_cli, buyflow_cli))
    app.cli.add_command(users_cli)


def deny_by_default(app: Flask) -> None:
    """Every route is an endpoint contract or on the short list of uncontracted ones; anything
    else, a plugin's blueprints included, refuses the start by name (app/gateway/defaultdeny.py)."""
    from app.gateway.defaultdeny import init_default_deny

    init_default_deny(app)


def refuse_unsafe_configuration(app: Flask) -> None:
    """Production with debug on is refused like any other unsafe setting (checked last, since a
    plugin or blueprint may have changed it)."""
    if app.config["HEARTHGATE_ENV"] == "production" and (app.debug or app.config["DEBUG"]):
        raise ConfigurationRefused(["DEBUG is true"])

