"""The secret-store interface (PURISTA semantics) and the app's access to it.

A store answers ``get(*names) -> dict`` for several names at once; ``set`` and ``remove`` work only
when the store's settings enable them. Errors carry names, never values. Every value a store hands
out is registered with the log redaction filter before the caller sees it.

Household secrets live under ``tenant:<householdId>:<name>`` and are reached only through
``store.for_tenant(household_id)``: the root store refuses names containing ``:``, so a caller can
neither forget the prefix nor build another household's name from user input.

Concrete stores are plugins (``plugins/secrets/``) found through the ``secret_store`` hook by the
scheme of ``SECRET_STORE_URL``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask

from app.config import parse_value
from app.settings import SETTINGS, Setting
from app.state import Slot

log = logging.getLogger(__name__)

TENANT_PREFIX = "tenant"
# Plain names: no ':' (reserved for the tenant prefix), no '/' (a path separator in every backend
# that has paths), no leading '.' (hidden files, '..'). Household ids follow app.db.new_id.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HOUSEHOLD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


# While the backend is down, the last good values are retried this often (seconds).
STALE_RETRY_SECONDS = 5.0

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
        self.store = store
        super().__init__(f"{store} secret store is unavailable" + (f": {reason}" if reason else ""))


class SecretAccessDenied(SecretStoreError):
    """The backend refused these names to the store's credentials (e.g. a Vault policy)."""

    def __init__(self, names: Iterable[str], store: str) -> None:
        self.names = tuple(names)
        super().__init__(f"{store} secret store denied access to: " + ", ".join(self.names))


class InvalidSecretName(SecretStoreError, ValueError):
    def __init__(self, name: str) -> None:
        # The name is user-supplied at times: show its shape, not all of it.
        super().__init__(f"invalid secret name {name[:40]!r}")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidSecretName(str(name))
    return name


def check_household_id(household_id: str) -> str:
    if not isinstance(household_id, str) or not _HOUSEHOLD_ID.fullmatch(household_id):
        raise InvalidSecretName(f"household {household_id}")
    return household_id


def tenant_name(household_id: str, name: str) -> str:
    """``tenant:<householdId>:<name>``; neither part may contain ``:``, so the split is unique."""
    return f"{TENANT_PREFIX}:{check_household_id(household_id)}:{check_name(name)}"


def backend_path(name: str) -> str:
    """The name as a path below a store's prefix: ``tenant:H:N`` becomes ``tenant/H/N`` (so that
    Vault policies and IAM conditions can grant one household's subtree); plain names are kept."""
    if name.startswith(TENANT_PREFIX + ":"):
        _, household_id, short = name.split(":", 2)
        return f"{TENANT_PREFIX}/{household_id}/{short}"
    return name


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
        if ttl < 0:
            raise ValueError("cache_ttl must not be negative")
        return cls(
            enable_set=flag("enable_set"), enable_remove=flag("enable_remove"), cache_ttl=ttl
        )


@dataclass
class _Cached:
    value: str
    expires: float


