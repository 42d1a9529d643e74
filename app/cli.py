"""The ``flask`` command line (``FLASK_APP=wsgi``): db, plugins, security, secrets, data."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from app import audit
from app.config import ConfigurationError, ConfigurationRefused
from app.crypto.fields import FieldDecryptionError
from app.crypto.keys import keyring
from app.crypto.rotate import Batch, BatchTransaction, Progress, rotate
from app.db import SESSIONS, Database, build_engine, writer
from app.plugins import PLUGIN_SETTINGS, PLUGINS, describe, hook
from app.secrets import SECRET_STORE, SecretStore, SecretStoreError, TenantSecrets
from app.settings import Setting
from app.startup import configuration_report

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

db_cli = AppGroup("db", help="Database migrations (Alembic).")
plugins_cli = AppGroup("plugins", help="Installed plugins.")
security_cli = AppGroup("security", help="Security checks.")
secrets_cli = AppGroup("secrets", help="Read and write the secret store.")
data_cli = AppGroup("data", help="Encryption at rest.")


def alembic_config(engine: Engine | None = None) -> object:
    """Alembic's configuration for ``engine``, by default the current app's."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Migrations read the schema's version and then write: their transaction takes SQLite's
    # write lock up front, as the app's sessions do (app.db).
    config.attributes["engine"] = writer(engine if engine is not None else Database.engine())
    return config


def migrate(url: str, revision: str = "heads") -> None:
    """Apply migrations up to ``revision`` on the database at ``url``, without an app: the
    template database of a test session and the benchmarks' databases."""
    from alembic import command

    engine = build_engine(url)
    try:
        command.upgrade(alembic_config(engine), revision)  # type: ignore[arg-type]
    finally:
        engine.dispose()


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from alembic import command

    command.upgrade(alembic_config(), revision)  # type: ignore[arg-type]


@db_cli.command("downgrade")
@click.argument("revision", default="-1")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (default: one step)."""
    from alembic import command

    command.downgrade(alembic_config(), revision)  # type: ignore[arg-type]


@db_cli.command("current")
def db_current() -> None:
    """Show the database's revision."""
    from alembic import command

    command.current(alembic_config())  # type: ignore[arg-type]


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Create a migration from the difference between the models and the database."""
    from alembic import command

    command.revision(alembic_config(), message=message, autogenerate=True)  # type: ignore[arg-type]


@plugins_cli.command("list")
def plugins_list() -> None:
    """Name, version, distribution and hooks of every loaded plugin, then the installed plugins
    that HEARTHGATE_PLUGINS leaves out."""
    manager = PLUGINS.get()
    for info in describe(manager):
        origin = "built-in" if info.builtin else f"installed from {info.distribution}"
        click.echo(f"{info.name}  {info.version}  ({origin})  hooks: {', '.join(info.hooks)}")
    for name, distribution in manager.excluded:
        click.echo(f"{name}  (installed from {distribution})  not loaded: not in "
                   "HEARTHGATE_PLUGINS")


@security_cli.command("check")
def security_check() -> None:
    """Report every unsafe setting; exit 1 when there is one (or a store is unreachable)."""
    app = current_app
    problems = configuration_report(app)
    store = SECRET_STORE.get(app)
    try:
        store.check()
        click.echo(f"secret store: {store.name} reachable")
    except SecretStoreError as exc:
        problems.append(str(exc))
    for plugin, setting in PLUGIN_SETTINGS.find(app) or []:
        kind = f"{setting.kind}, secret" if setting.secret else setting.kind
        click.echo(f"plugin setting {setting.name} ({kind}) of {plugin}: "
                   f"{setting_state(setting, app.config.get(setting.name))}")
    if not problems:
        click.echo(f"OK ({app.config['HEARTHGATE_ENV']})")
        return
    _report(problems)


def setting_state(setting: Setting, value: Any) -> str:
    """What ``flask security check`` shows of a plugin's setting: a bool's value (``true`` or
    ``false``: off is a value, not an absence), else ``set`` or ``unset``, never a value that
    could be a credential. A secret shows ``set`` or ``unset`` whatever its kind."""
    if setting.kind == "bool" and not setting.secret and isinstance(value, bool):
        return "true" if value else "false"
    return "unset" if value is None or value == "" or value == [] else "set"


def _report(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"UNSAFE: {problem}", err=True)
    raise SystemExit(1)


# -- the command line of an application that refused to start -----------------------------------


def loading_for_a_command() -> bool:
    """True while the ``flask`` command line loads the application to find one of its commands
    (``flask security check``, ``flask db upgrade``…), false under gunicorn and ``flask run``."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and isinstance(ctx.command, FlaskGroup)


def refused_app(refused: ConfigurationRefused | ConfigurationError) -> Flask:
    """What ``FLASK_APP=wsgi`` gives the command line when the factory refused the start: an
    application with no routes whose ``flask security check`` prints the report (every problem,
    no traceback) and exits 1, and whose every other command prints the refusal and exits 1."""
    problems = refused.problems if isinstance(refused, ConfigurationRefused) else [str(refused)]
    app = Flask("hearthgate_refused")
    app.cli = _RefusedCommands(problems)
    return app


