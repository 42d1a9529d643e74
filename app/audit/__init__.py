"""The audit trail: hash-chained events, written in the caller's transaction, signed
checkpoints, verification, signed exports and sinks.

One chain per household plus the system chain. Each entry holds its sequence number, the previous
entry's hash and its own hash over a canonical serialization (``chain``); ``(chain, seq)`` is
unique, so concurrent appends cannot fork a chain (``writer``). Chain heads are signed with an
Ed25519 key (``signing``, ``checkpoints``); ``verify`` names the first bad sequence number;
``export`` writes signed JSON Lines that verify offline; ``sinks`` forwards committed events.
Each chain is also an RFC 9162 Merkle tree (``merkle``); checkpoints are C2SP signed notes over
its root (``notes``), handed to witnesses and signed on a timer (``witness``); ``proofs`` gives
and checks inclusion proofs; ``anomaly`` is a built-in sink raising ``security.alert`` events.
"""

from __future__ import annotations

from flask import Flask

from app.audit.anomaly import init_anomaly
from app.audit.chain import GENESIS, canonical, entry_hash, event_record, hashed_fields
from app.audit.committed import init_committed
from app.audit.redaction import redact_details
from app.audit.signing import init_signing
from app.audit.sinks import init_sinks
from app.audit.witness import init_witnesses
from app.audit.writer import Carried, erase_household, record, record_denial

__all__ = [
    "GENESIS",
    "Carried",
    "canonical",
    "entry_hash",
    "erase_household",
    "event_record",
    "hashed_fields",
    "init_audit",
    "record",
    "record_denial",
    "redact_details",
]


def init_audit(app: Flask) -> None:
    """The signing key and the sink forwarding (needs the secret store and the plugins)."""
    init_signing(app)
    init_committed(app, init_witnesses(app), init_sinks(app))
    init_anomaly(app)
