"""``flask audit``: verify, checkpoint, export, verify-export, public-key."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from app.audit.checkpoints import checkpoint_all
from app.audit.export import export_lines, verify_export
from app.audit.signing import PublicKeys, public_pem, signer
from app.audit.verify import Report, verify_database
from app.db import Database

audit_cli = AppGroup("audit", help="Verify, checkpoint and export the audit trail.")


def _keys(public_key: Path | None) -> PublicKeys:
    if public_key is None:
        return PublicKeys([signer().public_key])
    try:
        return PublicKeys.from_pem(public_key.read_bytes())
    except ValueError as exc:
        raise click.ClickException(f"{public_key}: {exc}") from None


def _print(report: Report) -> None:
    if report.ok:
        click.echo(f"OK: {report.summary()}")
        return
    for problem in report.problems:
        click.echo(f"FAIL {problem}")
    raise SystemExit(1)


def _session() -> Session:
    session: Session = current_app.extensions["hearthgate.db"]()
    return session


@audit_cli.command("verify")
@click.option("--household", "household", default=None, help="Verify this household's chain.")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM public key(s) to check signatures with (default: the signing key's).")
def audit_verify(household: str | None, public_key: Path | None) -> None:
    """Print OK, or each chain's first bad sequence number and why; exit 1 on a problem."""
    keys = _keys(public_key)
    with Database.reader() as session:  # reads only: never holds up the service's writers
        report = verify_database(session, keys, household)
    _print(report)


@audit_cli.command("checkpoint")
@click.option("--household", "household", default=None, help="Sign this household's head only.")
def audit_checkpoint(household: str | None) -> None:
    """Sign the head of every chain that moved since its last checkpoint."""
    with _session() as session:
        made = checkpoint_all(session, signer(), household)
        session.commit()
        for cp in made:
            click.echo(f"signed {cp.chain} seq {cp.seq}")
    click.echo(f"{len(made)} checkpoints signed")


@audit_cli.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output).")
@click.option("--household", "household", default=None, help="Export this household's chain.")
def audit_export(output: Path | None, household: str | None) -> None:
    """Write the trail as signed JSON Lines."""
    with Database.reader() as session:
        lines = export_lines(session, signer(), household)
        if output is None:
            for line in lines:
                sys.stdout.write(line)
            return
        with output.open("w", encoding="utf-8") as handle:
            handle.writelines(lines)
    click.echo(f"exported to {output}", err=True)


@audit_cli.command("verify-export")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM public key(s) of the signer; nothing else is trusted.")
def audit_verify_export(file: Path, public_key: Path) -> None:
    """Verify an export offline: seal, chains and checkpoints, with the public key alone."""
    keys = _keys(public_key)
    with file.open(encoding="utf-8") as handle:
        report = verify_export(handle, keys)
    _print(report)


@audit_cli.command("public-key")
def audit_public_key() -> None:
    """Print the signing key's public half (PEM) for auditors."""
    click.echo(public_pem(signer().public_key), nl=False)