class _RefusedCommands(AppGroup):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("refused")
        self.problems = problems
        security = click.Group("security", help="Security checks.")
        security.add_command(click.Command(
            "check", callback=lambda: _report(self.problems),
            help="Report every unsafe setting; exit 1 when there is one.",
        ))
        self.add_command(security)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        return click.Command(
            cmd_name, callback=self._refuse, help="Refused: the configuration is unsafe.",
            params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        )

    def _refuse(self, **_: Any) -> None:
        click.echo("refusing to start: " + "; ".join(self.problems), err=True)
        raise SystemExit(1)


def _mask(value: str) -> str:
    return "*" * 8 if len(value) <= 8 else value[:2] + "*" * 6 + value[-2:]


_household_option = click.option(
    "--household", default=None, help="A household's secret (tenant:<id>:NAME)."
)


def _scoped(household: str | None) -> SecretStore | TenantSecrets:
    store = SECRET_STORE.get()
    return store if household is None else store.for_tenant(household)


@secrets_cli.command("get")
@click.argument("names", nargs=-1, required=True)
@click.option("--reveal", is_flag=True, help="Print the values instead of masked ones.")
@_household_option
def secrets_get(names: tuple[str, ...], reveal: bool, household: str | None) -> None:
    """Print secrets by name (masked unless --reveal)."""
    try:
        values = _scoped(household).get(*names)
    except SecretStoreError as exc:
        raise click.ClickException(str(exc)) from None
    for name, value in values.items():
        click.echo(f"{name}={value if reveal else _mask(value)}")


@secrets_cli.command("set")
@click.argument("name")
@click.option("--value", prompt=True, hide_input=True, confirmation_prompt=False)
@_household_option
def secrets_set(name: str, value: str, household: str | None) -> None:
    """Store a secret (when the store enables set); the value is prompted for, never echoed."""
    try:
        _scoped(household).set(name, value)
    except SecretStoreError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name} set")


@secrets_cli.command("rm")
@click.argument("name")
@_household_option
def secrets_rm(name: str, household: str | None) -> None:
    """Remove a secret (when the store enables remove)."""
    try:
        _scoped(household).remove(name)
    except SecretStoreError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name} removed")


@dataclass(frozen=True)
class _AuditedBatch:
    """A rotation batch's transaction, a session of the app's: the batch's ``data.rotated``
    event on the system chain commits with its rewrite, or neither does."""

    session: Session

    @property
    def connection(self) -> Connection:
        return self.session.connection()

    def done(self, batch: Batch) -> None:
        audit.record("data.rotated", resource=f"column:{batch.field.table}.{batch.field.column}",
                     principal_id=None, session=self.session, details={
                         "table": batch.field.table, "column": batch.field.column,
                         "reEncrypted": batch.rewritten, "encrypted": batch.sealed,
                         "fromKeyIds": list(batch.from_keys), "toKeyId": batch.to_key})


@contextmanager
def _audited_batch() -> Iterator[BatchTransaction]:
    with SESSIONS.get()() as session, session.begin():
        yield _AuditedBatch(session)


@data_cli.command("rotate")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(min=1),
              help="rows per transaction")
@click.option("--max-batches", default=None, type=click.IntRange(min=1),
              help="stop after this many batches (run again to resume)")
def data_rotate(batch_size: int, max_batches: int | None) -> None:
    """Re-encrypt every encrypted value under the current key (the first of
    DATA_ENCRYPTION_KEYS), and encrypt any stored before encryption. Idempotent and resumable:
    values already under the current key are skipped. Remove an old key from
    DATA_ENCRYPTION_KEYS only after a run that reports nothing left. Each batch leaves a
    ``data.rotated`` event on the system chain: its counts and key ids, never a value."""
    ring = keyring()

    def report(p: Progress) -> None:
        click.echo(f"{p.field.table}.{p.field.column}: batch {p.batches}, "
                   f"{p.rewritten} re-encrypted, {p.sealed} encrypted")

    try:
        done = rotate(Database.engine(), ring, batch_size, report, max_batches,
                      begin=_audited_batch)
    except FieldDecryptionError as exc:
        raise click.ClickException(str(exc)) from None
    total = sum(p.rewritten + p.sealed for p in done)
    click.echo(f"{total} values now under key {ring.current}"
               + (f" (stopped after {max_batches} batches: run again to resume)"
                  if max_batches is not None and sum(p.batches for p in done) >= max_batches
                  else ""))


@click.command("openapi")
@with_appcontext
@click.option("-o", "--output", type=click.File("w"), default="-",
              help="file to write (default: standard output)")
def openapi_command(output: TextIO) -> None:
    """Write the OpenAPI document (as served at /api/openapi.json), for client generators."""
    from app.gateway.openapi import build_openapi

    json.dump(build_openapi(current_app), output, indent=2, ensure_ascii=False)
    output.write("\n")


def register_cli(app: Flask, features: Iterable[click.Command] = ()) -> None:
    """The core's groups, then ``features`` (the feature packages' groups, passed by the
    factory), then the plugins' commands."""
    for group in (db_cli, plugins_cli, security_cli, secrets_cli, data_cli, *features,
                  openapi_command):
        app.cli.add_command(group)
    hook(app).register_commands(cli=app.cli)
