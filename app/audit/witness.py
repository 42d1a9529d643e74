"""Witnesses: every signed checkpoint leaves the database, and each new one must extend the last.

A witness receives a checkpoint note and a function giving the RFC 9162 consistency proof from
any older tree size of the same chain; it checks the proof against the checkpoint it holds and
refuses (``WitnessRefused``) a checkpoint that does not extend it: a chain that was cut back and
rewritten. The service logs a refusal at ERROR and goes on; the witness keeps its older head, so
``flask audit verify`` reports the rewrite as ``truncated``.

Witnesses are the built-in file witness (``AUDIT_WITNESS_URL=file:///dir``: one append-only file
per chain, one JSON line per accepted checkpoint) and the ``audit_witness`` plugins.

The ``Checkpointer`` (one thread per worker process) hands checkpoints to the witnesses after
the transaction that signed them commits (``app.audit.committed`` tells it), and signs a
chain's head at most ``AUDIT_CHECKPOINT_INTERVAL_SECONDS`` after its newest unsigned event, so
no event stays unsigned and unwitnessed for long without any cron.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.chain import timestamp
from app.audit.checkpoints import checkpoint_all
from app.audit.merkle import consistency_proof, leaf_hash, verify_consistency
from app.audit.notes import Checkpoint, NoteError, open_note
from app.audit.signing import signer
from app.background import ProcessThread
from app.db import SESSIONS, utcnow
from app.models.audit import AuditEvent
from app.plugins import call_impl, hook
from app.state import Slot

log = logging.getLogger(__name__)

Consistency = Callable[[int], list[bytes]]
_SAFE_CHAIN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class WitnessRefused(Exception):
    """A witness refuses a checkpoint (it does not extend the one it holds, or is not signed)."""


class FileWitness:
    """One append-only file per chain in ``directory``; each line is an accepted checkpoint."""

    def __init__(self, directory: Path, keys: Iterable[Ed25519PublicKey]) -> None:
        self.directory = directory
        self.keys = list(keys)

    @classmethod
    def from_url(cls, url: str, keys: Iterable[Ed25519PublicKey]) -> FileWitness:
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise ValueError(f"unsupported witness URL {url!r} (file:///directory)")
        return cls(Path(unquote(parts.path)), keys)

    def _path(self, chain: str) -> Path:
        if not _SAFE_CHAIN.match(chain):
            raise WitnessRefused(f"chain name {chain!r} is not a witness file name")
        return self.directory / f"{chain}.log"

    @staticmethod
    def _last_note(path: Path) -> str | None:
        try:
            with path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                end = handle.tell()
                handle.seek(max(0, end - 4096))
                tail = handle.read().decode()
        except FileNotFoundError:
            return None
        lines = [line for line in tail.split("\n") if line.strip()]
        if not lines:
            return None
        note: str = json.loads(lines[-1])["note"]
        return note

    def latest(self, chain: str) -> Checkpoint | None:
        note = self._last_note(self._path(chain))
        return open_note(note, self.keys) if note is not None else None

    def all_latest(self) -> dict[str, Checkpoint]:
        """The newest checkpoint of every witnessed chain (signatures checked)."""
        found: dict[str, Checkpoint] = {}
        if not self.directory.is_dir():
            return found
        for path in sorted(self.directory.glob("*.log")):
            note = self._last_note(path)
            if note is not None:
                opened = open_note(note, self.keys)
                found[opened.chain] = opened
        return found

    def witness(self, chain: str, note: str, consistency: Consistency) -> None:
        try:
            new = open_note(note, self.keys)
        except NoteError as exc:
            raise WitnessRefused(f"checkpoint of {chain}: {exc}") from None
        if new.chain != chain:
            raise WitnessRefused(f"checkpoint names chain {new.chain}, not {chain}")
        path = self._path(chain)
        self.directory.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # one writer per file across processes
            try:
                old_note = self._last_note(path)
                if old_note is not None:
                    old = open_note(old_note, self.keys)
                    if new.size <= old.size:
                        if new.size == old.size and new.root != old.root:
                            raise WitnessRefused(
                                f"{chain}: tree size {new.size} with another root than the "
                                "witnessed one (a fork)")
                        return  # already covered: the witnessed head is at least as new
                    if not verify_consistency(old.size, new.size, old.root, new.root,
                                              consistency(old.size)):
                        raise WitnessRefused(
                            f"{chain}: tree size {new.size} does not extend the witnessed tree "
                            f"size {old.size} (the chain was rewritten)")
                handle.write(json.dumps({"note": note, "witnessedAt": timestamp(utcnow())})
                             + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def witness_of(app: Flask) -> FileWitness | None:
    url = app.config.get("AUDIT_WITNESS_URL")
    return FileWitness.from_url(str(url), [signer(app).public_key]) if url else None


def consistency_for(session: Session, chain: str, size: int) -> Consistency:
    """The consistency proof from any older size to ``size`` of ``chain`` (read from the
    database when asked: O(size) hashes)."""

    def proof(old_size: int) -> list[bytes]:
        hashes = session.scalars(
            select(AuditEvent.hash).where(AuditEvent.chain == chain, AuditEvent.seq <= size)
            .order_by(AuditEvent.seq)
        ).all()
        return consistency_proof(old_size, [leaf_hash(h) for h in hashes])

    return proof


def hand_to_witnesses(app: Flask, session: Session, notes: Iterable[str]) -> int:
    """Give each note to every witness; a refusal or failure is logged. The refusals."""
    file_witness = witness_of(app)
    plugins = hook(app).audit_witness.get_hookimpls()
    refused = 0
    for note in notes:
        try:
            opened = open_note(note, None)
        except NoteError:
            continue
        consistency = consistency_for(session, opened.chain, opened.size)
        targets: list[tuple[str, Callable[..., Any]]] = []
        if file_witness is not None:
            targets.append(("file", file_witness.witness))
        targets += [(impl.plugin_name, partial(call_impl, impl, app=app)) for impl in plugins]
        for name, function in targets:
            try:
                function(chain=opened.chain, note=note, consistency=consistency)
            except WitnessRefused as exc:
                refused += 1
                log.error("AUDIT WITNESS REFUSED a checkpoint: witness %s, chain %s, tree size "
                          "%d: %s. The audit trail of this chain may have been cut back and "
                          "rewritten; run `flask audit verify`.", name, opened.chain,
                          opened.size, exc)
            except Exception:
                log.exception("audit witness %s failed for chain %s tree size %d", name,
                              opened.chain, opened.size)
    return refused


class Checkpointer:
    """Per worker process: witnesses committed checkpoints and signs heads left unsigned."""

    def __init__(self, app: Flask, interval: float) -> None:
        self.app = app
        self.interval = interval
        self._lock = threading.Condition()
        self._due: dict[str, float] = {}
        self._notes: list[str] = []
        self._runner = ProcessThread(self._run, "audit-checkpoints")
        self._working = threading.Lock()  # one batch at a time; flush() waits for the thread's

    def has_witnesses(self) -> bool:
        return bool(self.app.config.get("AUDIT_WITNESS_URL")) or bool(
            hook(self.app).audit_witness.get_hookimpls())

    def transaction_committed(self, events: Collection[AuditEvent],
                              notes: Collection[str] = ()) -> None:
        """A transaction committed ``events`` (appended in it) and the checkpoint ``notes``
        (signed in it): their chains come due for signing, the notes go to the witnesses."""
        if events or notes:
            self.committed({e.chain for e in events}, notes)

    def committed(self, chains: Iterable[str], notes: Iterable[str]) -> None:
        witnessed = self.has_witnesses()
        if self.interval <= 0 and not witnessed:
            return
        now = time.monotonic()
        fresh = list(notes) if witnessed else []
        with self._lock:
            news = False
            if self.interval > 0:
                for chain in chains:
                    if chain not in self._due:  # a chain already due keeps its time
                        self._due[chain] = now + self.interval
                        news = True
            if fresh:
                self._notes.extend(fresh)
                news = True
            if news:  # the thread wakes for new work only, not for every commit
                self._lock.notify()
        self._runner.ensure()

    def flush(self) -> None:
        """Sign every pending chain now and witness everything queued (tests, shutdown)."""
        with self._lock:
            due = list(self._due)
            self._due.clear()
        self._work(due)

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                due = [c for c, at in self._due.items() if at <= now]
                if not due and not self._notes:
                    wait = min(self._due.values(), default=now + 3600) - now
                    self._lock.wait(timeout=max(wait, 0.01))
                    continue
                for chain in due:
                    del self._due[chain]
            try:
                self._work(due)
            except Exception:
                log.exception("audit checkpointer failed")

    def _work(self, due: list[str]) -> None:
        factory = SESSIONS.get(self.app)
        with self._working, self.app.app_context(), factory() as session:
            for chain in due:
                try:
                    checkpoint_all(session, signer(self.app), chain)
                    session.commit()  # the after-commit hook queues the new notes
                except IntegrityError:
                    session.rollback()  # another worker signed the same head
            with self._lock:
                notes, self._notes = self._notes, []
            if notes:
                hand_to_witnesses(self.app, session, notes)
            session.rollback()


CHECKPOINTER: Slot[Checkpointer] = Slot("audit.checkpointer")


def init_witnesses(app: Flask) -> Checkpointer:
    checkpointer = Checkpointer(app, float(app.config.get("AUDIT_CHECKPOINT_INTERVAL_SECONDS")
                                           or 0))
    CHECKPOINTER.set(app, checkpointer)
    return checkpointer


def checkpointer(app: Flask) -> Checkpointer:
    return CHECKPOINTER.get(app)

