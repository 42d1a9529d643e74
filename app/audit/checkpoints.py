"""Signed checkpoints: a chain's RFC 9162 tree (size and root hash) as a C2SP signed note.

A checkpoint row keeps the note, its root and the tree's frontier (``merkle.Frontier``), so the
next checkpoint of the chain hashes only the entries written since: signing stays as cheap at
100,000 entries as at 1,000. Checkpoints signed in a transaction are listed in the session
(``NEW_CHECKPOINTS_KEY``) and handed to the witnesses after it commits (``witness``).
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.audit.chain import timestamp
from app.audit.merkle import Frontier, leaf_hash
from app.audit.notes import sign_note
from app.audit.signing import Signer
from app.db import utcnow
from app.models.audit import AuditCheckpoint, AuditEvent

NEW_CHECKPOINTS_KEY = "hearthgate.audit.new_checkpoints"  # session.info: (row, note) to witness
PENDING_KEY = "hearthgate.audit.pending"  # session.info: events to forward after commit


def committed_events(session: Session) -> list[AuditEvent]:
    """The events appended in the transaction ``session`` just committed (``PENDING_KEY``): those
    still in the session (an insert of the unit of work, expunged should its savepoint roll back)
    and those inserted straight into the outermost transaction (``inserted_directly``), which
    committed them."""
    pending: list[AuditEvent] = session.info.get(PENDING_KEY, [])
    return [event for event in pending if event.inserted_directly or event in session]


def forget_pending(session: Session) -> None:
    """Drop the session's list of appended events (after its transaction ended)."""
    session.info.pop(PENDING_KEY, None)


def checkpoint_payload(chain: str, seq: int, head_hash: str, key_id: str, signed_at: str
                       ) -> dict[str, Any]:
    return {"type": "checkpoint", "chain": chain, "seq": seq, "headHash": head_hash,
            "keyId": key_id, "signedAt": signed_at}


def checkpoint_record(cp: AuditCheckpoint) -> dict[str, Any]:
    """The checkpoint as exports and the verifier carry it: the signed note (``note``, what is
    checked), with the head it covers; rows signed before notes carry a signed JSON payload."""
    record = {**checkpoint_payload(cp.chain, cp.seq, cp.head_hash, cp.key_id,
                                   timestamp(cp.signed_at)), "signature": cp.signature}
    if cp.note is not None:
        record["note"] = cp.note
    return record


def _encode_frontier(frontier: Frontier) -> str:
    return ",".join(h.hex() for h in frontier.hashes)


def _decode_frontier(size: int, text: str) -> Frontier:
    return Frontier(size, [bytes.fromhex(h) for h in text.split(",") if h])


def tree_at(session: Session, chain: str, size: int) -> Frontier:
    """The chain's tree over its first ``size`` entries, from the nearest checkpoint below."""
    base = session.execute(
        select(AuditCheckpoint.seq, AuditCheckpoint.frontier)
        .where(AuditCheckpoint.chain == chain, AuditCheckpoint.seq <= size,
               AuditCheckpoint.frontier.is_not(None))
        .order_by(AuditCheckpoint.seq.desc()).limit(1)
    ).first()
    frontier = _decode_frontier(base[0], base[1]) if base else Frontier()
    hashes = session.scalars(
        select(AuditEvent.hash)
        .where(AuditEvent.chain == chain, AuditEvent.seq > frontier.size, AuditEvent.seq <= size)
        .order_by(AuditEvent.seq)
    )
    for entry in hashes:
        frontier.append(leaf_hash(entry))
    if frontier.size != size:
        raise LookupError(f"chain {chain} has no entry {frontier.size + 1}")
    return frontier


def signature_of(note: str) -> str:
    """The base64 of key id ‖ signature from a note's (single) signature line."""
    return note.rstrip("\n").rsplit(" ", 1)[1]


def sign_head(session: Session, signer: Signer, chain: str, seq: int, head_hash: str
              ) -> AuditCheckpoint:
    frontier = tree_at(session, chain, seq)
    root = frontier.root()
    note = sign_note(signer.private_key, chain, seq, root)
    checkpoint = AuditCheckpoint(
        chain=chain, seq=seq, head_hash=head_hash, key_id=signer.note_key_id,
        signed_at=utcnow(), signature=signature_of(note), note=note,
        root_hash=base64.b64encode(root).decode(), frontier=_encode_frontier(frontier),
    )
    session.add(checkpoint)
    session.info.setdefault(NEW_CHECKPOINTS_KEY, []).append((checkpoint, note))
    return checkpoint


def newest_checkpoint(session: Session, chain: str) -> AuditCheckpoint | None:
    return session.scalars(
        select(AuditCheckpoint).where(AuditCheckpoint.chain == chain)
        .order_by(AuditCheckpoint.seq.desc()).limit(1)
    ).first()


def checkpoint_all(session: Session, signer: Signer, chain: str | None = None
                   ) -> list[AuditCheckpoint]:
    """Sign the head of every chain (or one) that moved since its last checkpoint. One chain
    costs index lookups only (the timer thread signs chain by chain)."""
    if chain is not None:
        newest = session.scalar(select(AuditEvent.seq).where(AuditEvent.chain == chain)
                                .order_by(AuditEvent.seq.desc()).limit(1))
        found = [(chain, newest)] if newest is not None else []
    else:
        found = [(c, s) for c, s in session.execute(
            select(AuditEvent.chain, func.max(AuditEvent.seq)).group_by(AuditEvent.chain)).all()]
    made = []
    for head_chain, head_seq in found:
        last = session.scalar(
            select(AuditCheckpoint.seq).where(AuditCheckpoint.chain == head_chain)
            .order_by(AuditCheckpoint.seq.desc()).limit(1)
        )
        if last is not None and last >= head_seq:
            continue
        head_hash = session.scalar(
            select(AuditEvent.hash).where(AuditEvent.chain == head_chain,
                                          AuditEvent.seq == head_seq)
        )
        assert head_hash is not None  # noqa: S101 - the row was just found
        made.append(sign_head(session, signer, head_chain, head_seq, head_hash))
    return made


def drop_checkpoints(session: Session, chain: str) -> None:
    session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.chain == chain))
