"""The rate-limit response headers (API.md "Rate limits"): the ``X-RateLimit-*`` trio of the
bucket a client should watch, and the IETF draft's ``RateLimit-Policy`` and ``RateLimit``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem


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


def binding_quota(quotas: Sequence[Quota]) -> Quota:
    """The bucket a client should watch: a breached one, else the one closest to empty."""
    breached = [q for q in quotas if not q.allowed]
    if breached:
        return max(breached, key=lambda q: q.reset_at)
    return min(quotas, key=lambda q: (q.remaining, -q.reset_at))


def rate_limit_headers(quotas: Sequence[Quota], now: float) -> dict[str, str]:
    shown = binding_quota(quotas)
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
