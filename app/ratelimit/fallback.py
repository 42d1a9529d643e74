"""One application's rate-limit storage, this process's fallback, and the state between them.

The contract limits (``app.ratelimit.policy``) and the failed-login throttle
(``app.auth.throttle``) count through the same ``StorageWithFallback``: one connection (pool) to
the shared storage per worker, one set of counters in this process, and one suspension. When a
call finds the shared storage failing, every caller counts in this process for
``RETRY_STORAGE_AFTER_SECONDS``; then the next call tries the shared storage again, so a dead
Redis costs one failed round trip per second, not one per request, and both callers recover
together.

While the storage is down a caller either counts in this process with the same limits
(``fail_closed``: sensitive contracts, the login throttle; never open) or is let through
uncounted (``fail_open``: ordinary contracts). Both are counted in ``failures`` and logged as
warnings, at most one line per kind every ``WARN_EVERY_SECONDS``, so an outage under load does
not flood the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flask import Flask
from limits.storage import RedisStorage, Storage
from limits.strategies import STRATEGIES, RateLimiter

from app.ratelimit.memory import SweptMemoryStorage
from app.ratelimit.redis_window import RedisFixedWindow

log = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 30.0
# After a storage error, every caller counts in this process for this long before the shared
# storage is tried again.
RETRY_STORAGE_AFTER_SECONDS = 1.0

FALLBACK = "fallback"  # a call counted in this process while the storage is down
FAIL_OPEN = "fail_open"  # an ordinary call let through unlimited while the storage is down

T = TypeVar("T")


@dataclass(frozen=True)
class Strategy:
    """One ``limits`` strategy on the shared storage, and the same strategy in this process."""

    shared: RateLimiter
    local: RateLimiter


class StorageWithFallback:
    """The shared storage, this process's fallback storage, the suspension and the counters."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.local_storage = SweptMemoryStorage()
        # One script call per fixed-window hit on Redis (app/ratelimit/redis_window.py).
        self.redis_window = (
            RedisFixedWindow(storage) if isinstance(storage, RedisStorage) else None
        )
        self.failures: Counter[str] = Counter()
        self.retry_after = RETRY_STORAGE_AFTER_SECONDS
        self._strategies: dict[str, Strategy] = {}
        self._lock = threading.Lock()
        self._suspended_until = 0.0
        self._last_warned: dict[str, float] = {}

    def strategy(self, name: str) -> Strategy:
        """The ``limits`` strategy ``name`` on both storages (``NotImplementedError`` when the
        shared storage does not support it)."""
        found = self._strategies.get(name)
        if found is None:
            cls = STRATEGIES[name]
            found = Strategy(cls(self.storage), cls(self.local_storage))
            self._strategies[name] = found
        return found

    # -- counting ------------------------------------------------------------------------------

    def fail_closed(self, operation: Callable[[RateLimiter], T], strategy: Strategy) -> T:
        """``operation`` on the shared storage; while that fails, in this process."""
        if not self.suspended():
            try:
                return operation(strategy.shared)
            except Exception as exc:  # noqa: BLE001 - any storage error means "storage down"
                self._storage_failed(exc)
        self._record(FALLBACK)
        return operation(strategy.local)

    def fail_open(self, operation: Callable[[RateLimiter], T], strategy: Strategy) -> T | None:
        """``operation`` on the shared storage; while that fails, ``None`` (nothing counted)."""
        if not self.suspended():
            try:
                return operation(strategy.shared)
            except Exception as exc:  # noqa: BLE001 - any storage error means "storage down"
                self._storage_failed(exc)
        self._record(FAIL_OPEN)
        return None

    def suspended(self) -> bool:
        """Whether calls skip the shared storage (it failed less than ``retry_after`` ago)."""
        return time.monotonic() < self._suspended_until

    def _storage_failed(self, exc: Exception) -> None:
        self._suspended_until = time.monotonic() + self.retry_after
        # The type only: a driver's message may carry a host name or a URI.
        self._warn("storage_error", "rate-limit storage failed: %s", type(exc).__name__)

    def _record(self, event: str) -> None:
        with self._lock:
            self.failures[event] += 1
            total = self.failures[event]
        if event == FALLBACK:
            message = "rate-limit storage unavailable: sensitive call limited per process (%d)"
        else:
            message = "rate-limit storage unavailable: ordinary call not limited (%d)"
        self._warn(event, message, total)

    def _warn(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last_warned.get(kind)
            if last is not None and now - last < WARN_EVERY_SECONDS:
                return
            self._last_warned[kind] = now
        log.warning(message, *args)

    # -- life cycle ----------------------------------------------------------------------------

    def check(self, _app: Flask) -> None:
        """Readiness: the shared storage answers."""
        if not self.storage.check():
            raise ConnectionError("rate-limit storage unreachable")

    def close(self) -> None:
        """Close the shared storage's connections (tests build many applications)."""
        client = getattr(self.storage, "storage", None)
        closer = getattr(client, "close", None)
        if callable(closer):
            closer()
