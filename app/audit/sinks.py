"""Forwarding committed events to the ``audit_sink`` plugins, off the request path.

Events leave only once the transaction that appended them committed (``app.audit.committed``
hands them to ``SinkRelay.forward``); an event whose savepoint or transaction rolled back is
dropped.

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
from collections.abc import Collection
from typing import Any

from flask import Flask

from app.audit.chain import event_record
from app.background import BackgroundQueue
from app.models.audit import AuditEvent
from app.plugins import call_impl, hook
from app.state import Slot

log = logging.getLogger(__name__)

DRAIN_AT_EXIT_SECONDS = 5.0


class SinkRelay(BackgroundQueue[dict[str, Any]]):
    """The queue of committed event records and the thread that hands them to the sinks, each
    call inside an application context of ``app`` (a sink reads its settings from
    ``app.config`` and may use the database as a request would)."""

    def __init__(self, app: Flask, size: int, gather_seconds: float = 0.0) -> None:
        super().__init__(size, "audit-sinks", gather_seconds)
        self.app = app
        self._hook = hook(app)

    def has_sinks(self) -> bool:
        """Whether any ``audit_sink`` plugin is registered (the records are built for them)."""
        return bool(self._hook.audit_sink.get_hookimpls())

    def forward(self, committed: Collection[AuditEvent]) -> None:
        """Queue the records of events a transaction committed, for the sinks (if any)."""
        if committed and self.has_sinks():
            for audit_event in committed:
                self.put(event_record(audit_event))

    def _overflow(self, record: dict[str, Any]) -> None:
        log.warning("audit sink queue full: %s seq %s not forwarded (%d so far)",
                    record["chain"], record["seq"], self.dropped)

    def _deliver(self, record: dict[str, Any]) -> None:
        # Each sink on its own: one that is down must not starve the others.
        for sink in self._hook.audit_sink.get_hookimpls():
            try:
                with self.app.app_context():
                    call_impl(sink, event=dict(record), app=self.app)
            except Exception:
                log.exception("audit sink %s failed for %s seq %s", sink.plugin_name,
                              record["chain"], record["seq"])


AUDIT_SINKS: Slot[SinkRelay] = Slot("audit_sinks")


def init_sinks(app: Flask) -> SinkRelay:
    relay = SinkRelay(app, int(app.config["AUDIT_SINK_QUEUE_SIZE"]),
                      int(app.config["AUDIT_SINK_GATHER_MILLISECONDS"]) / 1000)
    AUDIT_SINKS.set(app, relay)
    # A worker that stops (deploy, gunicorn's max_requests) hands over what it already queued.
    atexit.register(relay.drain, DRAIN_AT_EXIT_SECONDS)
    return relay
