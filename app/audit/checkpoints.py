"""Signed checkpoints: a chain's head (seq and hash) signed with the audit key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.audit.chain import timestamp
from app.audit.signing import Signer
from app.db import utcnow
from app.models.audit import AuditCheckpoint, AuditEvent


def checkpoint_payload(chain: str, seq: int, head_hash: str, key_id: str, signed_at: str
                       ) -> dict[str, Any]:
    return {"type": "checkpoint", "chain": chain, "seq": seq, "headHash": head_hash,
            "keyId": key_id, "signedAt": signed_at}


def checkpoint_record(cp: AuditCheckpoint) -> dict[str, Any]:
    """The checkpoint as exports carry it: the signed payload plus its signature."""
    return {**checkpoint_payload(cp.chain, cp.seq, cp.head_hash, cp.key_id,
                                 timestamp(cp.signed_at)), "signature": cp.signature}


def sign_head(session: Session, signer: Signer, chain: str, seq: int, head_hash: str
              ) -> AuditCheckpoint:
    signed_at = utcnow()
    payload = checkpoint_payload(chain, seq, head_hash, signer.key_id, timestamp(signed_at))
    checkpoint = AuditCheckpoint(chain=chain, seq=seq, head_hash=head_hash,
                                 key_id=signer.key_id, signed_at=signed_at,
                                 signature=signer.sign(payload))
    session.add(checkpoint)
    return checkpoint


def checkpoint_all(session: Session, signer: Signer, chain: str | None = None
                   ) -> list[AuditCheckpoint]:
    """Sign the head of every chain (or one) that moved since its last checkpoint."""
    heads = (
        select(AuditEvent.chain, func.max(AuditEvent.seq).label("seq"))
        .group_by(AuditEvent.chain)
    )
    if chain is not None:
        heads = heads.where(AuditEvent.chain == chain)
    made = []
    for head_chain, head_seq in session.execute(heads).all():
        last = session.scalar(
            select(func.max(AuditCheckpoint.seq)).where(AuditCheckpoint.chain == head_chain)
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
