"""Verification of chains: the first bad sequence number of each chain, and why.

The same walk serves the database (``verify_database``) and an offline export
(``app.audit.export.verify_export``): entries arrive as their hashed fields plus the stored hash,
checkpoints as their signed payload plus the signature.

Reasons: ``deleted`` (a sequence number is missing), ``edited`` (an entry no longer matches its
hash, or its hash was rewritten and the next entry still links to the original), ``reordered``
(an entry is intact but sits at another position), ``truncated`` (a signed checkpoint names a
later head than the chain has, or a witnessed checkpoint names more entries or another tree
than the chain has), ``bad signature`` (a checkpoint does not verify with the public keys).
Checkpoints are signed notes over the chain's Merkle root, so the walk also computes the root at
each checkpoint's size. Truncation after the newest checkpoint in the database cannot be seen in
the database alone: the witness (``witness``) holds the newest checkpoint outside it, and the
interval checkpoints bound how many entries are newer than that.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from itertools import groupby
from typing import Any

from sqlalchemy import String, Text, cast, select, type_coerce
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS, RawJSON, fields_hash, parsed_fields, timestamp
from app.audit.checkpoints import checkpoint_record
from app.audit.merkle import Frontier
from app.audit.notes import Checkpoint, NoteError, open_note
from app.audit.signing import PublicKeys
from app.models.audit import ERASED_ACTION, AuditCheckpoint, AuditEvent

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


def _walk(chain: str, entries: list[Entry], sizes: set[int] | frozenset[int] = frozenset()
          ) -> tuple[Problem | None, dict[int, str], dict[int, bytes]]:
    """Walk the chain; the problem, each seq's hash and the tree root at each of ``sizes``."""
    hashes: dict[int, str] = {}
    roots: dict[int, bytes] = {}
    problem = _walk_entries(chain, entries, hashes, roots, sizes)
    return problem, hashes, roots


def _walk_entries(chain: str, entries: list[Entry], hashes: dict[int, str],
                  roots: dict[int, bytes], sizes: set[int] | frozenset[int]) -> Problem | None:
    expected_seq, expected_prev = 1, GENESIS
    tree = Frontier()
    tree_to = max(sizes, default=0)
    highest = entries[-1][0]["seq"] if entries else 0
    stack = tree.hashes
    for fields, stored in entries:
        seq = fields["seq"]
        if seq != expected_seq:
            return Problem(chain, expected_seq, "deleted",
                           f"entry {expected_seq} is missing; the next entry is {seq}")
        if fields_hash(fields) != stored and (
            not isinstance(fields["details"], RawJSON)
            or fields_hash(fields := _parsed(fields)) != stored
        ):
            original = _original_seq(fields, stored, highest)
            if original is not None:
                return Problem(chain, seq, "reordered",
                               f"entry written at seq {original} now sits at seq {seq}")
            return Problem(chain, seq, "edited", "content does not match its hash")
        if fields["prevHash"] != expected_prev:
            known = {h for _, h in entries}
            if fields["prevHash"] in known:
                return Problem(chain, seq, "reordered",
                               "entry links to another entry than its predecessor")
            if seq == 1:
                return Problem(chain, 1, "edited", "first entry does not start the chain")
            return Problem(chain, seq - 1, "edited",
                           f"entry {seq - 1}'s hash was rewritten; entry {seq} links to the "
                           "original")
        hashes[seq] = stored
        if seq <= tree_to:
            # Frontier.append inlined (a third of verify's time otherwise): the leaf, merged
            # with the equal-sized subtrees at the right end, one per trailing 1 bit of the size.
            node = sha256(b"\x00" + bytes.fromhex(stored)).digest()
            size = tree.size
            while size & 1:
                node = sha256(b"\x01" + stack.pop() + node).digest()
                size >>= 1
            stack.append(node)
            tree.size += 1
            if seq in sizes:
                roots[seq] = tree.root()
        expected_seq, expected_prev = seq + 1, stored
    return None


def _note_problem(chain: str, cp: Mapping[str, Any], keys: PublicKeys | None
                  ) -> tuple[Checkpoint | None, Problem | None]:
    try:
        opened = open_note(cp["note"], keys.keys if keys is not None else None)
    except NoteError as exc:
        return None, Problem(chain, cp["seq"], "bad signature",
                             f"checkpoint at seq {cp['seq']}: {exc}")
    if opened.chain != chain or opened.size != cp["seq"]:
        return None, Problem(chain, cp["seq"], "edited",
                             f"checkpoint at seq {cp['seq']} does not match its signed note")
    return opened, None


