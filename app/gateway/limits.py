"""Rate limits for the endpoint contracts (API.md "Rate limits").

Built on ``limits``, the engine of Flask-Limiter: its storages (the URI the ``limiter_storage``
hook accepted) and its strategies (``RATELIMIT_STRATEGY``). The limits are evaluated here, by the
contract wrapper right after authentication (``app.gateway.contracts.RATE_LIMIT``), rather
than by Flask-Limiter's extension, for three reasons: its check runs in ``before_request``, before
the bearer token is verified, while the key must be the *verified* ``sub``; its in-memory fallback
is one switch for the whole application, while the failure policy here differs per endpoint
class; and its request hooks, installed even with no limits declared, cost about 100 µs per
request (measured: a ``/healthz`` of this app at 240 µs without them, 340 µs with them, bare Flask
175 µs, in-process).

Buckets: one per caller across all routes (``RATELIMIT_AUTHENTICATED`` keyed by ``sub``,
``RATELIMIT_ANONYMOUS`` keyed by client IP), plus one per caller and endpoint when a contract
declares its own ``rate_limit``.

When the storage fails, sensitive contracts (``sensitive=True``) fall back to the same limits
counted in this process (never open); ordinary contracts are let through. Both are counted in
``ContractLimiter.failures`` and logged as warnings (at most one line per kind every
``WARN_EVERY_SECONDS``, so an outage under load does not flood the log).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, request
from limits import RateLimitItem, parse
from limits.storage import RedisStorage, Storage, storage_from_string
from limits.strategies import STRATEGIES, FixedWindowRateLimiter, RateLimiter

from app.config import ConfigurationError, ConfigurationRefused
from app.gateway.clientip import request_client_ip
from app.gateway.contracts import RATE_LIMIT, Call
from app.gateway.errors import ApiError
from app.gateway.headers import add_response_headers
from app.gateway.limit_memory import SweptMemoryStorage
from app.gateway.limit_redis import RedisFixedWindow
from app.logs import redactor
from app.state import Slot

log = logging.getLogger(__name__)

NAMESPACE = "hg"
WARN_EVERY_SECONDS = 30.0
# After a storage error, sensitive calls use the local fallback for this long before the shared
# storage is tried again: a dead Redis costs one failed round trip per second, not per request.
RETRY_STORAGE_AFTER_SECONDS = 1.0

STRATEGY_ALIASES = {
    "fixed": "fixed-window",
    "moving": "moving-window",
    "sliding": "sliding-window-counter",
    "sliding-window": "sliding-window-counter",
}

FALLBACK = "fallback"  # a sensitive call counted in this process while the storage is down
FAIL_OPEN = "fail_open"  # an ordinary call let through unlimited while the storage is down


class TooManyRequests(ApiError):
    code = 429
    error = "TooManyRequests"


@dataclass(frozen=True)
class Quota:
    """One bucket's state after this request's hit."""

    policy: str
    item: RateLimitItem
    remaining: int
    reset_at: float
    allowed: bool

    @property
    def window(self) -> int:
        return int(self.item.get_expiry())

    def seconds_to_reset(self, now: float) -> int:
        return max(0, math.ceil(self.reset_at - now))


class ContractLimiter:
    """The limits of one application: shared storage, the per-process fallback, the counters."""

    def __init__(
        self,
        shared: RateLimiter,
        local: RateLimiter,
        storage: Storage,
        authenticated: RateLimitItem,
        anonymous: RateLimitItem,
        service: RateLimitItem,
        config: Mapping[str, Any],
    ) -> None:
        self.shared = shared
        self.local = local
        self.storage = storage
        self.authenticated = authenticated
        self.anonymous = anonymous
        self.service = service
        self.failures: Counter[str] = Counter()
        self._config = config
        self._items: dict[str, RateLimitItem] = {}
        self._lock = threading.Lock()
        self._suspended_until = 0.0
        self._last_warned: dict[str, float] = {}
        self._redis_window = (
            RedisFixedWindow(storage) if isinstance(storage, RedisStorage) else None
        )

    # -- the contract hook ----------------------------------------------------------------------

    def __call__(self, call: Call) -> None:
        """Hit the caller's bucket, then the endpoint's own; raise 429 on the first breach.

        The caller is the verified ``sub``, else the *verified* internal token's name (machine
        callers such as the orchestrator share one service bucket, not a visitor's per-IP
        budget), else the client IP. A failed authentication of any kind is the client IP's: a
        missing or wrong internal token never spends the service's bucket, so no outsider can
        lock the orchestrator out. A contract with ``caller_bucket=False`` (webhooks, public voice
        sessions) is limited by its own per-IP limit only.
        """
        contract = call.contract
        if call.principal is not None:
            policy, item, key = "authenticated", self.authenticated, "sub:" + call.principal.user_id
        elif call.service is not None:
            policy, item, key = "service", self.service, "svc:" + call.service
        else:
            policy, item = "anonymous", self.anonymous
            key = "ip:" + request_client_ip()
        quotas: list[Quota] = []
        caller = (
            self._hit(policy, item, ("caller", key), contract.sensitive)
            if contract.caller_bucket
            else None
        )
        if caller is not None:
            quotas.append(caller)
        if contract.rate_limit and (caller is None or caller.allowed):
            own = self.item_for(contract.rate_limit)
            scope = ("endpoint", request.endpoint or request.path, key)
            endpoint_quota = self._hit("endpoint", own, scope, contract.sensitive)
            if endpoint_quota is not None:
                quotas.append(endpoint_quota)
        if quotas:
            add_response_headers(rate_limit_headers(quotas, time.time()).items())
        breached = [q for q in quotas if not q.allowed]
        if breached:
            raise too_many_requests(max(breached, key=lambda q: q.reset_at))

    def item_for(self, limit: str) -> RateLimitItem:
        """A contract's limit string; ``{SETTING}`` placeholders are filled from the settings."""
        item = self._items.get(limit)
        if item is None:
            text = limit.format_map(self._config) if "{" in limit else limit
            item = self._items[limit] = parse(text)
        return item

    # -- the helper for other modules -----------------------------------------------------------

    def hit_key(self, key: str, limit: str, *, count: bool = True) -> bool:
        """``key`` hashed (it may be an email address: no personal data in the storage's keys)."""
        item = self.item_for(limit)
        identifiers = ("key", hashlib.sha256(key.encode()).hexdigest()[:40])
        if not self._suspended():
            try:
                return self._apply(self.shared, item, identifiers, count)
            except Exception as exc:  # noqa: BLE001 - any storage error means "storage down"
                self._storage_failed(exc)
        self._record(FALLBACK)
        return self._apply(self.local, item, identifiers, count)

    # -- storage, fallback, counters ------------------------------------------------------------

    def _hit(
        self, policy: str, item: RateLimitItem, identifiers: tuple[str, ...], sensitive: bool
    ) -> Quota | None:
        if not self._suspended():
            try:
                return self._measure(self.shared, policy, item, identifiers)
            except Exception as exc:  # noqa: BLE001 - any storage error means "storage down"
                self._storage_failed(exc)
        if sensitive:
            self._record(FALLBACK)
            return self._measure(self.local, policy, item, identifiers)
        self._record(FAIL_OPEN)
        return None

    def _measure(
        self, strategy: RateLimiter, policy: str, item: RateLimitItem, ids: tuple[str, ...]
    ) -> Quota:
        if isinstance(strategy, FixedWindowRateLimiter):
            # The strategy's own increment (``limits``' hit), whose count answers the remaining
            # quota too: no second read of the counter for the headers.
            key, expiry = item.key_for(NAMESPACE, *ids), item.get_expiry()
            redis_window = self._redis_window
            if redis_window is not None and strategy is self.shared:
                count, reset_at = redis_window.hit(key, expiry)
            else:
                count = strategy.storage.incr(key, expiry)
                reset_at = strategy.storage.get_expiry(key)
            return Quota(policy, item, max(0, item.amount - count), reset_at, count <= item.amount)
        allowed = strategy.hit(item, NAMESPACE, *ids)
        stats = strategy.get_window_stats(item, NAMESPACE, *ids)
        return Quota(policy, item, max(0, stats.remaining), stats.reset_time, allowed)

    @staticmethod
    def _apply(
        strategy: RateLimiter, item: RateLimitItem, identifiers: tuple[str, ...], count: bool
    ) -> bool:
        if count:
            return strategy.hit(item, NAMESPACE, *identifiers)
        return strategy.test(item, NAMESPACE, *identifiers)

    def _suspended(self) -> bool:
        return time.monotonic() < self._suspended_until

    def _storage_failed(self, exc: Exception) -> None:
        self._suspended_until = time.monotonic() + RETRY_STORAGE_AFTER_SECONDS
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

    def close(self) -> None:
        """Close the shared storage's connections (tests build many applications)."""
        client = getattr(self.storage, "storage", None)
        closer = getattr(client, "close", None)
        if callable(closer):
            closer()

    def check_storage(self, _app: Flask) -> None:
        """Readiness: the shared storage answers."""
        if not self.storage.check():
            raise ConnectionError("rate-limit storage unreachable")


