"""What a transaction that appended audit events hands on once it committed, in one listener:
the chains it extended (due for signing) and the checkpoints it signed to the witnesses
(``app.audit.witness``), its events to the sinks (``app.audit.sinks``). Both read the same list
of events, which is then forgotten: one listener, so neither depends on running before the
other. A transaction that rolled back hands nothing on.

A session's events wait in its ``info`` (``PENDING_KEY``) until its commit; events appended
straight into a request's transaction before any session opened (PostgreSQL) wait in that
transaction's ``info`` until it committed (``Database.on_commit``).

A failure while handing them on is logged, never raised: the transaction has committed, and the
request's answer must say so (an error would have its client send a finished write again). The
chain in the database stays whole: its next checkpoint covers these events too, and ``flask
audit export`` gives a sink what it missed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.audit.checkpoints import NEW_CHECKPOINTS_KEY, PENDING_KEY, committed_events, forget_pending
from app.audit.sinks import SinkRelay
from app.audit.witness import Checkpointer
from app.db import SESSIONS, Database
from app.models.audit import AuditEvent

log = logging.getLogger(__name__)


def init_committed(app: Flask, checkpointer: Checkpointer, relay: SinkRelay) -> None:
    factory = SESSIONS.get(app)

    def hand_on(events: Collection[AuditEvent], notes: Collection[str] = ()) -> None:
        try:
            checkpointer.transaction_committed(events, notes)
        except Exception:
            log.exception("committed audit events not handed to the checkpointer (%d)",
                          len(events))
        try:
            relay.forward(events)
        except Exception:
            log.exception("committed audit events not handed to the sinks (%d)", len(events))

    def committed(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint was released (after_commit fires for it too): not yet committed
        events = committed_events(session)
        forget_pending(session)
        made = session.info.pop(NEW_CHECKPOINTS_KEY, [])
        hand_on(events, [note for cp, note in made if cp in session])

    def rolled_back(session: Session, previous: SessionTransaction) -> None:
        if previous.parent is None:  # the outermost transaction rolled back, not a savepoint
            forget_pending(session)
            session.info.pop(NEW_CHECKPOINTS_KEY, None)

    def committed_directly(info: dict[str, Any]) -> None:
        hand_on(info.get(PENDING_KEY, []))

    event.listen(factory, "after_commit", committed)
    event.listen(factory, "after_soft_rollback", rolled_back)
    Database.on_commit(app, committed_directly)
