"""The plugin manager: built-in plugins and installed ones, through the same hooks.

Built-ins are modules of ``plugins/`` registered by name; third-party plugins are entry points of
the ``hearthgate`` group. ``HEARTHGATE_PLUGINS`` is an allow-list of entry-point names: when set,
installed plugins not named there are not loaded (the built-ins always are).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from app import hookspecs
from app.state import Slot

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hearthgate"

PLUGINS: Slot[pluggy.PluginManager] = Slot("plugins")  # built-ins and the allowed installed ones

BUILTIN_PLUGINS: tuple[str, ...] = (
    "plugins.secrets.memory",
    "plugins.secrets.env",
    "plugins.secrets.file",
    "plugins.secrets.vault",
    "plugins.secrets.aws",
    "plugins.hyperbeam",
    "plugins.oidc",
    "plugins.passwords",
    "plugins.limiter",
    "app.devtools.plugin",
)


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool


def build_manager(allow: list[str] | None = None) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("hearthgate")
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allow is not None and entry_point.name not in allow:
            log.info("plugin %s is installed but not in HEARTHGATE_PLUGINS", entry_point.name)
            continue
        if pm.get_plugin(entry_point.name) is not None:
            continue
        plugin = entry_point.load()
        pm.register(plugin, name=entry_point.name)
        dist = entry_point.dist
        pm._plugin_distinfo.append((plugin, dist))  # type: ignore[arg-type]  # as pluggy does
    pm.check_pending()  # a misspelled hook implementation fails the start
    return pm


def describe(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Name, version and implemented hooks of every registered plugin."""
    versions = {id(plugin): dist.version for plugin, dist in pm.list_plugin_distinfo()}
    own_version = _own_version()
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or []))
        builtin = name in BUILTIN_PLUGINS
        version = own_version if builtin else versions.get(id(plugin), "unknown")
        infos.append(PluginInfo(name=name, version=version, hooks=hooks, builtin=builtin))
    return sorted(infos, key=lambda info: (not info.builtin, info.name))


def _own_version() -> str:
    try:
        return metadata.version("hearthgate")
    except metadata.PackageNotFoundError:
        return "source"


def hook(app: Any) -> Any:
    """The ``hook`` relay of an application's plugin manager."""
    return PLUGINS.get(app).hook
