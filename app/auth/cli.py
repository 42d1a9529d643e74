"""``flask users create|grant|revoke|show``: accounts and permissions from the command line.

Permission changes reach a user's access token at their next login or refresh.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.auth.emails import InvalidEmail
from app.auth.passwords import hash_password
from app.auth.permissions import CATALOGUE, UnknownPermission, checked, default_permissions
from app.auth.users import LOCAL_ISSUER, email_taken, normalise_email, normalised_or_none
from app.db import SESSIONS
from app.models import User

users_cli = AppGroup("users", help="Users and their permissions.")


def _session() -> Session:
    session: Session = SESSIONS.get()()
    return session


def _find(session: Session, who: str) -> User:
    email = normalised_or_none(who)
    user = session.get(User, who) or (email is not None and session.scalars(
        select(User).where(User.email == email)
    ).first()) or None
    if user is None:
        raise click.ClickException(f"no user {who}")
    return user


def _permissions(values: tuple[str, ...]) -> list[str]:
    try:
        return checked(p for value in values for p in value.replace(",", " ").split())
    except UnknownPermission as exc:
        raise click.ClickException(
            f"unknown permission {exc}; the catalogue: {' '.join(CATALOGUE)}"
        ) from None


@users_cli.command("create")
@click.argument("email")
@click.option("--name", default="")
@click.option("--permission", "-p", "permissions", multiple=True,
              help="permission (repeatable); default: AUTH_DEFAULT_PERMISSIONS")
@click.option("--password", is_flag=True, help="prompt for a local-account password")
def create(email: str, name: str, permissions: tuple[str, ...], password: bool) -> None:
    """Create a user (a local account when --password is given)."""
    try:
        email = normalise_email(email)
    except InvalidEmail as refused:
        raise click.ClickException(f"{email}: {refused}") from None
    with _session() as session:
        if email_taken(session, email):
            raise click.ClickException(f"{email} already has an account")
        user = User(email=email, name=name or email.split("@")[0], issuer=LOCAL_ISSUER,
                    permissions=_permissions(permissions) if permissions
                    else default_permissions(current_app.config))
        if password:
            user.password_hash = hash_password(
                click.prompt("Password", hide_input=True, confirmation_prompt=True)
            )
        session.add(user)
        session.flush()
        user.subject = user.id
        audit.record("users.create", resource=f"user:{user.id}", principal_id=None,
                     details={"permissions": user.permissions}, session=session)
        session.commit()
        click.echo(f"{user.id} {email} {' '.join(user.permissions)}")


@users_cli.command("grant")
@click.argument("who")
@click.argument("permissions", nargs=-1, required=True)
def grant(who: str, permissions: tuple[str, ...]) -> None:
    """Add permissions to a user (by id or email)."""
    wanted = _permissions(permissions)
    with _session() as session:
        user = _find(session, who)
        user.permissions = sorted(set(user.permissions or []) | set(wanted))
        audit.record("users.grant", resource=f"user:{user.id}", principal_id=None,
                     details={"permissions": wanted}, session=session)
        session.commit()
        click.echo(f"{user.id} {' '.join(user.permissions)} (effective at next login or refresh)")


@users_cli.command("revoke")
@click.argument("who")
@click.argument("permissions", nargs=-1, required=True)
def revoke(who: str, permissions: tuple[str, ...]) -> None:
    """Remove permissions from a user (by id or email)."""
    unwanted = set(_permissions(permissions))
    with _session() as session:
        user = _find(session, who)
        user.permissions = [p for p in user.permissions or [] if p not in unwanted]
        audit.record("users.revoke", resource=f"user:{user.id}", principal_id=None,
                     details={"permissions": sorted(unwanted)}, session=session)
        session.commit()
        click.echo(f"{user.id} {' '.join(user.permissions)} (effective at next login or refresh)")
