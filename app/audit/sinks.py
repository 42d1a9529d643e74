"""Forwarding committed events to the ``audit_sink`` plugins, off the request path.

Events appended on a session wait in ``session.info`` and leave only after that session's commit;
an event whose savepoint or transaction rolled back is no longer in the session and is dropped.

Committed events go into a bounded queue that one thread of the process drains, so a slow or hung
sink (a SIEM across the network) never holds a response or a database connection. A failing sink
is logged, never undoes a committed change and never keeps the other sinks from their copy. When
the queue is full (``AUDIT_SINK_QUEUE_SIZE``: the sinks have fallen that far behind) the event is
not forwarded and a warning names its chain and sequence number: the database chain stays
complete, and ``flask audit export`` gives any sink what it missed.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.audit.chain import event_record
from app.audit.writer import PENDING_KEY
from app.models.audit import AuditEvent

log = logging.getLogger(__name__)

DRAIN_AT_EXIT_SECONDS = 5.0


class SinkRelay:
    """The queue of committed event records and the thread that hands them to the sinks."""

    def __init__(self, hook: Any, size: int) -> None:
        self._hook = hook
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.dropped = 0

    def put(self, record: dict[str, Any]) -> None:
        self._ensure_thread()
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            log.warning("audit sink queue full: %s seq %s not forwarded (%d so far)",
                        record["chain"], record["seq"], self.dropped)

    def drain(self, timeout: float) -> bool:
        """Wait until every queued record was handed to the sinks; ``False`` on timeout."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True, name="audit-sink-drain").start()
        return done.wait(timeout)

    def _ensure_thread(self) -> None:
        # Started on first use, and again in a forked worker (threads do not survive a fork).
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="audit-sinks")
                self._thread.start()

    def _run(self) -> None:
        while True:
            record = self._queue.get()
            try:
                self._deliver(record)
            finally:
                self._queue.task_done()

    def _deliver(self, record: dict[str, Any]) -> None:
        # Each sink on its own: one that is down must not starve the others.
        for sink in self._hook.audit_sink.get_hookimpls():
            try:
                sink.function(event=dict(record))
            except Exception:
                log.exception("audit sink %s failed for %s seq %s", sink.plugin_name,
                              record["chain"], record["seq"])


def init_sinks(app: Flask) -> SinkRelay:
    from app.plugins import hook

    relay = SinkRelay(hook(app), int(app.config["AUDIT_SINK_QUEUE_SIZE"]))
    app.extensions["hearthgate.audit_sinks"] = relay
    factory = app.extensions["hearthgate.db"]

    def forward(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint was released (after_commit fires for it too): not yet committed
        pending: list[AuditEvent] = session.info.pop(PENDING_KEY, [])
        if not pending or not relay._hook.audit_sink.get_hookimpls():
            return
        for audit_event in pending:
            if audit_event in session:
                relay.put(event_record(audit_event))

    def forget(session: Session, *_: Any) -> None:
        if not session.in_transaction():
            session.info.pop(PENDING_KEY, None)

    event.listen(factory, "after_commit", forward)
    event.listen(factory, "after_rollback", forget)
    # A worker that stops (deploy, gunicorn's max_requests) hands over what it already queued.
    atexit.register(relay.drain, DRAIN_AT_EXIT_SECONDS)
    return relay
