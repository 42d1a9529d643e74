"""The audit record API that every feature emits into (the full trail is its own issue)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from app import audit
from app.db import db
from app.models import AuditEvent


def test_record_links_a_chain_and_redacts(app: Flask) -> None:
    with app.test_request_context():
        audit.record("test.one", household_id=None, details={"confirmationToken": "abc", "n": 1})
        audit.record("test.two", details={"nested": {"password": "pw"}})
        db.session.commit()
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.seq for e in events] == [1, 2]
    assert events[0].prev_hash == audit.GENESIS and events[1].prev_hash == events[0].hash
    assert events[0].details == {"confirmationToken": "[REDACTED]", "n": 1}
    assert events[1].details == {"nested": {"password": "[REDACTED]"}}
    assert all(e.hash == audit.entry_hash(e) for e in events)


def test_record_rolls_back_with_its_transaction(app: Flask) -> None:
    with app.test_request_context():
        audit.record("test.rolled-back")
        db.session.rollback()
        audit.record_denial("test.denied", resource="thing")
        rows = db.session.scalars(select(AuditEvent)).all()
    assert [(e.action, e.decision, e.seq) for e in rows] == [("test.denied", "denied", 1)]
