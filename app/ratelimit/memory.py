"""``limits``' in-process storage without its timer thread.

``limits.storage.MemoryStorage`` drops expired counters from a ``threading.Timer`` that it starts
again, 10 ms after the last one ended, on every counting call. Under a steady load that is a new
thread every few requests, and ``Thread.start`` waits for the new thread to run: measured in
``bench/bench_read.py``'s read, one start per ~17 requests, 63 µs per request on average spent in
``incr``. The counters themselves already expire lazily (a read of an expired key resets it); the
sweep only frees memory for keys nobody asks about any more, so here it runs inline, at most once
per ``SWEEP_EVERY_SECONDS``, on the request that finds it due.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from limits.storage import MemoryStorage


class SweptMemoryStorage(MemoryStorage):
    SWEEP_EVERY_SECONDS = 1.0

    def __init__(self, uri: str | None = None, **options: Any) -> None:
        super().__init__(uri, **options)
        self.timer.cancel()  # the one MemoryStorage started; never started again (below)
        self._next_sweep = time.monotonic() + self.SWEEP_EVERY_SECONDS
        self._sweep_lock = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - replaces the private hook
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + self.SWEEP_EVERY_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        finally:
            self._sweep_lock.release()
