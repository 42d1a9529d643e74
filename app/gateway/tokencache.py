"""A bounded cache of verified access tokens, keyed by the exact token string.

Verifying a signature costs more than the rest of a small read. A token that verified once
verifies again until it expires, so the claims are kept and only ``exp`` is checked on a hit;
any other string (a single changed byte included) misses and is verified in full.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from app.auth.tokens import AccessTokens


class VerifiedTokens:
    def __init__(self, tokens: AccessTokens, size: int) -> None:
        self._tokens = tokens
        self._size = size
        self._claims: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> dict[str, Any]:
        if self._size <= 0:
            return self._tokens.verify(token)
        now = time.time()
        with self._lock:
            claims = self._claims.get(token)
            if claims is not None:
                if claims["exp"] > now:
                    self._claims.move_to_end(token)
                    return claims
                del self._claims[token]
        claims = self._tokens.verify(token)  # exp is essential and numeric there
        with self._lock:
            self._claims[token] = claims
            if len(self._claims) > self._size:
                self._claims.popitem(last=False)
        return claims