LIMITER: Slot[ContractLimiter] = Slot("limiter")  # unset while RATELIMIT_ENABLED is off


def too_many_requests(quota: Quota) -> TooManyRequests:
    retry_after = max(1, quota.seconds_to_reset(time.time()))
    return TooManyRequests(
        f"Rate limit exceeded: {quota.item.amount} per {quota.window} seconds",
        headers={"Retry-After": str(retry_after)},
        retryAfter=retry_after,
        limit=quota.item.amount,
        window=quota.window,
    )


# -- response headers ----------------------------------------------------------------------------


def _binding(quotas: list[Quota]) -> Quota:
    """The bucket a client should watch: a breached one, else the one closest to empty."""
    breached = [q for q in quotas if not q.allowed]
    if breached:
        return max(breached, key=lambda q: q.reset_at)
    return min(quotas, key=lambda q: (q.remaining, -q.reset_at))


def rate_limit_headers(quotas: list[Quota], now: float) -> dict[str, str]:
    shown = _binding(quotas)
    seconds = shown.seconds_to_reset(now)
    return {
        "X-RateLimit-Limit": str(shown.item.amount),
        "X-RateLimit-Remaining": str(shown.remaining),
        "X-RateLimit-Reset": str(math.ceil(shown.reset_at)),
        # IETF draft-ietf-httpapi-ratelimit-headers: every policy, then the binding one's state.
        "RateLimit-Policy": ", ".join(
            f'"{q.policy}";q={q.item.amount};w={q.window}' for q in quotas
        ),
        "RateLimit": f'"{shown.policy}";r={shown.remaining};t={seconds}',
    }


