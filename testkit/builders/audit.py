"""Helpers of the audit tests: write events through the real API, tamper with rows directly."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from app import audit
from app.audit.chain import entry_hash
from app.audit.signing import PublicKeys, signer
from app.audit.verify import Report, verify_database
from app.db import SESSIONS, Database
from app.models import AuditCheckpoint, AuditEvent


def session_of(app: Flask) -> Session:
    session: Session = SESSIONS.get(app)()
    return session


def write_events(app: Flask, count: int, household_id: str | None = None, **details: Any) -> None:
    """``count`` events, each committed in its own transaction."""
    with app.app_context(), session_of(app) as session:
        for n in range(count):
            audit.record("test.event", household_id=household_id, resource=f"thing:{n}",
                         details={"n": n, **details}, session=session)
            session.commit()


def verify(app: Flask, chain: str | None = None) -> Report:
    with app.app_context(), session_of(app) as session:
        return verify_database(session, PublicKeys([signer(app).public_key]), chain)


def chain_rows(app: Flask, chain: str) -> list[AuditEvent]:
    with session_of(app) as session:
        return list(session.scalars(
            select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)))


def edit(session: Session, chain: str, at: int, /, **values: Any) -> None:
    session.execute(update(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq == at)
                    .values(**values))


def edit_and_rehash(session: Session, chain: str, at: int, /, **values: Any) -> None:
    """Edit one entry and recompute its own hash (but not the next entry's link)."""
    row = session.scalars(select(AuditEvent).where(AuditEvent.chain == chain,
                                                   AuditEvent.seq == at)).one()
    for key, value in values.items():
        setattr(row, key, value)
    row.hash = entry_hash(row)
    session.flush()


def remove(session: Session, chain: str, seq: int) -> None:
    session.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq == seq))


def swap(session: Session, chain: str, a: int, b: int) -> None:
    edit(session, chain, a, seq=-1)
    edit(session, chain, b, seq=a)
    edit(session, chain, -1, seq=b)


def rehash_from(session: Session, chain: str, seq: int) -> None:
    """What a careful forger does: recompute every hash from ``seq`` on, so the chain is
    internally consistent again."""
    rows = session.scalars(select(AuditEvent).where(AuditEvent.chain == chain)
                           .order_by(AuditEvent.seq)).all()
    prev = audit.GENESIS
    for row in rows:
        if row.seq >= seq:
            row.prev_hash = prev
            row.hash = entry_hash(row)
        prev = row.hash
    session.flush()


def forge_signature(session: Session, chain: str, seq: int) -> None:
    cp = session.scalars(select(AuditCheckpoint).where(AuditCheckpoint.chain == chain,
                                                       AuditCheckpoint.seq == seq)).one()
    # The signed note now names another root: its signature no longer matches its text.
    assert cp.note is not None
    origin, size, root, rest = cp.note.split("\n", 3)
    cp.note = "\n".join([origin, size, base64.b64encode(b"\xff" * 32).decode(), rest])


FAIL_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER audit_write_fails BEFORE INSERT ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit storage failed'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_write_fails() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit storage failed'; END $$",
        "CREATE TRIGGER audit_write_fails BEFORE INSERT ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_write_fails()",
    ],
}
DROP_TRIGGER = {
    "sqlite": ["DROP TRIGGER audit_write_fails"],
    "postgresql": ["DROP TRIGGER audit_write_fails ON audit_events",
                   "DROP FUNCTION audit_write_fails()"],
}


@contextmanager
def failing_audit_storage(app: Flask) -> Iterator[None]:
    """The database refuses every audit insert, as a full disk or a broken table would, until the
    block ends."""
    engine = Database.engine(app)
    dialect = engine.dialect.name
    with engine.begin() as connection:
        for statement in FAIL_TRIGGER[dialect]:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with engine.begin() as connection:
            for statement in DROP_TRIGGER[dialect]:
                connection.execute(text(statement))
