"""Re-encryption of stored values under the current key (``flask data rotate``), and the
migration's one-pass sealing and opening of a whole column.

Rotation walks each encrypted column by row id in bounded batches. A row is a candidate when its
value is not under the current key (another key, or text stored before encryption); each batch is
one short transaction that locks its rows (``FOR NO KEY UPDATE`` on PostgreSQL, which still lets
new rows reference them; SQLite's write lock),
reads them again, opens each value (``FieldDecryptionError`` stops the run, naming the row) and
writes it sealed under the current key only if it is still the value it read. Rows already under
the current key are never candidates, so an interrupted run is resumed by running it again, and
a concurrent write (always under the current key) is left as it is.

Each batch's transaction is opened by the caller's ``begin`` (by default a plain transaction of
the engine): the command line opens one that also records the batch in the audit trail, which this
layer cannot import, so the record commits with the rewrite or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, column, func, select, table, update

from app.crypto.fields import ENCRYPTED_FIELDS, VERSION, Field, decrypt, encrypt, key_id_of
from app.crypto.keys import KeyRing
from app.db import writer


@dataclass
class Progress:
    field: Field
    rewritten: int = 0  # values re-encrypted from another key
    sealed: int = 0  # values stored before encryption, now encrypted
    batches: int = 0


@dataclass(frozen=True)
class Batch:
    """What one batch's transaction wrote: counts and key ids, never a value."""

    field: Field
    rewritten: int  # values re-encrypted from another key
    sealed: int  # values stored before encryption, now encrypted
    from_keys: tuple[str, ...]  # the ids of the keys the re-encrypted values were under
    to_key: str  # the current key's id


class BatchTransaction(Protocol):
    """One batch's open transaction: its connection, and ``done`` called in it after the
    rewrite (an exception there rolls the batch back)."""

    @property
    def connection(self) -> Connection: ...

    def done(self, batch: Batch) -> None: ...


BeginBatch = Callable[[], AbstractContextManager[BatchTransaction]]


@dataclass(frozen=True)
class _PlainTransaction:
    connection: Connection

    def done(self, batch: Batch) -> None:
        """Nothing beyond the rewrite."""


def plain_batches(engine: Engine) -> BeginBatch:
    """Each batch in its own transaction of ``engine`` (SQLite's write lock taken at BEGIN)."""
    @contextmanager
    def begin() -> Iterator[BatchTransaction]:
        with writer(engine).begin() as connection:
            yield _PlainTransaction(connection)

    return begin


def _table(field: Field) -> Any:
    return table(field.table, column("id"), column(field.column))


def reseal(field: Field, row_id: str, value: str, ring: KeyRing) -> str:
    """``value`` under the current key: opened first when it is encrypted, sealed as it is when
    it is text stored before encryption."""
    if key_id_of(value) is not None:
        value = decrypt(field.table, field.column, row_id, value, ring)
    return encrypt(field.table, field.column, row_id, value, ring)


def _stale(t: Any, field: Field, ring: KeyRing) -> Any:
    """The predicate of a value of ``t`` that is not under the current key."""
    prefix = f"{VERSION}:{ring.current}:"
    value = t.c[field.column]
    return value.is_not(None) & (func.substr(value, 1, len(prefix)) != prefix)


def rotate(engine: Engine, ring: KeyRing, batch_size: int,
           report: Callable[[Progress], None] = lambda _p: None,
           max_batches: int | None = None, begin: BeginBatch | None = None) -> list[Progress]:
    """Re-encrypt every encrypted column under ``ring.current``; ``max_batches`` bounds the run
    (over all columns), whose next run resumes where it stopped. ``begin`` opens each batch's
    transaction (by default ``plain_batches(engine)``)."""
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    begin = begin or plain_batches(engine)
    done: list[Progress] = []
    batches = 0
    for field in ENCRYPTED_FIELDS:
        progress = Progress(field)
        done.append(progress)
        last = ""
        while max_batches is None or batches < max_batches:
            ids = _candidates(engine, field, ring, last, batch_size)
            if not ids:
                break
            _rewrite(begin, field, ring, ids, progress)
            last = ids[-1]
            batches += 1
            progress.batches += 1
            report(progress)
    return done


def _candidates(engine: Engine, field: Field, ring: KeyRing, after: str, limit: int) -> list[str]:
    t = _table(field)
    with engine.connect() as connection:
        return list(connection.scalars(
            select(t.c.id).where(_stale(t, field, ring), t.c.id > after)
            .order_by(t.c.id).limit(limit)
        ))


def _rewrite(begin: BeginBatch, field: Field, ring: KeyRing, ids: list[str],
             progress: Progress) -> None:
    t = _table(field)
    value = t.c[field.column]
    rewritten, sealed, from_keys = 0, 0, set()
    with begin() as transaction:
        connection = transaction.connection
        rows = connection.execute(
            select(t.c.id, value).where(t.c.id.in_(ids), _stale(t, field, ring))
            .order_by(t.c.id).with_for_update(key_share=True)
        ).all()
        for row_id, old in rows:
            connection.execute(
                update(t).where(t.c.id == row_id, value == old)
                .values({field.column: reseal(field, row_id, old, ring)})
            )
            old_key = key_id_of(old)
            if old_key is None:
                sealed += 1
            else:
                rewritten += 1
                from_keys.add(old_key)
        if rows:
            transaction.done(Batch(field, rewritten, sealed, tuple(sorted(from_keys)),
                                   ring.current))
    progress.rewritten += rewritten
    progress.sealed += sealed


def seal_all(connection: Connection, ring: KeyRing) -> int:
    """Every value of every encrypted column under the current key, in ``connection``'s
    transaction (the migration that introduces encryption); returns how many it wrote."""
    written = 0
    for field in ENCRYPTED_FIELDS:
        t = _table(field)
        value = t.c[field.column]
        for row_id, old in connection.execute(select(t.c.id, value).where(_stale(t, field, ring))):
            connection.execute(update(t).where(t.c.id == row_id)
                               .values({field.column: reseal(field, row_id, old, ring)}))
            written += 1
    return written


def open_all(connection: Connection, ring: KeyRing) -> int:
    """Every encrypted value back to its plaintext (the migration's downgrade)."""
    written = 0
    for field in ENCRYPTED_FIELDS:
        t = _table(field)
        value = t.c[field.column]
        rows = connection.execute(select(t.c.id, value).where(value.is_not(None))).all()
        for row_id, old in rows:
            if key_id_of(old) is None:
                continue
            plain = decrypt(field.table, field.column, row_id, old, ring)
            connection.execute(update(t).where(t.c.id == row_id).values({field.column: plain}))
            written += 1
    return written