# -- set-up --------------------------------------------------------------------------------------


def strategy_name(value: str) -> str:
    name = STRATEGY_ALIASES.get(value.strip().lower(), value.strip().lower())
    if name not in STRATEGIES:
        raise ConfigurationError(
            "RATELIMIT_STRATEGY must be one of " + ", ".join(sorted(STRATEGIES))
        )
    return name


def _limit_setting(config: Mapping[str, Any], name: str) -> RateLimitItem:
    try:
        return parse(str(config[name]))
    except ValueError:
        raise ConfigurationError(f"{name} is not a rate limit such as '100/minute'") from None


# redis-py waits forever by default; a limiter that hangs would hang every request.
REDIS_TIMEOUT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}


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
    its timer thread (app/gateway/limit_memory.py)."""
    if uri.split("://", 1)[0].lower() == "memory":
        return SweptMemoryStorage()
    storage = storage_from_string(uri, **storage_options(uri))
    if not isinstance(storage, Storage):  # an async:// storage: this is a WSGI application
        raise ConfigurationError("RATELIMIT_STORAGE_URI names an asynchronous storage")
    return storage


def storage_uri(app: Flask, hook: Callable[..., Any]) -> str:
    """The storage URI as the ``limiter_storage`` hook accepted (and possibly rewrote) it."""
    uri = str(app.config.get("RATELIMIT_STORAGE_URI") or "memory://")
    accepted = hook(uri=uri, config=dict(app.config))
    if accepted is None:
        scheme = uri.split("://", 1)[0] if "://" in uri else "(none)"
        raise ConfigurationRefused([f"RATELIMIT_STORAGE_URI has no limiter storage for '{scheme}'"])
    password = urlsplit(str(accepted)).password
    if password:
        redactor.add(password)
    return str(accepted)


def init_rate_limits(app: Flask) -> ContractLimiter | None:
    """Install the contract hook, the headers and the readiness check; nothing when disabled."""
    from app.plugins import hook
    from app.readiness import add_check

    config = app.config
    if not config["RATELIMIT_ENABLED"]:
        return None
    strategy = strategy_name(str(config["RATELIMIT_STRATEGY"]))
    authenticated = _limit_setting(config, "RATELIMIT_AUTHENTICATED")
    anonymous = _limit_setting(config, "RATELIMIT_ANONYMOUS")
    service = _limit_setting(config, "RATELIMIT_INTERNAL")
    uri = storage_uri(app, hook(app).limiter_storage)
    storage = open_storage(uri)
    try:
        shared = STRATEGIES[strategy](storage)
    except NotImplementedError:
        raise ConfigurationError(
            f"RATELIMIT_STRATEGY {strategy} is not supported by this RATELIMIT_STORAGE_URI"
        ) from None
    limiter = ContractLimiter(
        shared=shared,
        local=STRATEGIES[strategy](SweptMemoryStorage()),
        storage=storage,
        authenticated=authenticated,
        anonymous=anonymous,
        service=service,
        config=config,
    )
    LIMITER.set(app, limiter)
    RATE_LIMIT.set(app, limiter)
    add_check(app, "ratelimit", limiter.check_storage)
    return limiter


# -- for other modules (e.g. failed logins per account) -------------------------------------------


def hit(key: str, limit: str) -> bool:
    """Count one event for ``key`` against ``limit`` (e.g. ``"5/15 minutes"``) on the shared
    storage; ``False`` once the limit is exceeded. Fails closed: while the storage is down the
    events are counted in this process. Always ``True`` when rate limiting is disabled."""
    limiter = LIMITER.find()
    return True if limiter is None else limiter.hit_key(key, limit)


def allowed(key: str, limit: str) -> bool:
    """Whether one more event for ``key`` would still be within ``limit``, without counting it."""
    limiter = LIMITER.find()
    return True if limiter is None else limiter.hit_key(key, limit, count=False)
