"""Canonical serialization and hashes of chain entries, shared by the writer, the verifier, the
export and the sinks, so that all four agree byte for byte.

An entry's hash covers every stored field but its row id and its own hash. ``createdAt`` is
rendered with microseconds: both SQLite (text) and PostgreSQL (``timestamp``, precision 6) store
exactly that, so a re-read entry hashes the same. ``details`` is normalised through JSON before
it is stored, so what is hashed is exactly what the JSON column gives back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.models.audit import AuditEvent

GENESIS = "0" * 64

def canonical(fields: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8; NaN and infinities are refused (not JSON)."""
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
        default=str,
    ).encode()


def normalise_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """``details`` as the JSON column will give it back (tuples as lists, keys as strings)."""
    normalised: dict[str, Any] = json.loads(canonical(details))
    return normalised


def timestamp(value: datetime) -> str:
    if value.tzinfo is not None:
        raise ValueError("audit timestamps are naive UTC")
    return value.isoformat(timespec="microseconds") + "Z"


class RawJSON(str):
    """``details`` as the text the database holds (``CanonicalJSON`` writes it canonical): the
    verifier splices it into the entry's serialization instead of parsing and re-serializing."""

    def parsed(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self)
        return value


_encode_text = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses


def _text(value: str | None) -> str:
    return "null" if value is None else str(_encode_text(value))


def _spliced(f: Mapping[str, Any]) -> bytes:
    # The keys of hashed_fields() in sorted order, as canonical() would write them.
    return (
        '{"action":' + _text(f["action"]) + ',"chain":' + _text(f["chain"])
        + ',"correlationId":' + _text(f["correlationId"]) + ',"createdAt":' + _text(f["createdAt"])
        + ',"decision":' + _text(f["decision"]) + ',"details":' + str(f["details"])
        + ',"householdId":' + _text(f["householdId"]) + ',"prevHash":' + _text(f["prevHash"])
        + ',"principalId":' + _text(f["principalId"]) + ',"resource":' + _text(f["resource"])
        + ',"seq":' + str(int(f["seq"])) + "}"
    ).encode()


def fields_hash(fields: Mapping[str, Any]) -> str:
    details = fields.get("details")
    if isinstance(details, RawJSON):
        return hashlib.sha256(_spliced(fields)).hexdigest()
    return hashlib.sha256(canonical(fields)).hexdigest()


def parsed_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with raw stored details parsed (for exports, and when the stored text is not
    canonical, e.g. rewritten by hand)."""
    details = fields.get("details")
    if isinstance(details, RawJSON):
        return {**fields, "details": details.parsed()}
    return dict(fields)


def hashed_fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "chain": event.chain,
        "seq": event.seq,
        "householdId": event.household_id,
        "principalId": event.principal_id,
        "action": event.action,
        "resource": event.resource,
        "decision": event.decision,
        "correlationId": event.correlation_id,
        "details": event.details,
        "createdAt": timestamp(event.created_at),
        "prevHash": event.prev_hash,
    }


def hash_parts(event: AuditEvent) -> tuple[bytes, bytes, str]:
    """The canonical serialization of ``event`` around the two fields its chain's head decides:
    the bytes before the ``prevHash`` value, the bytes between it and the ``seq`` value, and the
    ``details`` as canonical JSON text. The entry's serialization is ``before`` + the JSON string
    of ``prev_hash`` + ``between`` + ``seq`` + ``}`` (keys sorted: ``seq`` is the last field), byte
    for byte what ``canonical(hashed_fields(event))`` gives; the database completes it when it
    links the entry (migration a3)."""
    details = canonical(event.details).decode()
    before = (
        '{"action":' + _text(event.action) + ',"chain":' + _text(event.chain)
        + ',"correlationId":' + _text(event.correlation_id)
        + ',"createdAt":' + _text(timestamp(event.created_at))
        + ',"decision":' + _text(event.decision) + ',"details":' + details
        + ',"householdId":' + _text(event.household_id) + ',"prevHash":'
    )
    between = ',"principalId":' + _text(event.principal_id) + ',"resource":' + _text(
        event.resource) + ',"seq":'
    return before.encode(), between.encode(), details


def entry_hash(event: AuditEvent) -> str:
    return fields_hash(hashed_fields(event))


def event_record(event: AuditEvent) -> dict[str, Any]:
    """The event as sinks and exports see it: the hashed fields plus its hash."""
    return {**hashed_fields(event), "hash": event.hash}
