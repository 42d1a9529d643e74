"""Appending to a chain: in the caller's transaction, linked to the head, never forked.

``(chain, seq)`` is unique, so two appends can never both take a sequence number. On PostgreSQL a
transaction-scoped advisory lock per chain also queues concurrent appenders; the lock is released
at commit or rollback, after the holder's rows became visible, so the head read after taking it
is the real head and the insert goes straight into the caller's transaction. One round trip:
the function ``audit_append`` (migration a3) takes the lock, reads the head, links the entry (its
hash over the canonical serialization this module hands over, ``chain.hash_parts``) and inserts
it; the hash it returns is checked against this module's own before anything goes on. Should the
unique index still refuse the entry (a writer that bypassed the lock), the error propagates and
the caller's transaction fails: nothing it recorded commits. Elsewhere (SQLite) the insert runs in
a savepoint and a lost race is retried against the new head.

Events appended in a transaction are listed in the session (``PENDING_KEY``) for the sinks and
witnesses after commit. An event inserted within a savepoint goes through the session's unit of
work, which forgets it should the savepoint roll back; one inserted in the outermost transaction
commits or rolls back with it (``checkpoints.committed_events``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from flask import current_app, g, has_app_context, has_request_context
from sqlalchemy import Integer, String, bindparam, column, delete, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

from app.audit.chain import GENESIS, entry_hash, hash_parts, normalise_details
from app.audit.checkpoints import PENDING_KEY, drop_checkpoints, newest_checkpoint, sign_head
from app.audit.redaction import redact_details
from app.audit.signing import signer
from app.audit.witness import hand_to_witnesses
from app.context import request_id
from app.db import SESSIONS, db, utcnow
from app.fastread import Returning
from app.models.audit import ERASED_ACTION, SYSTEM_CHAIN, AuditEvent
from app.rawtransaction import RequestTransaction

APPEND_ATTEMPTS = 20


def _chain_lock_key(chain: str) -> int:
    return int.from_bytes(hashlib.sha256(chain.encode()).digest()[:8], "big", signed=True)


# PostgreSQL (migration a3): the chain's advisory lock (held to the end of the transaction) and
# its head, in one call; and the whole append, lock, head, link and insert, in one call.
_LOCKED_HEAD = text("SELECT head_seq, head_hash FROM audit_chain_head(:chain, :key)")
_APPEND = text(
    "SELECT new_seq, new_prev_hash, new_hash FROM audit_append(:audit_chain, :audit_key, "
    ":audit_household_id, :audit_principal_id, :audit_action, :audit_resource, :audit_decision, "
    ":audit_correlation_id, CAST(:audit_details AS json), :audit_created_at, :audit_before, "
    ":audit_between, :audit_genesis)").columns(
    column("new_seq", Integer), column("new_prev_hash", String), column("new_hash", String))


class Carried:
    """A change built once (an INSERT, UPDATE or DELETE that returns nothing) whose audit event
    ``record`` appends with it: on PostgreSQL the change is a WITH clause of the append's call,
    so both go to the database in one round trip (PostgreSQL runs a data-modifying WITH clause
    exactly once, to completion, whether or not anything reads it); elsewhere, and within a
    savepoint, it runs just before the append. Either way both are in the caller's transaction
    and fail with it. Its parameters must not start with ``audit_`` (the append's)."""

    __slots__ = ("statement", "with_append")

    def __init__(self, statement: UpdateBase, name: str) -> None:
        self.statement = statement
        self.with_append = Returning(_APPEND.add_cte(statement.cte(name)))


# The append alone, compiled once (``app.fastread``) as ``Carried.with_append`` is: sent straight
# to the driver, in the transaction of the connection it is given.
_APPEND_ALONE = Returning(_APPEND)
_HEAD = (
    select(AuditEvent.seq, AuditEvent.hash)
    .where(AuditEvent.chain == bindparam("chain"))
    .order_by(AuditEvent.seq.desc())
    .limit(1)
)


def _locks_chains(session: Session) -> bool:
    """Whether appends on ``session`` queue on the chain's advisory lock (PostgreSQL)."""
    return session.get_bind().dialect.name == "postgresql"


def _locked_head(session: Session, chain: str) -> tuple[int, str]:
    """Take ``chain``'s advisory lock and read its head, in one round trip (PostgreSQL)."""
    row = session.connection().execute(
        _LOCKED_HEAD, {"chain": chain, "key": _chain_lock_key(chain)}).first()
    return (row[0], row[1]) if row else (0, GENESIS)


def _head(session: Session, chain: str) -> tuple[int, str]:
    row = session.execute(_HEAD, {"chain": chain}).first()
    return (row[0], row[1]) if row else (0, GENESIS)


def _link(event: AuditEvent, head: tuple[int, str]) -> None:
    event.seq = head[0] + 1
    event.prev_hash = head[1]
    event.hash = entry_hash(event)


def _checkpoint_every() -> int:
    return int(current_app.config.get("AUDIT_CHECKPOINT_EVERY") or 0) if has_app_context() else 0


def _append(session: Session, event: AuditEvent,
            carried: tuple[Carried, Mapping[str, Any]] | None = None) -> AuditEvent:
    """Link ``event`` to its chain's head and add it. On PostgreSQL under the chain's lock, once;
    elsewhere retried only when a concurrent writer took the sequence number. Any other failure
    propagates: the caller's change must not commit."""
    every = _checkpoint_every()
    if _locks_chains(session):
        # The lock queues every appender of this chain: no savepoint, no retry (module docstring).
        if session.in_nested_transaction():
            # Through the unit of work, which forgets the event should the savepoint roll back.
            _carry(session, carried)
            _link(event, _locked_head(session, event.chain))
            _insert(session, event, every)
        else:
            _append_directly(session.connection(), event, carried)
            _checkpoint(session, event, every)
    else:
        _carry(session, carried)
        _insert_racing(session, event, every)
    session.info.setdefault(PENDING_KEY, []).append(event)
    return event


def _carry(session: Session, carried: tuple[Carried, Mapping[str, Any]] | None) -> None:
    """The carried change on its own statement (not sent with the append)."""
    if carried is not None:
        session.connection().execute(carried[0].statement, carried[1])


def _append_directly(connection: Connection | RequestTransaction, event: AuditEvent,
                     carried: tuple[Carried, Mapping[str, Any]] | None) -> None:
    """``audit_append`` (PostgreSQL): lock, head, link and insert in one round trip, with the
    carried change if any, in the outermost transaction of ``connection`` (the event is then
    ``inserted_directly``: it commits with that transaction, not with a session's unit of work)."""
    before, between, details = hash_parts(event)
    params = {
        "audit_chain": event.chain, "audit_key": _chain_lock_key(event.chain),
        "audit_household_id": event.household_id, "audit_principal_id": event.principal_id,
        "audit_action": event.action, "audit_resource": event.resource,
        "audit_decision": event.decision, "audit_correlation_id": event.correlation_id,
        "audit_details": details, "audit_created_at": event.created_at,
        "audit_before": before, "audit_between": between, "audit_genesis": GENESIS,
    }
    if carried is None:
        append = _APPEND_ALONE
    else:
        append = carried[0].with_append
        params.update(carried[1])
    rows = append.rows_on(connection, params)
    if len(rows) != 1:
        raise RuntimeError(f"audit chain {event.chain}: the append returned {len(rows)} rows")
    row = rows[0]
    event.seq, event.prev_hash, event.hash = row["new_seq"], row["new_prev_hash"], row["new_hash"]
    if event.hash != entry_hash(event):
        # Never expected: the database serialized the entry otherwise than the verifier will.
        raise RuntimeError(f"audit chain {event.chain}: the linked entry's hash is not its own")
    event.inserted_directly = True


def _insert(session: Session, event: AuditEvent, checkpoint_every: int) -> None:
    session.add(event)
    session.flush()
    _checkpoint(session, event, checkpoint_every)


def _checkpoint(session: Session | None, event: AuditEvent, checkpoint_every: int) -> None:
    """Sign the chain's head at ``event`` if a checkpoint is due there, in ``session``; ``None``:
    the request's session, opened only then (``_append_in_request``)."""
    if checkpoint_every and event.seq % checkpoint_every == 0:
        sign_head(db.session if session is None else session, signer(), event.chain, event.seq,
                  event.hash)


def _insert_racing(session: Session, event: AuditEvent, checkpoint_every: int) -> None:
    """Without a lock: each attempt in a savepoint, again against the new head after a lost race."""
    for _ in range(APPEND_ATTEMPTS):
        _link(event, _head(session, event.chain))
        try:
            with session.begin_nested():
                _insert(session, event, checkpoint_every)
            return
        except IntegrityError:
            if event in session:
                session.expunge(event)
            if _head(session, event.chain)[0] < event.seq:
                raise  # not a lost race: something else is wrong
    raise RuntimeError(f"audit chain {event.chain} is contended; event not written")


def chain_of(household_id: str | None, principal_id: str | None) -> str:
    """A household's events go to its chain; events of no household to their principal's own
    chain (logins, refreshes, denials), so that users never queue behind each other; events of
    neither (command-line administration, anonymous failures) to the system chain."""
    return household_id or principal_id or SYSTEM_CHAIN


def _new_event(
    action: str, *, household_id: str | None, resource: str | None, decision: str,
    details: Mapping[str, Any] | None, principal_id: str | None,
) -> AuditEvent:
    if principal_id is None and has_request_context():
        principal = g.get("principal")
        principal_id = principal.user_id if principal is not None else None
    return AuditEvent(
        chain=chain_of(household_id, principal_id),
        household_id=household_id,
        principal_id=principal_id,
        action=action,
        resource=resource,
        decision=decision,
        correlation_id=request_id(),
        details=normalise_details(redact_details(details)),
        created_at=utcnow(),
    )


def record(
    action: str,
    *,
    household_id: str | None = None,
    resource: str | None = None,
    decision: str = "allowed",
    details: Mapping[str, Any] | None = None,
    principal_id: str | None = None,
    session: Session | None = None,
    carried: tuple[Carried, Mapping[str, Any]] | None = None,
) -> AuditEvent:
    """Append an event in the current transaction (the request's session by default): it
    commits with the change it records, or not at all. ``carried``: the change it records and
    its parameters, sent with the append where the database allows (``Carried``)."""
    event = _new_event(action, household_id=household_id, resource=resource, decision=decision,
                       details=details, principal_id=principal_id)
    if session is None and (raw := _request_transaction()) is not None:
        return _append_in_request(raw, event, carried)
    return _append(session or db.session, event, carried)


def _request_transaction() -> RequestTransaction | None:
    """The request's transaction when an append goes straight into it without a session: on
    PostgreSQL (one round trip, no savepoint), while the request has opened no session (whose
    unit of work would then have to be flushed first)."""
    if (not has_request_context() or db.opened_session() is not None
            or db.engine().dialect.name != "postgresql"):
        return None
    connection = db.connection()
    return connection if isinstance(connection, RequestTransaction) else None


def _append_in_request(raw: RequestTransaction, event: AuditEvent,
                       carried: tuple[Carried, Mapping[str, Any]] | None) -> AuditEvent:
    """``_append`` for the request's transaction, without a session: the event waits in the
    transaction's ``info`` for the sinks and witnesses, which get it once that commits
    (``Database.on_commit``), or, should a session adopt the transaction, with the session's
    own (``session.info``). A checkpoint due now is signed in the request's session (opened
    for it: it adopts the same transaction)."""
    _append_directly(raw, event, carried)
    raw.info.setdefault(PENDING_KEY, []).append(event)
    _checkpoint(None, event, _checkpoint_every())
    return event


def record_denial(
    action: str,
    *,
    household_id: str | None = None,
    resource: str | None = None,
    details: Mapping[str, Any] | None = None,
    principal_id: str | None = None,
) -> None:
    """Append and commit a ``denied`` event on its own session.

    A denial ends its request, so the request's transaction is rolled back first: nothing it
    did commits (an Idempotency-Key row included), and the locks it holds go with it. The
    denial's session would otherwise wait on this very thread: for SQLite's write lock, which a
    request that has written (or began as a writer) holds, or for a chain or row lock on
    PostgreSQL.
    """
    if has_request_context():
        db.rollback()
    factory = SESSIONS.get()
    with factory() as session:
        event = _new_event(action, household_id=household_id, resource=resource,
                           decision="denied", details=details, principal_id=principal_id)
        _append(session, event)
        session.commit()


def erase_household(household_id: str, session: Session | None = None) -> AuditEvent | None:
    """Delete a household's chain and its checkpoints, and append to the system chain an erasure
    record that carries the deleted chain's final head and final signed checkpoint, so the
    erasure itself is provable: that checkpoint goes to the witnesses, and ``verify`` accepts an
    erased chain whose witnessed end is exactly it.
    Same transaction as the household's deletion."""
    session = session or db.session
    final_seq, final_hash = (_locked_head if _locks_chains(session) else _head)(
        session, household_id)
    final = newest_checkpoint(session, household_id)
    if final is None or final.seq < final_seq or final.note is None:
        final = sign_head(session, signer(), household_id, final_seq, final_hash)
        session.flush()
    if final.note is not None and has_app_context():
        # Witnessed now, while the entries that prove it extends the witnessed tree still exist.
        # Should the erasure roll back, the witness holds a true checkpoint of a live chain.
        hand_to_witnesses(current_app._get_current_object(),  # type: ignore[attr-defined]
                          session, [final.note])
    session.execute(delete(AuditEvent).where(AuditEvent.chain == household_id))
    drop_checkpoints(session, household_id)
    erasure = _new_event(ERASED_ACTION, household_id=None, resource=f"household:{household_id}",
                         decision="allowed", principal_id=None, details={
                             "erasedHouseholdId": household_id,
                             "finalSeq": final_seq,
                             "finalHeadHash": final_hash,
                             "finalCheckpoint": final.note,
                         })
    erasure.chain = SYSTEM_CHAIN  # rare, and found by auditors in one place
    return _append(session, erasure)
