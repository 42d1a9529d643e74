"""Failed-login throttling per account and per client IP, on the ``limits`` library.

It opens the rate limiter's storage the same way (``app.gateway.limits.storage_uri`` and
``open_storage``: the ``limiter_storage`` hook, its timeouts, password redaction) but is not
switched off by ``RATELIMIT_ENABLED``: it defends against password guessing, not load. Only
failures count; a success clears the account's counter (never the IP's).

The two budgets refuse differently, because an address is shared (a NAT, a proxy, a wrong
``TRUSTED_PROXY_COUNT``) and an account is not:

- while an account is over its limit, a login to it is refused with 429 before any verification
  runs, even with the right password: this is what bounds guessing of one password;
- while an IP is over its limit, logins from it are still verified: a correct credential logs in,
  and each failure answers 429 instead of 401. Others' failures never lock a user out.

When the storage fails, counting goes on in this process (never open), as for the other sensitive
endpoints.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from flask import Flask
from limits import parse
from limits.strategies import FixedWindowRateLimiter

from app.gateway.errors import ApiError
from app.gateway.limit_memory import SweptMemoryStorage
from app.gateway.limits import open_storage
from app.state import Slot

log = logging.getLogger(__name__)
RETRY_STORAGE_AFTER_SECONDS = 1.0


NAMESPACE = "hearthgate-login-failures"


class TooManyFailures(ApiError):
    code = 429
    error = "TooManyRequests"


class LoginThrottle:
    def __init__(self, config: dict[str, Any], storage_uri: str) -> None:
        self.enabled = bool(config.get("AUTH_LOGIN_FAILURES_PER_ACCOUNT"))
        self.shared = FixedWindowRateLimiter(open_storage(storage_uri))
        self.local = FixedWindowRateLimiter(SweptMemoryStorage())
        self._suspended_until = 0.0
        unlimited = "1000/second"
        self.per_account = parse(str(config.get("AUTH_LOGIN_FAILURES_PER_ACCOUNT") or unlimited))
        self.per_ip = parse(str(config.get("AUTH_LOGIN_FAILURES_PER_IP") or unlimited))

    def _items(self, ip: str | None, account: str | None) -> list[tuple[Any, str]]:
        items: list[tuple[Any, str]] = []
        if ip:
            items.append((self.per_ip, "ip:" + ip))
        if account:
            # Hashed: the storage (e.g. Redis) need not learn which emails were tried.
            digest = hashlib.sha256(account.strip().lower().encode()).hexdigest()
            items.append((self.per_account, "account:" + digest))
        return items

    def check(self, account: str | None) -> None:
        """429 while the account has used up its failures (before any verification)."""
        if not self.enabled:
            return
        for item, key in self._items(None, account):
            if not self._use("test", item, key):
                raise self._refusal(item, key)

    def ip_refusal(self, ip: str | None) -> TooManyFailures | None:
        """The 429 a failed login from ``ip`` answers while the IP has used up its failures."""
        if not self.enabled:
            return None
        for item, key in self._items(ip, None):
            if not self._use("test", item, key):
                return self._refusal(item, key)
        return None

    def _refusal(self, item: Any, key: str) -> TooManyFailures:
        stats = self._use("get_window_stats", item, key)
        retry = max(1, int(stats.reset_time - _now()))
        return TooManyFailures(
            "Too many failed logins; try again later",
            headers={"Retry-After": str(retry)},
            retryAfter=retry, limit=item.amount, window=item.get_expiry(),
        )

    def failed(self, ip: str | None, account: str | None = None) -> None:
        if not self.enabled:
            return
        for item, key in self._items(ip, account):
            self._use("hit", item, key)

    def succeeded(self, account: str | None) -> None:
        if not self.enabled or not account:
            return
        for item, key in self._items(None, account):
            self._use("clear", item, key)

    def _use(self, operation: str, item: Any, key: str) -> Any:
        """``operation`` of the limiter on the shared storage, or in this process while that
        storage is failing (retried every second)."""
        if time.monotonic() >= self._suspended_until:
            try:
                return getattr(self.shared, operation)(item, NAMESPACE, key)
            except Exception as exc:  # noqa: BLE001 - any storage error means "storage down"
                self._suspended_until = time.monotonic() + RETRY_STORAGE_AFTER_SECONDS
                # The type only: a driver's message may carry a host name or a URI.
                log.warning("login throttle storage failed (%s): counting in this process",
                            type(exc).__name__)
        return getattr(self.local, operation)(item, NAMESPACE, key)


def _now() -> float:
    return time.time()


def init_throttle(app: Flask) -> None:
    from app.gateway.limits import storage_uri
    from app.plugins import hook

    uri = storage_uri(app, hook(app).limiter_storage)
    LOGIN_THROTTLE.set(app, LoginThrottle(dict(app.config), uri))


LOGIN_THROTTLE: Slot[LoginThrottle] = Slot("login_throttle")


def login_throttle() -> LoginThrottle:
    return LOGIN_THROTTLE.get()
