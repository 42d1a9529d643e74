"""The rate limits of the endpoint contracts (API.md "Rate limits") and the 429 they answer.

The contract wrapper calls ``ContractLimiter`` right after authentication
(``app.ratelimit.setup.LIMITER``), so that the key is the *verified* ``sub``. Buckets:
one per caller across all routes (``RATELIMIT_AUTHENTICATED`` keyed by ``sub``,
``RATELIMIT_INTERNAL`` by the verified internal token's name, ``RATELIMIT_ANONYMOUS`` by client
IP), plus one per caller and endpoint when a contract declares its own ``rate_limit``.

When the storage fails (``app.ratelimit.fallback``), sensitive contracts (``sensitive=True``)
are counted in this process with the same limits (never open); ordinary contracts are let
through, without rate-limit headers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import request
from limits import RateLimitItem, parse
from limits.strategies import FixedWindowRateLimiter, RateLimiter

from app.gateway.clientip import request_client_ip
from app.gateway.errors import ApiError
from app.gateway.headers import add_response_headers
from app.ratelimit.fallback import StorageWithFallback, Strategy
from app.ratelimit.headers import Quota, rate_limit_headers

if TYPE_CHECKING:
    from app.gateway.contracts import Call

NAMESPACE = "hg"


class TooManyRequests(ApiError):
    """429 of every rate limit: the contracts' and the failed-login throttle's."""

    code = 429
    error = "TooManyRequests"


def too_many_requests(message: str, item: RateLimitItem, reset_at: float) -> TooManyRequests:
    """The 429 for a breached ``item`` whose window ends at ``reset_at`` (unix seconds):
    ``Retry-After`` rounded up, so a client that waits that long finds the window over."""
    retry_after = max(1, math.ceil(reset_at - time.time()))
    return TooManyRequests(
        message,
        headers={"Retry-After": str(retry_after)},
        retryAfter=retry_after,
        limit=item.amount,
        window=int(item.get_expiry()),
    )


class ContractLimiter:
    """The contract limits of one application, counted through its ``StorageWithFallback``."""

    def __init__(
        self,
        fallback: StorageWithFallback,
        strategy: Strategy,
        authenticated: RateLimitItem,
        anonymous: RateLimitItem,
        service: RateLimitItem,
        config: Mapping[str, Any],
    ) -> None:
        self.fallback = fallback
        self.strategy = strategy
        self.authenticated = authenticated
        self.anonymous = anonymous
        self.service = service
        self._config = config
        self._items: dict[str, RateLimitItem] = {}

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
            quota = max(breached, key=lambda q: q.reset_at)
            raise too_many_requests(
                f"Rate limit exceeded: {quota.item.amount} per {quota.window} seconds",
                quota.item,
                quota.reset_at,
            )

    def item_for(self, limit: str) -> RateLimitItem:
        """A contract's limit string; ``{SETTING}`` placeholders are filled from the settings."""
        item = self._items.get(limit)
        if item is None:
            text = limit.format_map(self._config) if "{" in limit else limit
            item = self._items[limit] = parse(text)
        return item

    def _hit(
        self, policy: str, item: RateLimitItem, identifiers: tuple[str, ...], sensitive: bool
    ) -> Quota | None:
        def measure(strategy: RateLimiter) -> Quota:
            return self._measure(strategy, policy, item, identifiers)

        if sensitive:
            return self.fallback.fail_closed(measure, self.strategy)
        return self.fallback.fail_open(measure, self.strategy)

    def _measure(
        self, strategy: RateLimiter, policy: str, item: RateLimitItem, ids: tuple[str, ...]
    ) -> Quota:
        if isinstance(strategy, FixedWindowRateLimiter):
            # The strategy's own increment (``limits``' hit), whose count answers the remaining
            # quota too: no second read of the counter for the headers.
            key, expiry = item.key_for(NAMESPACE, *ids), item.get_expiry()
            redis_window = self.fallback.redis_window
            if redis_window is not None and strategy is self.strategy.shared:
                count, reset_at = redis_window.hit(key, expiry)
            else:
                count = strategy.storage.incr(key, expiry)
                reset_at = strategy.storage.get_expiry(key)
            return Quota(policy, item, max(0, item.amount - count), reset_at, count <= item.amount)
        allowed = strategy.hit(item, NAMESPACE, *ids)
        stats = strategy.get_window_stats(item, NAMESPACE, *ids)
        return Quota(policy, item, max(0, stats.remaining), stats.reset_time, allowed)
