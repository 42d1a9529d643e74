"""Failed-login throttling per account and per client IP, on the application's rate-limit
storage (``app.ratelimit``): the same storage connection, the same fallback and the same 429 as
the contract limits.

It is not switched off by ``RATELIMIT_ENABLED``: it defends against password guessing, not load.
Only failures count; a success clears the account's counter (never the IP's). Accounts reach
the storage hashed.

The two budgets refuse differently, because an address is shared (a NAT, a proxy, a wrong
``TRUSTED_PROXY_COUNT``) and an account is not:

- while an account is over its limit, a login to it is refused with 429 before any verification
  runs, even with the right password: this is what bounds guessing of one password;
- while an IP is over its limit, logins from it are still verified: a correct credential logs in,
  and each failure answers 429 instead of 401. Others' failures never lock a user out.

When the storage fails, counting goes on in this process (never open), as for the sensitive
endpoints, and the shared storage is tried again when it is for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask
from limits import RateLimitItem, parse
from limits.strategies import RateLimiter

from app.ratelimit.fallback import StorageWithFallback
from app.ratelimit.policy import TooManyRequests, too_many_requests
from app.ratelimit.setup import rate_limit_storage
from app.ratelimit.storage import hashed_key
from app.state import Slot

NAMESPACE = "hearthgate-login-failures"

T = TypeVar("T")


class LoginThrottle:
    def __init__(self, config: dict[str, Any], storage: StorageWithFallback) -> None:
        self.enabled = bool(config.get("AUTH_LOGIN_FAILURES_PER_ACCOUNT"))
        self.storage = storage
        # Fixed windows whatever RATELIMIT_STRATEGY says: every storage supports them.
        self.strategy = storage.strategy("fixed-window")
        unlimited = "1000/second"
        self.per_account = parse(str(config.get("AUTH_LOGIN_FAILURES_PER_ACCOUNT") or unlimited))
        self.per_ip = parse(str(config.get("AUTH_LOGIN_FAILURES_PER_IP") or unlimited))

    def _items(self, ip: str | None, account: str | None) -> list[tuple[RateLimitItem, str]]:
        items: list[tuple[RateLimitItem, str]] = []
        if ip:
            items.append((self.per_ip, "ip:" + ip))
        if account:
            items.append((self.per_account, "account:" + hashed_key(account.strip().lower())))
        return items

    def check(self, account: str | None) -> None:
        """429 while the account has used up its failures (before any verification)."""
        if not self.enabled:
            return
        for item, key in self._items(None, account):
            if not self._test(item, key):
                raise self._refusal(item, key)

    def ip_refusal(self, ip: str | None) -> TooManyRequests | None:
        """The 429 a failed login from ``ip`` answers while the IP has used up its failures."""
        if not self.enabled:
            return None
        for item, key in self._items(ip, None):
            if not self._test(item, key):
                return self._refusal(item, key)
        return None

    def _refusal(self, item: RateLimitItem, key: str) -> TooManyRequests:
        stats = self._count(lambda limiter: limiter.get_window_stats(item, NAMESPACE, key))
        return too_many_requests("Too many failed logins; try again later", item,
                                 stats.reset_time)

    def failed(self, ip: str | None, account: str | None = None) -> None:
        if not self.enabled:
            return
        for item, key in self._items(ip, account):
            self._hit(item, key)

    def succeeded(self, account: str | None) -> None:
        if not self.enabled or not account:
            return
        for item, key in self._items(None, account):
            self._clear(item, key)

    def _test(self, item: RateLimitItem, key: str) -> bool:
        return self._count(lambda limiter: limiter.test(item, NAMESPACE, key))

    def _hit(self, item: RateLimitItem, key: str) -> bool:
        return self._count(lambda limiter: limiter.hit(item, NAMESPACE, key))

    def _clear(self, item: RateLimitItem, key: str) -> None:
        self._count(lambda limiter: limiter.clear(item, NAMESPACE, key))

    def _count(self, operation: Callable[[RateLimiter], T]) -> T:
        """``operation`` on the shared storage, or in this process while it is failing."""
        return self.storage.fail_closed(operation, self.strategy)


LOGIN_THROTTLE: Slot[LoginThrottle] = Slot("login_throttle")


def init_throttle(app: Flask) -> None:
    LOGIN_THROTTLE.set(app, LoginThrottle(dict(app.config), rate_limit_storage(app)))


def login_throttle() -> LoginThrottle:
    return LOGIN_THROTTLE.get()
