"""``memory://``: an in-process dict seeded from the settings (development and tests only)."""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult

from app.hookspecs import hookimpl
from app.secrets import SecretStore, StoreOptions
from app.settings import SECRET_SETTINGS


class MemoryStore(SecretStore):
    name = "memory"

    def __init__(self, seed: dict[str, str], options: StoreOptions | None = None) -> None:
        super().__init__(options)
        self._values = dict(seed)

    def backend_fetch(self, names: list[str]) -> dict[str, str]:
        return {name: self._values[name] for name in names if name in self._values}

    def backend_store(self, name: str, value: str) -> None:
        self._values[name] = value

    def backend_delete(self, name: str) -> None:
        self._values.pop(name, None)


def _seed(config: dict[str, Any]) -> dict[str, str]:
    seed = {}
    for key in SECRET_SETTINGS:
        value = config.get(key)
        if isinstance(value, list):
            value = " ".join(value)
        if value:
            seed[key] = str(value)
    return seed


@hookimpl
def secret_store(
    scheme: str, url: SplitResult, query: dict[str, list[str]], config: dict[str, Any]
) -> SecretStore | None:
    if scheme != "memory":
        return None
    # Writable by default: it only ever holds development values.
    defaults = {"enable_set": ["true"], "enable_remove": ["true"]}
    options = StoreOptions.from_query({**defaults, **query})
    return MemoryStore(_seed(config), options)
