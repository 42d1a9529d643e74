"""Users by identity: created or updated by the provider's (iss, sub); local accounts by email."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, configure_mappers, make_transient_to_detached

from app import clock
from app.auth.emails import InvalidEmail, canonical_email
from app.auth.permissions import default_permissions
from app.db import db
from app.fastread import Read
from app.models import User
from app.sqltypes import table_of

log = logging.getLogger(__name__)

LOCAL_ISSUER = "local"


def normalise_email(email: str) -> str:
    """The canonical form of an address (``app.auth.emails``); ``InvalidEmail`` when refused."""
    return canonical_email(email)


def normalised_or_none(email: str) -> str | None:
    try:
        return canonical_email(email)
    except InvalidEmail:
        return None


def email_taken(session: Session, email: str, except_user: str | None = None) -> bool:
    query = select(User.id).where(User.email == email)
    if except_user is not None:
        query = query.where(User.id != except_user)
    return session.scalars(query).first() is not None


_BY_IDENTITY = select(User).where(User.issuer == bindparam("issuer"),
                                  User.subject == bindparam("subject"))
# The same row as a plain read (app.fastread), compiled once: every login reads it, and the
# ORM's loading (result context, identity map) costs more than the statement. ``_loaded`` makes
# it an ORM instance.
_USERS = table_of(User)
_ROW_BY_IDENTITY = Read(select(_USERS).where(_USERS.c.issuer == bindparam("issuer"),
                                             _USERS.c.subject == bindparam("subject")))


_NEW_USER = User.__mapper__.class_manager.new_instance


def _loaded(row: dict[str, Any]) -> User:
    """The ``User`` of a row read without the ORM, as the ORM would have loaded it but detached
    (in no session: changes go through the session's own instance, ``upsert_identity``): its
    columns' values set as the ORM's loading sets them, without ``__init__`` or attribute events
    (the row's keys are the columns', which are the attributes')."""
    configure_mappers()  # as the ORM's loading does first (a no-op once they are)
    user: User = _NEW_USER()
    user.__dict__.update(row)
    make_transient_to_detached(user)
    return user


def _by_identity(session: Session | None, issuer: str, subject: str) -> User | None:
    """The identity's user, read in ``session``'s transaction, or with ``None`` in the request's
    (``db.connection``: before its session opens, without opening one)."""
    session = session if session is not None else db.opened_session()
    if session is not None and session.autoflush:
        session.flush()  # as the ORM's own query would: nothing to do unless changes are pending
    params = {"issuer": issuer, "subject": subject}
    rows = (_ROW_BY_IDENTITY.rows(params) if session is None
            else _ROW_BY_IDENTITY.rows_on(session.connection(), params))
    return _loaded(rows[0]) if rows else None


def upsert_identity(
    session: Session | None, issuer: str, subject: str, email: str | None, name: str | None,
    email_verified: bool = False,
) -> User:
    """The user of (``issuer``, ``subject``), created with the default permissions if new.
    ``session``: the session to read and write with; ``None`` for the request's (``db``),
    which a login that changes nothing about the user never needs to open.

    An email already held by another account is not copied: accounts are linked by (iss, sub)
    only, never by email, which a provider might let anyone claim. ``email_verified``: the
    provider vouches for the address (its ``email_verified`` claim), so the user's address counts
    as verified; an address the provider does not vouch for (any more) does not.
    """
    user = _by_identity(session, issuer, subject)
    if email is not None:
        email = normalised_or_none(email)
        # Already this user's (the column is unique, so no one else holds it): nothing to check.
        if email is not None and (user is None or user.email != email) and email_taken(
                _or_request(session), email, except_user=user.id if user else None):
            log.info("identity email already belongs to another account; not linked")
            email = None
    verified_at = clock.now() if email is not None and email_verified else None
    if user is None:
        return _create(_or_request(session), issuer, subject, email, name, verified_at)
    changes: dict[str, Any] = {}
    if email is not None and user.email != email:
        changes.update(email=email, email_verified_at=verified_at)
    elif email is not None and (user.email_verified_at is None) != (verified_at is None):
        changes["email_verified_at"] = verified_at
    if name and user.name != name[:200]:
        changes["name"] = name[:200]
    if not changes:  # an unchanged login writes nothing
        return user
    # Through the unit of work (the session may hold this user already): an UPDATE of these.
    session = _or_request(session)
    persistent = session.get_one(User, user.id)
    for attribute, value in changes.items():
        setattr(persistent, attribute, value)
    session.flush()
    return persistent


def _or_request(session: Session | None) -> Session:
    return session if session is not None else db.session


def _create(
    session: Session, issuer: str, subject: str, email: str | None, name: str | None,
    verified_at: datetime | None = None,
) -> User:
    """Insert the identity's user. A concurrent first login of the same identity may insert it
    first (the unique (issuer, subject) makes this one wait, then fail): its row is the answer.
    A concurrent account taking the same email leaves this one without it."""
    refused: IntegrityError | None = None
    for attempt_email in dict.fromkeys((email, None)):
        user = User(
            issuer=issuer, subject=subject, email=attempt_email, name=(name or "")[:200],
            permissions=default_permissions(current_app.config),
            email_verified_at=verified_at if attempt_email is not None else None,
        )
        try:
            with session.begin_nested():
                session.add(user)
                session.flush()
            return user
        except IntegrityError as exc:
            refused = exc
            if user in session:
                session.expunge(user)
        winner = session.scalars(_BY_IDENTITY, {"issuer": issuer, "subject": subject}).first()
        if winner is not None:
            return winner
    assert refused is not None  # noqa: S101 - every attempt above returned or was refused
    raise refused
