"""Work handed off the request path: a bounded queue that one daemon thread of the process drains.

Used for what a response must not wait for, or must not reveal by taking longer: the audit sinks
(``app.audit.sinks``) and outgoing mail (``plugins.mail``). The thread starts on first use,
and again in a forked worker (threads do not survive a fork). When the queue is full, an item is
handed to ``_overflow`` instead (counted in ``dropped``) and the caller goes on: a stuck consumer
never holds a response. ``drain`` waits for what is queued (tests, and a stopping worker); while it
waits the thread does not rest (``gather_seconds``), so items queued during a rest go at once.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class ProcessThread:
    """One daemon thread per process running ``target``, started on first ``ensure()``: a forked
    worker starts its own (threads do not survive a fork)."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self._target = target
        self._name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def ensure(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._target, daemon=True,
                                                name=self._name)
                self._thread.start()


class BackgroundQueue(Generic[Item]):
    """Subclasses say what to do with an item (``_deliver``) and when one did not fit
    (``_overflow``); ``_deliver`` handles its own errors (it runs where nobody can answer).
    ``gather_seconds``: how long the thread rests after delivering, so that the items queued
    meanwhile are taken together (``_run``); 0 wakes it for each."""

    def __init__(self, size: int, thread_name: str, gather_seconds: float = 0.0) -> None:
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=size)
        self._thread_name = thread_name
        self._gather = gather_seconds
        self._lock = threading.Lock()
        self._runner = ProcessThread(self._run, thread_name)
        self.dropped = 0
        self._draining = 0  # drains waiting now (under ``_lock``)
        self._hurry = threading.Event()  # set while any drain waits: cuts a rest short

    def put(self, item: Item) -> None:
        self._runner.ensure()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            self._overflow(item)

    def drain(self, timeout: float) -> bool:
        """Wait until every queued item was delivered; ``False`` on timeout."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        with self._lock:
            self._draining += 1
            self._hurry.set()
        try:
            threading.Thread(target=wait, daemon=True, name=f"{self._thread_name}-drain").start()
            return done.wait(timeout)
        finally:
            with self._lock:
                self._draining -= 1
                if not self._draining:
                    self._hurry.clear()

    def _run(self) -> None:
        # Idle, the thread waits for the queue: the first item of a quiet spell goes at once.
        # Then it delivers every item queued meanwhile and rests ``gather_seconds`` before the
        # next ones: under a stream of items it wakes once per interval, not once per item (each
        # wake-up is a switch of the interpreter's lock away from the request threads).
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for item in batch:
                try:
                    self._deliver(item)
                finally:
                    self._queue.task_done()
            self._rest()

    def _rest(self) -> None:
        if self._gather > 0:
            self._hurry.wait(self._gather)  # at once while a drain waits

    def _deliver(self, item: Item) -> None:
        raise NotImplementedError

    def _overflow(self, item: Item) -> None:
        raise NotImplementedError
