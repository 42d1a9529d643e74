"""Rate limiting's start-up: one storage per application, then the contract limits.

The storage (with its fallback) is opened whatever ``RATELIMIT_ENABLED`` says: the failed-login
throttle counts through it too, and it defends against password guessing, not load. The
contract limits, their headers and the ``ratelimit`` readiness check exist only when
``RATELIMIT_ENABLED`` is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from limits import RateLimitItem, parse

from app.config import ConfigurationError
from app.gateway.contracts import RATE_LIMIT
from app.plugins import hook
from app.ratelimit.fallback import StorageWithFallback
from app.ratelimit.policy import ContractLimiter
from app.ratelimit.storage import open_storage, storage_uri, strategy_name
from app.readiness import add_check
from app.state import Slot

STORAGE: Slot[StorageWithFallback] = Slot("ratelimit_storage")  # one per app, always opened
LIMITER: Slot[ContractLimiter] = Slot("limiter")  # unset while RATELIMIT_ENABLED is off


def init_rate_limits(app: Flask) -> ContractLimiter | None:
    """Open the storage; install the contract limiter and its readiness check when enabled."""
    config = app.config
    contract_limits = None
    if config["RATELIMIT_ENABLED"]:
        # The settings first: a bad one refuses the start by its name before any storage opens.
        strategy = strategy_name(str(config["RATELIMIT_STRATEGY"]))
        contract_limits = (
            _limit_setting(config, "RATELIMIT_AUTHENTICATED"),
            _limit_setting(config, "RATELIMIT_ANONYMOUS"),
            _limit_setting(config, "RATELIMIT_INTERNAL"),
        )
    storage = StorageWithFallback(open_storage(storage_uri(app, hook(app).limiter_storage)))
    STORAGE.set(app, storage)
    if contract_limits is None:
        return None
    try:
        shared = storage.strategy(strategy)
    except NotImplementedError:
        raise ConfigurationError(
            f"RATELIMIT_STRATEGY {strategy} is not supported by this RATELIMIT_STORAGE_URI"
        ) from None
    authenticated, anonymous, service = contract_limits
    limiter = ContractLimiter(
        fallback=storage,
        strategy=shared,
        authenticated=authenticated,
        anonymous=anonymous,
        service=service,
        config=config,
    )
    LIMITER.set(app, limiter)
    RATE_LIMIT.set(app, limiter)
    add_check(app, "ratelimit", storage.check)
    return limiter


def _limit_setting(config: Mapping[str, Any], name: str) -> RateLimitItem:
    try:
        return parse(str(config[name]))
    except ValueError:
        raise ConfigurationError(f"{name} is not a rate limit such as '100/minute'") from None


def rate_limit_storage(app: Flask | None = None) -> StorageWithFallback:
    """The application's one rate-limit storage (``current_app``'s by default)."""
    return STORAGE.get(app)

