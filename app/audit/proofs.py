"""Inclusion proofs of single events against a signed checkpoint, verifiable offline.

A proof is ``{"eventId", "chain", "leafIndex", "treeSize", "leafHash", "inclusionPath",
"checkpoint"}`` (hashes in standard base64, ``checkpoint`` the signed note): the leaf is the
event's RFC 9162 leaf hash, the path leads to the root the note signs. ``verify_proof`` needs the
public key alone. Event ids (``evt_`` and the first 32 hex digits of the entry hash) name an
entry by its content, so no column is added and the id is the same on every copy of the trail.
The entries and checkpoints are read through ``app.fastread`` on the current transaction.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import bindparam, select

from app.audit.merkle import inclusion_path, leaf_hash, verify_inclusion
from app.audit.notes import NoteError, open_note
from app.fastread import Read
from app.models.audit import AuditCheckpoint, AuditEvent

EVENT_ID_PREFIX = "evt_"
_ID_HEX = 32


def event_id(entry_hash: str) -> str:
    return EVENT_ID_PREFIX + entry_hash[:_ID_HEX]


_EVENT = Read(
    select(AuditEvent.chain, AuditEvent.seq, AuditEvent.hash, AuditEvent.principal_id)
    .where(AuditEvent.hash >= bindparam("low"), AuditEvent.hash < bindparam("high")).limit(1))
_NEWEST_CHECKPOINT = Read(
    select(AuditCheckpoint.seq, AuditCheckpoint.note)
    .where(AuditCheckpoint.chain == bindparam("chain"), AuditCheckpoint.note.is_not(None))
    .order_by(AuditCheckpoint.seq.desc()).limit(1))
_HASHES = Read(
    select(AuditEvent.hash)
    .where(AuditEvent.chain == bindparam("chain"), AuditEvent.seq <= bindparam("size"))
    .order_by(AuditEvent.seq))


def find_event(eventid: str) -> dict[str, Any] | None:
    """The entry an event id names (a range scan over the indexed hash column): its ``chain``,
    ``seq``, ``hash`` and ``principal_id``."""
    prefix = eventid[len(EVENT_ID_PREFIX):]
    if (not eventid.startswith(EVENT_ID_PREFIX) or len(prefix) != _ID_HEX
            or any(c not in "0123456789abcdef" for c in prefix)):
        return None
    return _EVENT.first({"low": prefix, "high": prefix + "g"})


@dataclass(frozen=True)
class NotYetCheckpointed(Exception):
    """The event is newer than its chain's newest checkpoint."""

    retry_after: int


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def build_proof(event: Mapping[str, Any], retry_after: int) -> dict[str, Any]:
    """The inclusion proof of ``event`` (as ``find_event`` gives it) against its chain's newest
    checkpoint."""
    checkpoint = _NEWEST_CHECKPOINT.first({"chain": event["chain"]})
    if checkpoint is None or checkpoint["seq"] < event["seq"] or checkpoint["note"] is None:
        raise NotYetCheckpointed(retry_after)
    hashes = _HASHES.rows({"chain": event["chain"], "size": checkpoint["seq"]})
    leaves = [leaf_hash(row["hash"]) for row in hashes]
    index = event["seq"] - 1
    return {
        "eventId": event_id(event["hash"]),
        "chain": event["chain"],
        "leafIndex": index,
        "treeSize": checkpoint["seq"],
        "leafHash": _b64(leaves[index]),
        "inclusionPath": [_b64(node) for node in inclusion_path(index, leaves)],
        "checkpoint": checkpoint["note"],
    }


def verify_proof(proof: Mapping[str, Any], keys: Iterable[Ed25519PublicKey],
                 entry_hash: str | None = None) -> list[str]:
    """What is wrong with ``proof`` (empty: it proves the event is in the signed tree).
    ``entry_hash``, when known, must be the event's: its leaf is recomputed from it."""
    try:
        note = open_note(str(proof["checkpoint"]), keys)
    except NoteError as exc:
        return [f"checkpoint: {exc}"]
    except KeyError:
        return ["no checkpoint"]
    try:
        index, size = int(proof["leafIndex"]), int(proof["treeSize"])
        leaf = base64.b64decode(str(proof["leafHash"]), validate=True)
        path = [base64.b64decode(str(p), validate=True) for p in proof["inclusionPath"]]
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        return [f"malformed proof: {exc}"]
    problems = []
    if note.chain != proof.get("chain"):
        problems.append(f"the checkpoint is of chain {note.chain}, not {proof.get('chain')}")
    if note.size != size:
        problems.append(f"the checkpoint signs tree size {note.size}, not {size}")
    if entry_hash is not None:
        if leaf != leaf_hash(entry_hash):
            problems.append("the leaf hash is not the event's")
        if proof.get("eventId") != event_id(entry_hash):
            problems.append("the event id is not the event's")
    if not verify_inclusion(index, note.size, leaf, path, note.root):
        problems.append(f"the path does not lead from leaf {index} to the signed root")
    return problems