class SecretStore(ABC):
    """Base class of every store, and a public API for plugins (``app.plugin_api``).

    Callers use ``get``, ``set``, ``remove``, ``for_tenant``, ``check`` and ``describe``. A store
    subclasses this class, sets ``name`` (its scheme, for messages) and implements the backend
    methods: ``backend_fetch`` always, ``backend_store`` and ``backend_delete`` when it can write,
    ``check`` and ``describe`` when it has a remote backend. The base does the rest, so a store
    does none of it:

    - it checks every name (``check_name``; household names arrive whole, ``tenant:<id>:<name>``:
      map them with ``backend_path``) before a backend method sees it;
    - it enforces ``enable_set`` and ``enable_remove`` (``self.options``): ``set``/``remove``
      raise ``OperationDisabled`` without calling the backend unless the store's URL enables them;
    - it caches for ``options.cache_ttl`` seconds and serves the last good values while the
      backend is down. The core adds ``cache_ttl`` (``SECRET_STORE_CACHE_TTL_SECONDS``) to the
      URL's query before the ``secret_store`` hook is called, unless the URL gives it: build the
      options with ``StoreOptions.from_query(query)`` to honour all three options;
    - it hands every value to ``on_value`` (the log redaction filter) before a caller sees it.

    Backend methods raise ``BackendUnavailable`` (or ``SecretAccessDenied``) for anything but a
    missing secret, and never put a value in a message. Outside production the core generates an
    ``AUDIT_SIGNING_KEY`` when none is set and writes it with ``set``: a store whose URL allows
    ``set`` keeps it across restarts (the memory store allows it; a read-only store leaves it in
    the process's configuration only).
    """

    name = "secret"

    def __init__(self, options: StoreOptions | None = None) -> None:
        self.options = options or StoreOptions()
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self.on_value: Callable[[str], None] = lambda value: None

    # -- the interface --------------------------------------------------------------------
    def get(self, *names: str) -> dict[str, str]:
        """Return ``{name: value}`` for every name; ``SecretNotFound`` names the missing ones."""
        return self._get([check_name(n) for n in names])

    def set(self, name: str, value: str) -> None:
        self._set(check_name(name), value)

    def remove(self, name: str) -> None:
        self._remove(check_name(name))

    def for_tenant(self, household_id: str) -> TenantSecrets:
        """The household's secrets: every name is prefixed with ``tenant:<household_id>:``."""
        return TenantSecrets(self, household_id)

    def check(self) -> None:  # noqa: B027 - optional: in-process stores are always reachable
        """Raise ``BackendUnavailable`` when the backend cannot be reached (readiness)."""

    def describe(self) -> str:
        """Where the store is, for operators (no credentials, no values)."""
        return self.name

    # -- shared mechanics (full names) ----------------------------------------------------
    def _get(self, names: list[str]) -> dict[str, str]:
        now = time.monotonic()
        found: dict[str, str] = {}
        stale: dict[str, str] = {}
        wanted = []
        with self._lock:
            for name in names:
                cached = self._cache.get(name)
                if cached is not None and cached.expires > now:
                    found[name] = cached.value
                else:
                    if cached is not None:
                        stale[name] = cached.value
                    if name not in wanted:
                        wanted.append(name)
        if wanted:
            try:
                fetched = self.backend_fetch(wanted)
            except BackendUnavailable:
                if not all(name in stale for name in wanted):
                    raise
                # Rotation must not turn a backend outage into an outage of ours: the last good
                # values keep serving until the backend answers again.
                log.warning(
                    "%s secret store unavailable while refreshing %s; serving the last good values",
                    self.name, ", ".join(wanted),
                )
                fetched = {name: stale[name] for name in wanted}
                # ... and are kept a few seconds more, so that an outage does not cost every
                # request a backend timeout.
                self._remember(fetched, now, min(self.options.cache_ttl, STALE_RETRY_SECONDS))
            else:
                missing = [n for n in wanted if n not in fetched]
                if missing:
                    with self._lock:
                        for name in missing:
                            self._cache.pop(name, None)
                    raise SecretNotFound(missing)
                for value in fetched.values():
                    self.on_value(value)
                self._remember(fetched, now)
            found.update(fetched)
        return {name: found[name] for name in names}

    def _set(self, name: str, value: str) -> None:
        if not self.options.enable_set:
            raise OperationDisabled("set", self.name)
        self.on_value(value)
        self.backend_store(name, value)
        self._remember({name: value}, time.monotonic())

    def _remove(self, name: str) -> None:
        if not self.options.enable_remove:
            raise OperationDisabled("remove", self.name)
        try:
            self.backend_delete(name)
        finally:
            with self._lock:
                self._cache.pop(name, None)

    def _remember(self, values: dict[str, str], now: float, ttl: float | None = None) -> None:
        ttl = self.options.cache_ttl if ttl is None else ttl
        if ttl > 0:
            with self._lock:
                for name, value in values.items():
                    self._cache[name] = _Cached(value, now + ttl)

    # -- what a store implements (called by the base only, with checked full names) -------
    @abstractmethod
    def backend_fetch(self, names: list[str]) -> dict[str, str]:
        """Values of the names that exist; missing names are simply absent (the base raises
        ``SecretNotFound``)."""

    def backend_store(self, name: str, value: str) -> None:
        """Write ``value`` under ``name`` (called only when ``enable_set`` is on). Read-only
        stores keep this default, which refuses."""
        raise OperationDisabled("set", self.name)

    def backend_delete(self, name: str) -> None:
        """Delete ``name``; deleting a missing name is not an error (called only when
        ``enable_remove`` is on). Read-only stores keep this default, which refuses."""
        raise OperationDisabled("remove", self.name)


