"""Verification of chains: the first bad sequence number of each chain, and why.

The same walk serves the database (``verify_database``) and an offline export
(``app.audit.export.verify_export``): entries arrive as their hashed fields plus the stored hash,
checkpoints as their signed payload plus the signature.

Reasons: ``deleted`` (a sequence number is missing), ``edited`` (an entry no longer matches its
hash, or its hash was rewritten and the next entry still links to the original), ``reordered``
(an entry is intact but sits at another position), ``truncated`` (a signed checkpoint names a
later head than the chain has), ``bad signature`` (a checkpoint does not verify with the public
keys). Truncation after the newest checkpoint cannot be seen in the database alone; that is what
``AUDIT_CHECKPOINT_EVERY``, ``flask audit checkpoint`` and the sinks bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from sqlalchemy import String, Text, cast, select, type_coerce
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS, RawJSON, fields_hash, parsed_fields, timestamp
from app.audit.checkpoints import checkpoint_record
from app.audit.signing import PublicKeys
from app.models.audit import AuditCheckpoint, AuditEvent

Entry = tuple[dict[str, Any], str]  # (hashed fields, stored hash)


@dataclass(frozen=True)
class Problem:
    chain: str
    seq: int
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"chain {self.chain}: seq {self.seq}: {self.reason} ({self.detail})"


@dataclass
class Report:
    chains: int = 0
    entries: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (f"{self.chains} chains, {self.entries} entries, "
                f"{self.checkpoints} signed checkpoints")


def _original_seq(fields: dict[str, Any], stored: str, highest: int) -> int | None:
    """The position at which an intact entry was written, if it was moved."""
    for candidate in range(1, highest + 2):
        if candidate != fields["seq"] and fields_hash({**fields, "seq": candidate}) == stored:
            return candidate
    return None


def _parsed(fields: dict[str, Any]) -> dict[str, Any]:
    try:
        return parsed_fields(fields)
    except ValueError:
        return {**fields, "details": {"(unparseable)": str(fields["details"])}}


def _walk(chain: str, entries: list[Entry]) -> tuple[Problem | None, dict[int, str]]:
    expected_seq, expected_prev = 1, GENESIS
    hashes: dict[int, str] = {}
    highest = entries[-1][0]["seq"] if entries else 0
    for fields, stored in entries:
        seq = fields["seq"]
        if seq != expected_seq:
            return Problem(chain, expected_seq, "deleted",
                           f"entry {expected_seq} is missing; the next entry is {seq}"), hashes
        if fields_hash(fields) != stored and (
            not isinstance(fields["details"], RawJSON)
            or fields_hash(fields := _parsed(fields)) != stored
        ):
            original = _original_seq(fields, stored, highest)
            if original is not None:
                return Problem(chain, seq, "reordered",
                               f"entry written at seq {original} now sits at seq {seq}"), hashes
            return Problem(chain, seq, "edited", "content does not match its hash"), hashes
        if fields["prevHash"] != expected_prev:
            known = {h for _, h in entries}
            if fields["prevHash"] in known:
                return Problem(chain, seq, "reordered",
                               "entry links to another entry than its predecessor"), hashes
            if seq == 1:
                return Problem(chain, 1, "edited", "first entry does not start the chain"), hashes
            return Problem(chain, seq - 1, "edited",
                           f"entry {seq - 1}'s hash was rewritten; entry {seq} links to the "
                           "original"), hashes
        hashes[seq] = stored
        expected_seq, expected_prev = seq + 1, stored
    return None, hashes


def verify_chain(chain: str, entries: list[Entry], checkpoints: list[Mapping[str, Any]],
                 keys: PublicKeys | None) -> Problem | None:
    """The first problem of one chain, or None. ``keys`` None skips signature checks."""
    problem, hashes = _walk(chain, entries)
    if problem is not None:
        return problem
    last = max(hashes, default=0)
    for cp in sorted(checkpoints, key=lambda c: c["seq"]):
        payload = {k: v for k, v in cp.items() if k != "signature"}
        if keys is not None and not keys.verify(payload, cp["signature"], cp["keyId"]):
            return Problem(chain, cp["seq"], "bad signature",
                           f"checkpoint at seq {cp['seq']} does not verify with the public key")
        if cp["seq"] > last:
            return Problem(chain, last + 1, "truncated",
                           f"a signed checkpoint names head seq {cp['seq']}; the chain ends at "
                           f"{last}")
        if hashes[cp["seq"]] != cp["headHash"]:
            return Problem(chain, cp["seq"], "edited",
                           "the chain was rewritten at or before this entry: its hash differs "
                           "from the signed checkpoint")
    return None


def verify_chains(entries: Iterable[Entry], checkpoints: Iterable[Mapping[str, Any]],
                  keys: PublicKeys | None) -> Report:
    """Entries sorted by (chain, seq); checkpoints in any order."""
    by_chain: dict[str, list[Mapping[str, Any]]] = {}
    report = Report()
    for cp in checkpoints:
        by_chain.setdefault(cp["chain"], []).append(cp)
        report.checkpoints += 1
    seen = set()
    for chain, group in groupby(entries, key=lambda e: e[0]["chain"]):
        listed = list(group)
        seen.add(chain)
        report.chains += 1
        report.entries += len(listed)
        problem = verify_chain(chain, listed, by_chain.get(chain, []), keys)
        if problem:
            report.problems.append(problem)
    for chain in sorted(set(by_chain) - seen):
        report.chains += 1
        problem = verify_chain(chain, [], by_chain[chain], keys)
        if problem:
            report.problems.append(problem)
    return report


def _sqlite_timestamp(raw: str) -> str:
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff', microseconds always
    # six digits: the hashed form is that text with a T and a Z, no datetime round trip needed.
    # Any other shape was not written by us: kept as is, it cannot match the hash ("edited").
    if len(raw) != 26 or raw[10] != " ":
        return raw
    return f"{raw[:10]}T{raw[11:]}Z"


def stored_entries(session: Session, chain: str | None = None, raw_details: bool = False
                   ) -> Iterator[Entry]:
    """Every stored entry as (hashed fields, hash), sorted by chain and seq, streamed.

    Read through Core rather than the ORM, with SQLite timestamps as stored text and, when
    ``raw_details``, details as stored text (``RawJSON``): at 100,000 entries row handling and
    JSON parsing would otherwise cost more than the hashing itself."""
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    created = type_coerce(AuditEvent.created_at, String) if sqlite else AuditEvent.created_at
    details = cast(AuditEvent.details, Text) if raw_details else AuditEvent.details
    # The same order as the unpacking below.
    query = select(
        AuditEvent.chain, AuditEvent.seq, AuditEvent.household_id, AuditEvent.principal_id,
        AuditEvent.action, AuditEvent.resource, AuditEvent.decision, AuditEvent.correlation_id,
        details, created, AuditEvent.prev_hash, AuditEvent.hash,
    ).order_by(AuditEvent.chain, AuditEvent.seq)
    if chain is not None:
        query = query.where(AuditEvent.chain == chain)
    render = _sqlite_timestamp if sqlite else timestamp
    wrap = RawJSON if raw_details else _same
    result = connection.execution_options(yield_per=10_000).execute(query)
    for (c, seq, household, principal, action, resource, decision, correlation, detail,
         stamp, prev, stored) in result:
        yield {
            "chain": c, "seq": seq, "householdId": household, "principalId": principal,
            "action": action, "resource": resource, "decision": decision,
            "correlationId": correlation, "details": wrap(detail),
            "createdAt": render(stamp), "prevHash": prev,
        }, stored


def _same(value: Any) -> Any:
    return value


def stored_checkpoints(session: Session, chain: str | None = None) -> list[dict[str, Any]]:
    query = select(AuditCheckpoint).order_by(AuditCheckpoint.chain, AuditCheckpoint.seq)
    if chain is not None:
        query = query.where(AuditCheckpoint.chain == chain)
    return [checkpoint_record(cp) for cp in session.scalars(query)]


def verify_database(session: Session, keys: PublicKeys | None, chain: str | None = None
                    ) -> Report:
    return verify_chains(stored_entries(session, chain, raw_details=True),
                         stored_checkpoints(session, chain), keys)
