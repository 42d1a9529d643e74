"""Signed JSON Lines exports, verifiable offline with the public key alone.

Line 1 is a header, then every entry (``type: event``, its hashed fields and hash) by chain and
seq, then every checkpoint (``type: checkpoint``, signed payload and signature), then a seal: the
number of lines before it, the SHA-256 of those lines' bytes, every chain's head, signed. Editing,
dropping or adding a line breaks the seal; cutting the seal off is reported as truncation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy.orm import Session

from app.audit.chain import canonical, fields_hash, timestamp
from app.audit.notes import NoteError, open_note
from app.audit.signing import PublicKeys, Signer
from app.audit.verify import (
    Entry,
    Problem,
    Report,
    stored_checkpoints,
    stored_entries,
    verify_chains,
)
from app.db import utcnow

FORMAT = "hearthgate-audit-export/1"
EXPORT_CHAIN = "(export)"


def _line(record: dict[str, Any]) -> str:
    return canonical(record).decode() + "\n"


def export_lines(session: Session, signer: Signer, chain: str | None = None) -> Iterator[str]:
    digest = hashlib.sha256()
    count = 0
    heads: dict[str, list[Any]] = {}

    def emit(record: dict[str, Any]) -> str:
        nonlocal count
        line = _line(record)
        digest.update(line.encode())
        count += 1
        return line

    yield emit({"type": "header", "format": FORMAT, "keyId": signer.key_id,
                "exportedAt": timestamp(utcnow())})
    for fields, stored in stored_entries(session, chain):
        heads[fields["chain"]] = [fields["seq"], stored]
        yield emit({"type": "event", **fields, "hash": stored})
    for cp in stored_checkpoints(session, chain):
        yield emit(cp)
    seal = {"type": "seal", "lines": count, "sha256": digest.hexdigest(), "heads": heads,
            "keyId": signer.key_id, "sealedAt": timestamp(utcnow())}
    yield _line({**seal, "signature": signer.sign(seal)})


def _failed(reason: str, detail: str, seq: int = 0) -> Report:
    return Report(problems=[Problem(EXPORT_CHAIN, seq, reason, detail)])


# An event line: "type", these hashed fields (app.audit.verify.stored_entries) and "hash".
_Types = type | tuple[type, ...]
_OPTIONAL = (str, type(None))
_EVENT_FIELDS: dict[str, _Types] = {
    "chain": str, "seq": int, "householdId": _OPTIONAL, "principalId": _OPTIONAL, "action": str,
    "resource": _OPTIONAL, "decision": str, "correlationId": _OPTIONAL, "details": dict,
    "createdAt": str, "prevHash": str}
_CHECKPOINT_FIELDS: dict[str, _Types] = {"chain": str, "seq": int, "headHash": str,
                                         "keyId": str, "signedAt": str, "signature": str}
_SHAPES = {"event": {**_EVENT_FIELDS, "hash": str}, "checkpoint": _CHECKPOINT_FIELDS}
_KINDS = {"header": 0, "event": 1, "checkpoint": 2}  # the order of an export's sections


def _record(raw: str) -> dict[str, Any] | None:
    """The line's JSON object, or None when it is not one."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _shape_problem(record: dict[str, Any] | None) -> str | None:
    """Why a line before the seal is not a well-formed header, event or checkpoint, if it is not."""
    if record is None:
        return "is not a JSON object"
    kind = record.get("type")
    if kind == "header":
        return None if record.get("format") == FORMAT else "is not an export header"
    expected = _SHAPES.get(kind if isinstance(kind, str) else "")
    if expected is None:
        return f"has an unknown type {kind!r}"
    for name, types in expected.items():
        if name not in record:
            return f"{kind} without {name!r}"
        value = record[name]
        if not isinstance(value, types) or (types is int and isinstance(value, bool)):
            return f"{kind} with a malformed {name!r}"
    return None


def _intact(record: dict[str, Any] | None, keys: PublicKeys) -> str | None:
    """Why a line does not hold on its own (shape, an event's hash, a checkpoint's signature)."""
    problem = _shape_problem(record)
    if problem is not None or record is None:
        return problem
    try:
        if record["type"] == "event":
            fields = {k: v for k, v in record.items() if k not in ("type", "hash")}
            if fields_hash(fields) != record["hash"]:
                return "event does not match its hash"
        if record["type"] == "checkpoint":
            return _checkpoint_problem(record, keys)
    except ValueError:  # canonical JSON refuses NaN and infinities
        return "is not canonical JSON"
    return None


def _checkpoint_problem(record: dict[str, Any], keys: PublicKeys) -> str | None:
    """A checkpoint line holds when its signed note opens with the public key and names its
    chain and size (rows signed before notes: their signed JSON payload verifies)."""
    note = record.get("note")
    if note is None:
        payload = {k: v for k, v in record.items() if k != "signature"}
        if not keys.verify(payload, record["signature"], record["keyId"]):
            return "checkpoint does not verify with the public key"
        return None
    try:
        opened = open_note(str(note), keys.keys)
    except NoteError:
        return "checkpoint's note does not verify with the public key"
    if opened.chain != record["chain"] or opened.size != record["seq"]:
        return "checkpoint does not match its signed note"
    return None