SECRET_STORE: Slot[SecretStore] = Slot("secrets")  # the store of SECRET_STORE_URL


def secret_store(app: Flask | None = None) -> SecretStore:
    """The application's secret store (``SECRET_STORE_URL``); the current app's by default."""
    return SECRET_STORE.get(app)


class TenantSecrets:
    """A household's view of a store: ``get``/``set``/``remove`` take short names and prefix
    them; results are keyed by the short names again."""

    def __init__(self, store: SecretStore, household_id: str) -> None:
        self.store = store
        self.household_id = check_household_id(household_id)

    def name_of(self, name: str) -> str:
        return tenant_name(self.household_id, name)

    def get(self, *names: str) -> dict[str, str]:
        full = {name: self.name_of(name) for name in names}
        try:
            values = self.store._get(list(full.values()))
        except SecretNotFound as exc:
            short = {v: k for k, v in full.items()}
            raise SecretNotFound(short[n] for n in exc.names) from None
        return {name: values[full_name] for name, full_name in full.items()}

    def set(self, name: str, value: str) -> None:
        self.store._set(self.name_of(name), value)

    def remove(self, name: str) -> None:
        self.store._remove(self.name_of(name))


def split_store_url(url: str) -> tuple[str, Any, dict[str, list[str]]]:
    """``(scheme, SplitResult, query)`` of a ``SECRET_STORE_URL``."""
    parts = urlsplit(url)
    return parts.scheme, parts, parse_qs(parts.query)


SECRET_REFERENCE_PREFIX = "secret:"  # noqa: S105 - a syntax marker


def resolve_secret_settings(
    config: dict[str, Any], store: SecretStore, fallbacks: Mapping[str, Any] | None = None,
    settings: Iterable[Setting] = SETTINGS,
) -> None:
    """Fill the secret settings of ``config`` (those among ``settings``: the core's, and the
    plugins' own) through ``store``.

    A setting whose value is ``secret:NAME`` is read from the store under ``NAME``; a secret
    setting without a value is looked up in the store under its own name, and when the store does
    not have it either, takes its value from ``fallbacks`` (the development defaults) or stays
    unset (the production refusals then name it). So the order is: the environment, the store,
    the default.
    """
    fallbacks = fallbacks or {}
    by_name = {setting.name: setting for setting in settings if setting.secret}
    for key in by_name:
        current = config.get(key)
        raw = current if isinstance(current, str) else None
        if isinstance(current, list) and len(current) == 1:
            raw = current[0]
        if raw and raw.startswith(SECRET_REFERENCE_PREFIX):
            name = raw[len(SECRET_REFERENCE_PREFIX):]
            config[key] = parse_value(by_name[key], store.get(name)[name])
        elif current in (None, [], ""):
            try:
                config[key] = parse_value(by_name[key], store.get(key)[key])
            except SecretNotFound:
                if key in fallbacks:
                    default = fallbacks[key]
                    config[key] = list(default) if isinstance(default, list) else default
                    for value in default if isinstance(default, list) else [default]:
                        store.on_value(str(value))
        else:
            for value in current if isinstance(current, list) else [current]:
                store.on_value(str(value))
