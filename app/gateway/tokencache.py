"""A bounded cache of verified access tokens, keyed by the exact token string.

Verifying a signature costs more than the rest of a small read. A token that verified once
verifies again until it expires, so the caller it names (a frozen ``Principal``) is kept with its
``exp`` and only the expiry is checked on a hit; any other string (a single changed byte
included) misses and is verified in full.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from app.context import Principal, principal_from_claims
from app.gateway.tokens import AccessTokens
from app.state import Slot


class VerifiedTokens:
    def __init__(self, tokens: AccessTokens, size: int) -> None:
        self._tokens = tokens
        self._size = size
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def principal(self, token: str) -> Principal:
        """The caller this token names; ``TokenError`` when it does not verify."""
        if self._size <= 0:
            return principal_from_claims(self._tokens.verify(token))
        now = time.time()
        with self._lock:
            hit = self._verified.get(token)
            if hit is not None:
                if hit[0] > now:
                    self._verified.move_to_end(token)
                    return hit[1]
                del self._verified[token]
        claims = self._tokens.verify(token)  # exp is essential and numeric there
        principal = principal_from_claims(claims)
        with self._lock:
            self._verified[token] = (float(claims["exp"]), principal)
            if len(self._verified) > self._size:
                self._verified.popitem(last=False)
        return principal


VERIFIED_TOKENS: Slot[VerifiedTokens] = Slot("verified_tokens")