def _position(record: dict[str, Any]) -> tuple[int, str, int]:
    if record["type"] == "header":
        return (0, "", 0)
    return (_KINDS[record["type"]], record["chain"], record["seq"])


def _sealed(record: dict[str, Any], keys: PublicKeys) -> bool:
    """A seal whose signature verifies."""
    payload = {k: v for k, v in record.items() if k != "signature"}
    signature, key_id = record.get("signature"), record.get("keyId")
    return (record.get("type") == "seal" and isinstance(signature, str)
            and isinstance(key_id, str) and keys.verify(payload, signature, key_id))


def _difference(body: list[tuple[int, dict[str, Any] | None]], sealed_lines: int,
                keys: PublicKeys) -> Report:
    """Name what changed when the lines before a genuine seal are not the sealed ones: lines
    added, lines deleted, a line edited (the first that does not hold on its own), or intact
    lines out of the export's order (reordered)."""
    count = len(body)
    if count > sealed_lines:
        return _failed("added", f"the file has {count} lines before the seal; "
                                f"{sealed_lines} were sealed")
    if count < sealed_lines:
        return _failed("deleted", f"the file has {count} lines before the seal; "
                                  f"{sealed_lines} were sealed")
    for number, record in body:
        problem = _intact(record, keys)
        if problem is not None:
            return _failed("edited", f"line {number} {problem}")
    positions = [(number, _position(record)) for number, record in body if record is not None]
    for (_, before), (number, here) in zip(positions, positions[1:], strict=False):
        if here <= before:
            return _failed("reordered", f"line {number} is out of the export's order")
    if positions and positions[0][1][0] != 0:
        return _failed("reordered", "the header is not the first line")
    return _failed("edited", "the lines differ from the sealed lines")


def verify_export(lines: Iterable[str], keys: PublicKeys) -> Report:
    """Check an export's seal, then every chain and checkpoint in it, with public keys only.

    Every tamper is a problem with a reason, never an exception: ``truncated`` (no seal, or the
    file ends inside a line), ``bad signature`` (the last line is not a seal that verifies),
    ``added`` (more lines than sealed, or lines after the seal), ``deleted`` (fewer), ``edited``
    (a line changed, removed fields included), ``reordered`` (intact lines moved)."""
    digest = hashlib.sha256()
    body: list[tuple[int, dict[str, Any] | None]] = []
    seal: dict[str, Any] | None = None
    last: tuple[int, str, dict[str, Any] | None] | None = None
    after_seal: list[int] = []
    for number, raw in enumerate(lines, start=1):
        if seal is not None:
            after_seal.append(number)
            continue
        record = _record(raw)
        last = (number, raw, record)
        if record is not None and record.get("type") == "seal" and _sealed(record, keys):
            seal = record
            continue
        digest.update(raw.encode() if raw.endswith("\n") else (raw + "\n").encode())
        body.append((number, record))
    if seal is None:
        if last is None:
            return _failed("truncated", "the file is empty")
        number, raw, record = last
        if record is None and not raw.endswith("\n"):
            return _failed("truncated", f"the file ends inside line {number}")
        if record is not None and record.get("type") not in _KINDS:
            return _failed("bad signature",
                           f"line {number} is not a seal that verifies with the public key")
        return _failed("truncated", f"no seal after line {number}: the export was cut short")
    if after_seal:
        return _failed("added", f"line {after_seal[0]} follows the seal")
    if seal.get("lines") != len(body) or seal.get("sha256") != digest.hexdigest():
        sealed_lines = seal.get("lines")
        return _difference(body, sealed_lines if isinstance(sealed_lines, int) else -1, keys)
    # The lines are the signer's own: still, nothing below may fail on a malformed one.
    entries: list[Entry] = []
    checkpoints: list[dict[str, Any]] = []
    for number, record in body:
        problem = _shape_problem(record)
        if problem is not None or record is None:
            return _failed("edited", f"line {number} {problem}")
        if record["type"] == "event":
            fields = {k: v for k, v in record.items() if k not in ("type", "hash")}
            entries.append((fields, record["hash"]))
        elif record["type"] == "checkpoint":
            checkpoints.append(record)
    if not body or body[0][1] is None or body[0][1].get("type") != "header":
        return _failed("edited", "the first line is not an export header")
    entries.sort(key=lambda e: (e[0]["chain"], e[0]["seq"]))
    report = verify_chains(entries, checkpoints, keys)
    heads = {c: [f["seq"], h] for f, h in entries for c in [f["chain"]]}
    if not report.problems and heads != seal.get("heads"):
        report.problems.append(Problem(EXPORT_CHAIN, 0, "edited",
                                       "chain heads differ from the sealed heads"))
    return report
