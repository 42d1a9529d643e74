"""``flask audit``: verify, checkpoint, export, verify-export, prove, verify-proof, public-key."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from app.audit.checkpoints import checkpoint_all
from app.audit.export import export_lines, verify_export
from app.audit.notes import NoteError
from app.audit.proofs import NotYetCheckpointed, build_proof, find_event, verify_proof
from app.audit.signing import PublicKeys, public_pem, signer
from app.audit.verify import Report, verify_database
from app.audit.witness import FileWitness, checkpointer
from app.db import SESSIONS, Database, db

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
    session: Session = SESSIONS.get()()
    return session


@audit_cli.command("verify")
@click.option("--household", "household", default=None, help="Verify this household's chain.")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM public key(s) to check signatures with (default: the signing key's).")
@click.option("--witness", "witness_url", default=None,
              help="Witness to compare with (file:///dir; default: AUDIT_WITNESS_URL).")
def audit_verify(household: str | None, public_key: Path | None, witness_url: str | None
                 ) -> None:
    """Print OK, or each chain's first bad sequence number and why; exit 1 on a problem.
    With a witness, a chain shorter than (or forked from) its witnessed checkpoint is
    ``truncated``, even when its checkpoints were deleted too."""
    keys = _keys(public_key)
    url = witness_url or current_app.config.get("AUDIT_WITNESS_URL")
    witnessed = None
    if url:
        try:
            witnessed = FileWitness.from_url(str(url), keys.keys).all_latest()
        except (ValueError, NoteError) as exc:
            raise click.ClickException(f"witness {url}: {exc}") from None
    with Database.reader() as session:  # reads only: never holds up the service's writers
        report = verify_database(session, keys, household, witnessed)
    _print(report)
    if witnessed is not None:
        click.echo(f"{len(witnessed)} chains compared with the witness")


@audit_cli.command("checkpoint")
@click.option("--household", "household", default=None, help="Sign this household's head only.")
def audit_checkpoint(household: str | None) -> None:
    """Sign the head of every chain that moved since its last checkpoint."""
    with _session() as session:
        made = checkpoint_all(session, signer(), household)
        session.commit()
        for cp in made:
            click.echo(f"signed {cp.chain} seq {cp.seq}")
    checkpointer(current_app._get_current_object()).flush()  # type: ignore[attr-defined]
    click.echo(f"{len(made)} checkpoints signed")


@audit_cli.command("prove")
@click.argument("event_id")
def audit_prove(event_id: str) -> None:
    """Print the inclusion proof (JSON) of one event against its chain's newest checkpoint."""
    db.read_only_request()  # one read transaction, closed with the app context
    found = find_event(event_id)
    if found is None:
        raise click.ClickException(f"no event {event_id}")
    try:
        proof = build_proof(found, 0)
    except NotYetCheckpointed:
        raise click.ClickException(
            f"{event_id} is newer than its chain's newest checkpoint; run "
            "`flask audit checkpoint` or wait for the next one") from None
    click.echo(json.dumps(proof, indent=2))


@audit_cli.command("verify-proof")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM public key(s) of the signer (default: the signing key's).")
def audit_verify_proof(file: Path, public_key: Path | None) -> None:
    """Check an inclusion proof offline: the note's signature and the path to its root."""
    keys = _keys(public_key)
    try:
        proof = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise click.ClickException(f"{file}: not JSON ({exc})") from None
    problems = verify_proof(proof, keys.keys) if isinstance(proof, dict) else ["not a proof"]
    if problems:
        for problem in problems:
            click.echo(f"FAIL {problem}")
        raise SystemExit(1)
    click.echo(f"OK: {proof['eventId']} is entry {proof['leafIndex'] + 1} of the signed tree of "
               f"{proof['treeSize']} entries of chain {proof['chain']}")


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
