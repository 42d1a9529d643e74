"""The plugin manager: built-in plugins and installed ones, through the same hooks.

Built-ins are modules of ``plugins/`` registered by name; third-party plugins are entry points of
the ``hearthgate`` group. ``HEARTHGATE_PLUGINS`` is an allow-list of entry-point names: when set,
installed plugins not named there are not loaded (the built-ins always are). A name there that
no installed plugin has, and an entry-point name that two installed plugins share, are logged as
warnings: the plugin meant is not loaded.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from app import hookspecs
from app.config import ConfigurationRefused
from app.settings import Setting
from app.state import Slot

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hearthgate"
# The plugins' own settings, ``[(plugin name, Setting)]`` (set by the factory).
PLUGIN_SETTINGS: Slot[list[tuple[str, Setting]]] = Slot("plugin_settings")

PLUGINS: Slot[Manager] = Slot("plugins")  # built-ins and the allowed installed ones

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
    distribution: str  # the installed distribution's name (``hearthgate`` for the built-ins)


class Manager(pluggy.PluginManager):
    """The plugin manager, which also remembers the installed plugins the allow-list left out as
    ``(entry-point name, distribution name)``, for ``flask plugins list``."""

    def __init__(self) -> None:
        super().__init__("hearthgate")
        self.excluded: list[tuple[str, str]] = []


def build_manager(allow: list[str] | None = None, extra: Iterable[object] = ()) -> Manager:
    """Built-ins, the installed plugins ``allow`` lets in (all when it is ``None``), then the
    objects of ``extra`` (plugins registered by a test, ``app.plugin_testing``)."""
    pm = Manager()
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    installed: set[str] = set()
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        installed.add(entry_point.name)
        dist_name = _dist_name(entry_point.dist)
        if allow is not None and entry_point.name not in allow:
            log.info("plugin %s is installed but not in HEARTHGATE_PLUGINS", entry_point.name)
            pm.excluded.append((entry_point.name, dist_name))
            continue
        if pm.get_plugin(entry_point.name) is not None:
            log.warning("plugin %s of %s is not loaded: another installed plugin has that "
                        "entry-point name", entry_point.name, dist_name)
            continue
        plugin = entry_point.load()
        pm.register(plugin, name=entry_point.name)
        dist = entry_point.dist
        pm._plugin_distinfo.append((plugin, dist))  # type: ignore[arg-type]  # as pluggy does
    for name in sorted(set(allow or ()) - installed):
        log.warning("HEARTHGATE_PLUGINS names %s, but no installed plugin has that entry-point "
                    "name", name)
    for index, plugin in enumerate(extra):
        if not pm.is_registered(plugin):  # an installed plugin a test registers as well
            label = getattr(plugin, "__name__", type(plugin).__name__)
            pm.register(plugin, name=f"extra-{index}-{label}")
    pm.check_pending()  # a misspelled hook implementation fails the start
    return pm


def _dist_name(dist: Any) -> str:  # a Distribution, or pluggy's facade of one
    return str(dist.metadata["Name"]) if dist is not None else "unknown"


def describe(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Name, version, distribution and implemented hooks of every registered plugin."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    own_version = _own_version()
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or []))
        builtin = name in BUILTIN_PLUGINS
        dist = dists.get(id(plugin))
        infos.append(PluginInfo(
            name=name, hooks=hooks, builtin=builtin,
            version=own_version if builtin else (dist.version if dist else "unknown"),
            distribution="hearthgate" if builtin else _dist_name(dist),
        ))
    return sorted(infos, key=lambda info: (not info.builtin, info.name))


_SETTING_NAME = re.compile(r"[A-Z][A-Z0-9_]{1,63}")


def plugin_settings(pm: pluggy.PluginManager, reserved: Iterable[str]) -> list[tuple[str, Setting]]:
    """Every plugin's own settings (``register_settings``) as ``(plugin name, setting)``. A name
    that is not an upper-case identifier, or that the core (``reserved``) or another plugin
    already declares, refuses the start naming both."""
    owners = {name: "the core" for name in reserved}
    found: list[tuple[str, Setting]] = []
    for impl in pm.hook.register_settings.get_hookimpls():  # in registration order
        for setting in call_impl(impl) or []:
            if not _SETTING_NAME.fullmatch(setting.name):
                raise ConfigurationRefused([f"plugin {impl.plugin_name} declares the setting "
                                            f"{setting.name[:64]!r}: not an upper-case name"])
            if setting.name in owners:
                raise ConfigurationRefused([f"plugin {impl.plugin_name} declares the setting "
                                            f"{setting.name}, already declared by "
                                            f"{owners[setting.name]}"])
            owners[setting.name] = f"plugin {impl.plugin_name}"
            found.append((impl.plugin_name, setting))
    return found


def _own_version() -> str:
    try:
        return metadata.version("hearthgate")
    except metadata.PackageNotFoundError:
        return "source"


def call_impl(impl: pluggy.HookImpl, **arguments: Any) -> Any:
    """Call one plugin's implementation with the arguments it names, as the hook relay does (an
    implementation may take fewer than its specification): for callers that must call each
    plugin on its own, so that one that fails does not keep the others from their turn."""
    return impl.function(**{name: arguments[name] for name in impl.argnames})


def hook(app: Any) -> Any:
    """The ``hook`` relay of an application's plugin manager."""
    return PLUGINS.get(app).hook
