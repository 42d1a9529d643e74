"""The rate-limit storage: its URI as the ``limiter_storage`` hook accepts it, the ``limits``
storage opened with timeouts, the strategies by name, and the hashing of keys.

``RATELIMIT_STORAGE_URI`` (or ``REDIS_URL``) names one storage per application; the contract
limits and the failed-login throttle share it (``app.ratelimit.fallback``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from limits.storage import Storage, storage_from_string
from limits.strategies import STRATEGIES

from app.config import ConfigurationError, ConfigurationRefused
from app.logs import redactor
from app.ratelimit.memory import SweptMemoryStorage

STRATEGY_ALIASES = {
    "fixed": "fixed-window",
    "moving": "moving-window",
    "sliding": "sliding-window-counter",
    "sliding-window": "sliding-window-counter",
}

# redis-py waits forever by default; a limiter that hangs would hang every request.
REDIS_TIMEOUT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}


def strategy_name(value: str) -> str:
    """The ``limits`` strategy that ``RATELIMIT_STRATEGY`` names (aliases accepted)."""
    name = STRATEGY_ALIASES.get(value.strip().lower(), value.strip().lower())
    if name not in STRATEGIES:
        raise ConfigurationError(
            "RATELIMIT_STRATEGY must be one of " + ", ".join(sorted(STRATEGIES))
        )
    return name


def storage_options(uri: str) -> dict[str, Any]:
    """Constructor options for the storages that read no timeouts from their URI: sentinel (for
    the sentinels and for the master and replicas they name) and cluster. ``redis://`` URIs carry
    theirs in the query (plugins/limiter.py)."""
    scheme = uri.split("://", 1)[0].lower()
    if scheme == "redis+sentinel":
        return {**REDIS_TIMEOUT_OPTIONS, "sentinel_kwargs": dict(REDIS_TIMEOUT_OPTIONS)}
    if scheme == "redis+cluster":
        return dict(REDIS_TIMEOUT_OPTIONS)
    return {}


def open_storage(uri: str) -> Storage:
    """The ``limits`` storage for an accepted URI, with the timeouts above; ``memory://`` without
    its timer thread (app/ratelimit/memory.py)."""
    if uri.split("://", 1)[0].lower() == "memory":
        return SweptMemoryStorage()
    storage = storage_from_string(uri, **storage_options(uri))
    if not isinstance(storage, Storage):  # an async:// storage: this is a WSGI application
        raise ConfigurationError("RATELIMIT_STORAGE_URI names an asynchronous storage")
    return storage


def storage_uri(app: Flask, hook: Callable[..., Any]) -> str:
    """The storage URI as the ``limiter_storage`` hook accepted (and possibly rewrote) it; its
    password, if any, is redacted from the logs from now on."""
    uri = str(app.config.get("RATELIMIT_STORAGE_URI") or "memory://")
    accepted = hook(uri=uri, config=dict(app.config))
    if accepted is None:
        scheme = uri.split("://", 1)[0] if "://" in uri else "(none)"
        raise ConfigurationRefused([f"RATELIMIT_STORAGE_URI has no limiter storage for '{scheme}'"])
    password = urlsplit(str(accepted)).password
    if password:
        redactor.add(password)
    return str(accepted)


def hashed_key(text: str) -> str:
    """A key that may be personal data (an email address), as the storage sees it: the shared
    storage (e.g. Redis) need not learn which accounts were tried."""
    return hashlib.sha256(text.encode()).hexdigest()
