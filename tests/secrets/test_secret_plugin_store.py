"""A third party serves a new SECRET_STORE_URL scheme through the same ``secret_store`` hook."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import SplitResult

import pluggy
import pytest
from flask import Flask

import app.plugins
from app.hookspecs import hookimpl
from app.logs import redactor
from app.secrets import SECRET_STORE, SecretStore, StoreOptions
from testkit.checks.log_leaks import remember

PLUGIN_JWT = "plugin-store-jwt-secret-0123456789abcdef"
PLUGIN_TOKEN = "plugin-store-buyflow-token-77c1"
remember(PLUGIN_JWT, PLUGIN_TOKEN)


class VaultOfDicts(SecretStore):
    name = "dicts"

    def __init__(self, values: dict[str, str], options: StoreOptions) -> None:
        super().__init__(options)
        self.values = values
        self.fetched: list[list[str]] = []

    def backend_fetch(self, names: list[str]) -> dict[str, str]:
        self.fetched.append(list(names))
        return {n: self.values[n] for n in names if n in self.values}


class DictsPlugin:
    """What a third-party package would expose through its ``hearthgate`` entry point."""

    def __init__(self) -> None:
        self.values = {"AUTH_JWT_SECRET": PLUGIN_JWT, "buyflow": PLUGIN_TOKEN}
        self.stores: list[VaultOfDicts] = []

    @hookimpl
    def secret_store(
        self, scheme: str, url: SplitResult, query: dict[str, list[str]], config: dict[str, Any]
    ) -> SecretStore | None:
        if scheme != "dicts":
            return None
        store = VaultOfDicts(self.values, StoreOptions.from_query(query))
        self.stores.append(store)
        return store


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> DictsPlugin:
    plugin = DictsPlugin()
    build = app.plugins.build_manager

    def build_with_plugin(
        allow: list[str] | None = None, extra: Iterable[object] = ()
    ) -> pluggy.PluginManager:
        pm = build(allow, extra)
        pm.register(plugin, name="dicts-plugin")
        return pm

    monkeypatch.setattr(app.plugins, "build_manager", build_with_plugin)
    return plugin


def test_a_plugin_store_serves_settings_and_its_values_are_redacted(
    plugin: DictsPlugin, make_app: Callable[..., Flask]
) -> None:
    application = make_app(SECRET_STORE_URL="dicts://?cache_ttl=60", AUTH_JWT_SECRET=None,
                           BUYFLOW_INTERNAL_TOKEN=["secret:buyflow"])
    store = SECRET_STORE.get(application)
    assert store is plugin.stores[0]
    assert application.config["AUTH_JWT_SECRET"] == PLUGIN_JWT
    assert application.config["BUYFLOW_INTERNAL_TOKEN"] == [PLUGIN_TOKEN]
    assert redactor.redact(f"token={PLUGIN_TOKEN}") == "token=[REDACTED]"
    before = len(store.fetched)
    assert store.get("buyflow") == {"buyflow": PLUGIN_TOKEN}  # served from the cache
    assert len(store.fetched) == before
    listed = application.test_cli_runner().invoke(args=["plugins", "list"])
    assert any(line.startswith("dicts-plugin ") and "secret_store" in line
               for line in listed.output.splitlines())


def test_built_in_schemes_are_unaffected_by_the_plugin(
    plugin: DictsPlugin, make_app: Callable[..., Flask]
) -> None:
    application = make_app(SECRET_STORE_URL="memory://")
    assert SECRET_STORE.get(application).name == "memory"
    assert plugin.stores == []
