"""``flask data``: maintenance of the encrypted columns."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.crypto.fields import FieldDecryptionError
from app.crypto.keys import keyring
from app.crypto.rotate import Progress, rotate
from app.db import Database

data_cli = AppGroup("data", help="Encryption at rest.")


@data_cli.command("rotate")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(min=1),
              help="rows per transaction")
@click.option("--max-batches", default=None, type=click.IntRange(min=1),
              help="stop after this many batches (run again to resume)")
def data_rotate(batch_size: int, max_batches: int | None) -> None:
    """Re-encrypt every encrypted value under the current key (the first of
    DATA_ENCRYPTION_KEYS), and encrypt any stored before encryption. Idempotent and resumable:
    values already under the current key are skipped. Remove an old key from
    DATA_ENCRYPTION_KEYS only after a run that reports nothing left."""
    ring = keyring()

    def report(p: Progress) -> None:
        click.echo(f"{p.field.table}.{p.field.column}: batch {p.batches}, "
                   f"{p.rewritten} re-encrypted, {p.sealed} encrypted")

    try:
        done = rotate(Database.engine(), ring, batch_size, report, max_batches)
    except FieldDecryptionError as exc:
        raise click.ClickException(str(exc)) from None
    total = sum(p.rewritten + p.sealed for p in done)
    click.echo(f"{total} values now under key {ring.current}"
               + (f" (stopped after {max_batches} batches: run again to resume)"
                  if max_batches is not None and sum(p.batches for p in done) >= max_batches
                  else ""))
