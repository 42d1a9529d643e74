"""``flask buyflow``: maintenance of the buy-flow's tables."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.buyflow.idempotency import purge_stale_keys

buyflow_cli = AppGroup("buyflow", help="Buy-flow maintenance.")


@buyflow_cli.command("purge-idempotency-keys")
def purge_idempotency_keys() -> None:
    """Delete Idempotency-Key rows older than IDEMPOTENCY_KEY_RETENTION_SECONDS (run daily, e.g.
    from a scheduler)."""
    click.echo(f"deleted {purge_stale_keys()} stale idempotency keys")
