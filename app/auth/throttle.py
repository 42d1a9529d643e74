"""Failed-login throttling per account and per client IP, on the ``limits`` library.

Self-contained on purpose: it shares ``RATELIMIT_STORAGE_URI`` with the general rate limiter but
not its code, so the two can be unified later. Only failures count; a success clears the
account's counter. While a key is over its limit, the login is refused with 429 before any
verification runs.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Flask, current_app
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from app.gateway.errors import ApiError


class TooManyFailures(ApiError):
    code = 429
    error = "TooManyRequests"


class LoginThrottle:
    def __init__(self, config: dict[str, Any]) -> None:
        # Not tied to RATELIMIT_ENABLED: this is a defence against password guessing, not load.
        self.enabled = bool(config.get("AUTH_LOGIN_FAILURES_PER_ACCOUNT"))
        storage = storage_from_string(str(config.get("RATELIMIT_STORAGE_URI") or "memory://"))
        self.limiter = FixedWindowRateLimiter(storage)
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

    def check(self, ip: str | None, account: str | None = None) -> None:
        """429 while the IP or the account has used up its failures."""
        if not self.enabled:
            return
        for item, key in self._items(ip, account):
            if not self.limiter.test(item, "hearthgate-login-failures", key):
                stats = self.limiter.get_window_stats(item, "hearthgate-login-failures", key)
                retry = max(1, int(stats.reset_time - _now()))
                raise TooManyFailures(
                    "Too many failed logins; try again later",
                    headers={"Retry-After": str(retry)},
                    retryAfter=retry, limit=item.amount, window=item.get_expiry(),
                )

    def failed(self, ip: str | None, account: str | None = None) -> None:
        if not self.enabled:
            return
        for item, key in self._items(ip, account):
            self.limiter.hit(item, "hearthgate-login-failures", key)

    def succeeded(self, account: str | None) -> None:
        if not self.enabled or not account:
            return
        for item, key in self._items(None, account):
            self.limiter.clear(item, "hearthgate-login-failures", key)


def _now() -> float:
    import time

    return time.time()


def init_throttle(app: Flask) -> None:
    app.extensions["hearthgate.login_throttle"] = LoginThrottle(dict(app.config))


def login_throttle() -> LoginThrottle:
    throttle: LoginThrottle = current_app.extensions["hearthgate.login_throttle"]
    return throttle
