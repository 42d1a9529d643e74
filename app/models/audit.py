from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Dialect, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from app.db import Base, utcnow

SYSTEM_CHAIN = "system"
ERASED_ACTION = "household.erased"


class CanonicalJSON(TypeDecorator[Any]):
    """A JSON column whose stored text is canonical (sorted keys, no whitespace), so the verifier
    can hash the text as stored instead of parsing and re-serializing every entry."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], str | None]:
        def process(value: Any) -> str | None:
            if value is None:
                return None
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)

        return process


class AuditEvent(Base):
    """One entry of a hash chain: one chain per household, one per principal (their events of no
    household: logins, refreshes, denials) and the system chain (events of neither).

    ``(chain, seq)`` is unique, so two concurrent appends can never fork a chain.
    ``household_id`` is deliberately not a foreign key: the erasure record of a deleted household
    stays on the system chain.
    """

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("chain", "seq"),)

    # BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    chain: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(BigInteger)
    household_id: Mapped[str | None] = mapped_column(String(40), index=True)
    principal_id: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(100))
    resource: Mapped[str | None] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(10), default="allowed")
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(CanonicalJSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), index=True)  # event ids name it (proofs)

    # Not a column: whether this object's row went straight into the outermost transaction of
    # its connection (``app.audit.writer``, PostgreSQL) rather than through a session's unit of
    # work; such a row commits or rolls back with that transaction (``committed_events``).
    inserted_directly = False


class AuditCheckpoint(Base):
    """A chain's RFC 9162 tree of ``seq`` entries signed with the audit key (Ed25519) as a C2SP
    note: truncation of the newest entries up to ``seq`` is detectable, inclusion proofs are given
    against it, and an auditor checks it with the public key alone.

    ``note`` is the signed note (``signature`` its signature line's blob, ``key_id`` the note key
    id in hex), ``root_hash`` the tree's root (base64), ``frontier`` the tree's perfect-subtree
    roots (hex, comma-separated) from which the next checkpoint continues. Rows signed before
    notes existed have only ``signature`` over a JSON payload.
    """

    __tablename__ = "audit_checkpoints"
    __table_args__ = (UniqueConstraint("chain", "seq"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    chain: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(32))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    signature: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    root_hash: Mapped[str | None] = mapped_column(String(44))
    frontier: Mapped[str | None] = mapped_column(Text)
