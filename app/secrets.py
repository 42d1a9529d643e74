"""The secret-store interface (PURISTA semantics) and the app's access to it.

A store answers ``get(*names) -> dict`` for several names at once; ``set`` and ``remove`` work only
when the store's settings enable them. Errors carry names, never values. Every value a store hands
out is registered with the log redaction filter before the caller sees it.

Concrete stores are plugins (``plugins/secrets/``) found through the ``secret_store`` hook by the
scheme of ``SECRET_STORE_URL``.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.config import BY_NAME, SECRET_SETTINGS, parse_value


class SecretStoreError(Exception):
    """Base of the store's typed errors. Messages name secrets, never their values."""


class SecretNotFound(SecretStoreError):
    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        super().__init__("secret not found: " + ", ".join(self.names))


class OperationDisabled(SecretStoreError):
    def __init__(self, operation: str, store: str) -> None:
        self.operation = operation
        super().__init__(f"{operation} is not enabled on the {store} secret store")


class BackendUnavailable(SecretStoreError):
    def __init__(self, store: str, reason: str = "") -> None:
        super().__init__(f"{store} secret store is unavailable" + (f": {reason}" if reason else ""))


@dataclass(frozen=True)
class StoreOptions:
    """Options shared by every store, read from the URL's query string."""

    enable_set: bool = False
    enable_remove: bool = False
    cache_ttl: float = 0.0

    @classmethod
    def from_query(cls, query: dict[str, list[str]], default_ttl: float = 0.0) -> StoreOptions:
        def flag(name: str) -> bool:
            return query.get(name, ["false"])[-1].lower() in {"1", "true", "yes", "on"}

        ttl = float(query.get("cache_ttl", [default_ttl])[-1])
        return cls(
            enable_set=flag("enable_set"), enable_remove=flag("enable_remove"), cache_ttl=ttl
        )


class SecretStore(ABC):
    """Base class of every store. Subclasses implement ``_fetch`` and, if writable, the rest."""

    name = "secret"

    def __init__(self, options: StoreOptions | None = None) -> None:
        self.options = options or StoreOptions()
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.on_value: Callable[[str], None] = lambda value: None

    # -- the interface --------------------------------------------------------------------
    def get(self, *names: str) -> dict[str, str]:
        """Return ``{name: value}`` for every name; ``SecretNotFound`` names the missing ones."""
        now = time.monotonic()
        found: dict[str, str] = {}
        wanted = []
        with self._lock:
            for name in names:
                cached = self._cache.get(name)
                if cached and cached[1] > now:
                    found[name] = cached[0]
                else:
                    wanted.append(name)
        if wanted:
            fetched = self._fetch(wanted)
            missing = [n for n in wanted if n not in fetched]
            if missing:
                raise SecretNotFound(missing)
            for value in fetched.values():
                self.on_value(value)
            if self.options.cache_ttl > 0:
                with self._lock:
                    for name, value in fetched.items():
                        self._cache[name] = (value, now + self.options.cache_ttl)
            found.update(fetched)
        return {name: found[name] for name in names}

    def set(self, name: str, value: str) -> None:
        if not self.options.enable_set:
            raise OperationDisabled("set", self.name)
        self.on_value(value)
        self._store(name, value)
        if self.options.cache_ttl > 0:
            with self._lock:
                self._cache[name] = (value, time.monotonic() + self.options.cache_ttl)

    def remove(self, name: str) -> None:
        if not self.options.enable_remove:
            raise OperationDisabled("remove", self.name)
        self._delete(name)
        with self._lock:
            self._cache.pop(name, None)

    def check(self) -> None:  # noqa: B027 - optional: in-process stores are always reachable
        """Raise ``BackendUnavailable`` when the backend cannot be reached (readiness)."""

    # -- what a store implements ----------------------------------------------------------
    @abstractmethod
    def _fetch(self, names: list[str]) -> dict[str, str]:
        """Values of the names that exist; missing names are simply absent."""

    def _store(self, name: str, value: str) -> None:
        raise OperationDisabled("set", self.name)

    def _delete(self, name: str) -> None:
        raise OperationDisabled("remove", self.name)


def split_store_url(url: str) -> tuple[str, Any, dict[str, list[str]]]:
    """``(scheme, SplitResult, query)`` of a ``SECRET_STORE_URL``."""
    parts = urlsplit(url)
    return parts.scheme, parts, parse_qs(parts.query)


SECRET_REFERENCE_PREFIX = "secret:"  # noqa: S105 - a syntax marker


def resolve_secret_settings(config: dict[str, Any], store: SecretStore) -> None:
    """Fill the secret settings of ``config`` through ``store``.

    A setting whose value is ``secret:NAME`` is read from the store under ``NAME``; a secret
    setting without a value is looked up in the store under its own name and left unset when the
    store does not have it (the production refusals then name it).
    """
    for key in SECRET_SETTINGS:
        current = config.get(key)
        raw = current if isinstance(current, str) else None
        if isinstance(current, list) and len(current) == 1:
            raw = current[0]
        if raw and raw.startswith(SECRET_REFERENCE_PREFIX):
            name = raw[len(SECRET_REFERENCE_PREFIX):]
            config[key] = parse_value(BY_NAME[key], store.get(name)[name])
        elif current in (None, [], ""):
            try:
                config[key] = parse_value(BY_NAME[key], store.get(key)[key])
            except SecretNotFound:
                pass
        else:
            for value in current if isinstance(current, list) else [current]:
                store.on_value(str(value))
