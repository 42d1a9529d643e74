"""Forwarding committed events to the ``audit_sink`` plugins.

Events appended on a session wait in ``session.info`` and leave only after that session's commit;
an event whose savepoint or transaction rolled back is no longer in the session and is dropped. A
failing sink is logged, never undoes a committed change and never keeps the other sinks from
their copy.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.audit.chain import event_record
from app.audit.writer import PENDING_KEY
from app.models.audit import AuditEvent

log = logging.getLogger(__name__)


def init_sinks(app: Flask) -> None:
    from app.plugins import hook

    relay = hook(app)
    factory = app.extensions["hearthgate.db"]

    def forward(session: Session) -> None:
        pending: list[AuditEvent] = session.info.pop(PENDING_KEY, [])
        committed = [e for e in pending if e in session]
        sinks = relay.audit_sink.get_hookimpls()
        if not committed or not sinks:
            return
        for audit_event in committed:
            record = event_record(audit_event)
            # Each sink on its own: one that is down must not starve the others.
            for sink in sinks:
                try:
                    sink.function(event=dict(record))
                except Exception:
                    log.exception("audit sink %s failed for %s seq %s", sink.plugin_name,
                                  record["chain"], record["seq"])

    def forget(session: Session, *_: Any) -> None:
        if not session.in_transaction():
            session.info.pop(PENDING_KEY, None)

    event.listen(factory, "after_commit", forward)
    event.listen(factory, "after_rollback", forget)
