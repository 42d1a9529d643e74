"""One Redis round trip per fixed-window hit: the count and the window's end together.

``limits`` increments a fixed window with one script call, then asks again (GET and TTL, two more
round trips) when the headers need the remaining count and the reset time. This script makes the
same increment (``limits``' incr_expire), on the same key, and answers both at once.
"""

from __future__ import annotations

import time
from typing import Any

from limits.storage import RedisStorage

INCR_WITH_TTL = """
local amount = tonumber(ARGV[2])
local current = redis.call('incrby', KEYS[1], amount)
if current == amount then
    redis.call('expire', KEYS[1], ARGV[1])
end
return {current, redis.call('pttl', KEYS[1])}
"""


class RedisFixedWindow:
    def __init__(self, storage: RedisStorage) -> None:
        self.storage = storage
        self._script: Any = None

    def hit(self, key: str, expiry: int) -> tuple[int, float]:
        """Count one hit on ``key``; return the count and the window's end (unix seconds)."""
        if self._script is None:
            self._script = self.storage.get_connection().register_script(INCR_WITH_TTL.encode())
        count, pttl = self._script(keys=[self.storage.prefixed_key(key)], args=[expiry, 1])
        return int(count), time.time() + max(int(pttl), 0) / 1000