def verify_chain(chain: str, entries: list[Entry], checkpoints: list[Mapping[str, Any]],
                 keys: PublicKeys | None, witnessed: Checkpoint | None = None,
                 erased: Checkpoint | None = None) -> Problem | None:
    """The first problem of one chain, or None. ``keys`` None skips signature checks.

    ``witnessed`` is the newest checkpoint a witness holds for the chain: the chain must reach
    its size with the same tree root. ``erased`` is the final checkpoint named by the chain's
    erasure record: an erased chain has no entries, and its witnessed end must be that one."""
    sizes = {cp["seq"] for cp in checkpoints if cp.get("note") is not None}
    if witnessed is not None:
        sizes.add(witnessed.size)
    problem, hashes, roots = _walk(chain, entries, sizes)
    if problem is not None:
        return problem
    last = max(hashes, default=0)
    for cp in sorted(checkpoints, key=lambda c: c["seq"]):
        if cp.get("note") is not None:
            opened, problem = _note_problem(chain, cp, keys)
            if problem is not None:
                return problem
        else:
            opened = None
            payload = {k: v for k, v in cp.items() if k not in ("signature", "note")}
            if keys is not None and not keys.verify(payload, cp["signature"], cp["keyId"]):
                return Problem(chain, cp["seq"], "bad signature",
                               f"checkpoint at seq {cp['seq']} does not verify with the public "
                               "key")
        if cp["seq"] > last:
            return Problem(chain, last + 1, "truncated",
                           f"a signed checkpoint names head seq {cp['seq']}; the chain ends at "
                           f"{last}")
        if hashes[cp["seq"]] != cp["headHash"] or (
            opened is not None and roots[cp["seq"]] != opened.root
        ):
            return Problem(chain, cp["seq"], "edited",
                           "the chain was rewritten at or before this entry: its hash differs "
                           "from the signed checkpoint")
    if witnessed is not None:
        return _witness_problem(chain, witnessed, last, roots, erased)
    return None


def _witness_problem(chain: str, witnessed: Checkpoint, last: int, roots: dict[int, bytes],
                     erased: Checkpoint | None) -> Problem | None:
    if last == 0 and erased is not None:
        if (erased.size, erased.root) == (witnessed.size, witnessed.root):
            return None
        return Problem(chain, min(erased.size, witnessed.size) + 1, "truncated",
                       f"the erasure record names tree size {erased.size}; the witness holds "
                       f"tree size {witnessed.size} with another root")
    if witnessed.size > last:
        return Problem(chain, last + 1, "truncated",
                       f"the witnessed checkpoint names tree size {witnessed.size}; the chain "
                       f"ends at {last}")
    if roots[witnessed.size] != witnessed.root:
        return Problem(chain, witnessed.size, "truncated",
                       f"the chain's first {witnessed.size} entries differ from the witnessed "
                       "checkpoint: its tail was cut and rewritten (a fork)")
    return None


def verify_chains(entries: Iterable[Entry], checkpoints: Iterable[Mapping[str, Any]],
                  keys: PublicKeys | None, witnessed: Mapping[str, Checkpoint] | None = None,
                  erased: Mapping[str, Checkpoint] | None = None) -> Report:
    """Entries sorted by (chain, seq); checkpoints in any order; ``witnessed`` the newest
    witnessed checkpoint by chain, ``erased`` the final checkpoints of erased chains."""
    witnessed = witnessed or {}
    erased = erased or {}
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
        problem = verify_chain(chain, listed, by_chain.get(chain, []), keys,
                               witnessed.get(chain), erased.get(chain))
        if problem:
            report.problems.append(problem)
    for chain in sorted((set(by_chain) | set(witnessed)) - seen):
        report.chains += 1
        problem = verify_chain(chain, [], by_chain.get(chain, []), keys, witnessed.get(chain),
                               erased.get(chain))
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
    rows = (row for partition in result.partitions() for row in partition)
    for (c, seq, household, principal, action, resource, decision, correlation, detail,
         stamp, prev, stored) in rows:
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


def erased_chains(session: Session, keys: PublicKeys | None) -> dict[str, Checkpoint]:
    """The final checkpoint of each erased chain, from the erasure records."""
    found: dict[str, Checkpoint] = {}
    rows = session.scalars(select(AuditEvent.details).where(AuditEvent.action == ERASED_ACTION))
    for details in rows:
        note = details.get("finalCheckpoint") if isinstance(details, dict) else None
        if not note:
            continue
        try:
            opened = open_note(note, keys.keys if keys is not None else None)
        except NoteError:
            continue
        found[opened.chain] = opened
    return found


def verify_database(session: Session, keys: PublicKeys | None, chain: str | None = None,
                    witnessed: Mapping[str, Checkpoint] | None = None) -> Report:
    """Every chain (or one) against its entries, its checkpoints and, when given, the newest
    witnessed checkpoints (``witness.witnessed_checkpoints``)."""
    if witnessed is not None and chain is not None:
        witnessed = {c: w for c, w in witnessed.items() if c == chain}
    # A chain's entries are held in memory while it is walked: without the cyclic collector
    # (they hold no cycles), holding 100,000 of them costs no repeated full collections, which
    # otherwise took more time than the hashing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return verify_chains(stored_entries(session, chain, raw_details=True),
                             stored_checkpoints(session, chain), keys, witnessed,
                             erased_chains(session, keys) if witnessed else None)
    finally:
        if collecting:
            gc.enable()
