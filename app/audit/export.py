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

from app.audit.chain import canonical, timestamp
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


def verify_export(lines: Iterable[str], keys: PublicKeys) -> Report:
    """Check an export's seal, then every chain and checkpoint in it, with public keys only."""
    digest = hashlib.sha256()
    count = 0
    entries: list[Entry] = []
    checkpoints: list[dict[str, Any]] = []
    seal: dict[str, Any] | None = None
    for number, raw in enumerate(lines, start=1):
        if seal is not None:
            return _failed("edited", f"line {number} follows the seal")
        try:
            record = json.loads(raw)
        except ValueError:
            return _failed("edited", f"line {number} is not JSON")
        kind = record.get("type") if isinstance(record, dict) else None
        if kind == "seal":
            seal = record
            continue
        digest.update(raw.encode() if raw.endswith("\n") else (raw + "\n").encode())
        count += 1
        if number == 1 and (kind != "header" or record.get("format") != FORMAT):
            return _failed("edited", "the first line is not an export header")
        if kind == "event":
            stored = record.pop("hash")
            del record["type"]
            entries.append((record, stored))
        elif kind == "checkpoint":
            checkpoints.append(record)
    if seal is None:
        return _failed("truncated", f"no seal after line {count}: the export was cut short")
    signature = seal.pop("signature", "")
    if not keys.verify(seal, signature, str(seal.get("keyId"))):
        return _failed("bad signature", "the seal does not verify with the public key")
    if seal.get("lines") != count or seal.get("sha256") != digest.hexdigest():
        return _failed("edited" if seal.get("lines") == count else "deleted",
                       f"the sealed lines ({seal.get('lines')}) differ from the file ({count})")
    entries.sort(key=lambda e: (e[0]["chain"], e[0]["seq"]))
    report = verify_chains(entries, checkpoints, keys)
    heads = {c: [f["seq"], h] for f, h in entries for c in [f["chain"]]}
    if not report.problems and heads != seal.get("heads"):
        report.problems.append(Problem(EXPORT_CHAIN, 0, "edited",
                                       "chain heads differ from the sealed heads"))
    return report
