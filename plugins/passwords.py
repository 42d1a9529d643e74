"""Local accounts (``AUTH_LOCAL_ACCOUNTS_ENABLED``): register, log in with email and password,
reset a forgotten password by mail. Passwords are hashed with argon2 (argon2-cffi); reset tokens
are itsdangerous timed signatures that also cover a fingerprint of the current password hash, so
a token stops working once it has been used (the hash changes) or has expired.

Registration mails a confirmation link (an itsdangerous timed token of the account and its
address, ``AUTH_EMAIL_VERIFICATION_TTL_SECONDS``, single use: a confirmed address takes no
second confirmation); ``POST /api/auth/verify-email`` marks the address verified, which household
invitations require. A completed password reset verifies the address too: the reset mail reached
it. Addresses are stored in their canonical form (``app.auth.emails``).

A reset request does the same work on the request path whether or not the address has an
account (the same statements, one audit event, one item handed to the mail queue), and the mail
is written by the mail queue's thread (``plugins.mail``): the answer's timing says nothing
about the account.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError
from flask import Blueprint, Flask, current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import Field
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app import audit, clock
from app.auth.emails import InvalidEmail
from app.auth.passwords import hash_password, hasher
from app.auth.permissions import default_permissions
from app.auth.schemas import UserOut
from app.auth.sessions import revoke_all
from app.auth.throttle import login_throttle
from app.auth.users import LOCAL_ISSUER, email_taken, normalise_email, normalised_or_none
from app.context import Principal
from app.db import db, new_id, utcnow
from app.gateway.contracts import endpoint
from app.gateway.errors import BadRequest, Conflict, Forbidden, Unauthorized, Unprocessable
from app.gateway.schemas import Body, Schema
from app.hookspecs import hookimpl
from app.hooktypes import Identity, LoginBody, LoginFailed
from app.models import User
from app.sqltypes import rows_changed
from plugins.mail import queue_mail

log = logging.getLogger(__name__)

EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$"
RESET_SALT = "hearthgate.password-reset"
VERIFY_SALT = "hearthgate.email-verification"

@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against for unknown emails, so that they cost the same time as known ones."""
    return hasher.hash(secrets.token_urlsafe(16))


def _fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:24]


class LocalAccounts:
    """The ``login_providers`` entry for ``{"email", "password"}`` bodies."""

    name = "password"

    def accepts(self, body: LoginBody) -> bool:
        return body.email is not None and body.password is not None

    def account_of(self, body: LoginBody) -> str | None:
        return _lookup_form(body.email) if body.email else None

    def authenticate(self, body: LoginBody) -> Identity:
        assert body.email is not None and body.password is not None  # noqa: S101 - accepts()
        email = _lookup_form(body.email)
        user = db.session.scalars(
            select(User).where(User.email == email, User.password_hash.is_not(None))
        ).first()
        stored = user.password_hash if user is not None else None
        # Nothing is written yet: end the read before the slow hash, so that the transaction
        # (on SQLite, the database's one write lock) is not held while argon2 runs.
        db.session.commit()
        try:
            hasher.verify(stored or _dummy_hash(), body.password)
        except (VerificationError, InvalidHashError):
            raise LoginFailed("wrong password" if user else "unknown account", email) from None
        if user is None or stored is None:
            raise LoginFailed("unknown account", email)
        if hasher.check_needs_rehash(stored):
            user.password_hash = hash_password(body.password)
        return Identity(user=user, method="password", account=email)


def _lookup_form(email: str) -> str:
    """The canonical address, or for one that cannot be an account's, a form that matches none
    (the same work follows either way)."""
    return normalised_or_none(email) or email.strip().lower()


# -- registration and resets -----------------------------------------------------------------

bp = Blueprint("passwords", __name__, url_prefix="/api/auth")


class RegisterIn(Body):
    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)
    password: str = Field(min_length=10, max_length=1024)
    name: str = Field(min_length=1, max_length=200)


class RegisteredOut(Schema):
    user: UserOut


class ResetIn(Body):
    email: str = Field(min_length=3, max_length=320)


class ResetConfirmIn(Body):
    token: str = Field(min_length=1, max_length=1000)
    password: str = Field(min_length=10, max_length=1024)


class ChangePasswordIn(Body):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=10, max_length=1024)


class VerifyEmailIn(Body):
    token: str = Field(min_length=1, max_length=1000)


def _serializer(salt: str = RESET_SALT) -> URLSafeTimedSerializer:
    config = current_app.config
    secret = config.get("AUTH_PASSWORD_RESET_SECRET") or config.get("AUTH_JWT_SECRET")
    if not secret:
        raise RuntimeError("AUTH_PASSWORD_RESET_SECRET is unset")
    return URLSafeTimedSerializer(str(secret), salt=salt)


def email_verification_token(user: User) -> str:
    """The code of the confirmation link for ``user``'s current address."""
    return str(_serializer(VERIFY_SALT).dumps({"u": user.id, "e": user.email}))


def _queue_verification_mail(user: User) -> None:
    assert user.email is not None  # noqa: S101 - local accounts have an address
    token = email_verification_token(user)
    hours = int(current_app.config["AUTH_EMAIL_VERIFICATION_TTL_SECONDS"]) // 3600
    base = current_app.config.get("PUBLIC_SPA_URL")
    link = f"{str(base).rstrip('/')}/#/verify-email?token={token}\n\nor use this code:\n\n" \
        if base else ""
    queue_mail(user.email, "Confirm your email address for Hearthgate",
               "Someone (we hope you) created a Hearthgate account with this address. To "
               f"confirm it is yours, within {hours} hours open\n\n{link}{token}\n\n"
               "If it was not you, do not confirm: ask for a password reset instead, which "
               "gives the account to whoever reads this mail.\n")


@bp.post("/register")
@endpoint(auth="public", body=RegisterIn, response=RegisteredOut, status=201, tags=("auth",),
          errors=(409, 422),
          summary="Create a local account; 409 reveals that the email already has an account",
          description="409 when the email already belongs to an account (local, or a login "
          "through the identity provider), including the losers of concurrent registrations of "
          "one email. This tells the caller that the address has an account: the contract keeps "
          "it, so that a person learns at once to log in or reset instead. What bounds "
          "enumeration through it is the per-IP anonymous rate limit (`RATELIMIT_ANONYMOUS`, "
          "10 a minute by default, shared with every anonymous route). Password reset and login "
          "answer alike for known and unknown addresses. 422 for an address whose domain is not "
          "a valid internationalised domain name or mixes scripts (a look-alike of another); "
          "addresses are compared in one canonical form (NFKC, lower case, IDNA UTS #46).")
def register(body: RegisterIn) -> dict[str, Any]:
    try:
        email = normalise_email(body.email)
    except InvalidEmail as refused:
        raise Unprocessable("This email address cannot be used",
                            details=[{"field": "email", "message": str(refused)}]) from None
    password_hash = hash_password(body.password)  # before the transaction: argon2 is slow
    if email_taken(db.session, email):
        raise Conflict("An account with this email exists")
    user = User(id=new_id("usr"), email=email, name=body.name, issuer=LOCAL_ISSUER,
                password_hash=password_hash,
                permissions=default_permissions(current_app.config))
    user.subject = user.id
    try:
        with db.session.begin_nested():  # a concurrent registration of the email may commit first
            db.session.add(user)
            db.session.flush()
    except IntegrityError:
        raise Conflict("An account with this email exists") from None
    audit.record("users.register", resource=f"user:{user.id}", principal_id=user.id)
    _queue_verification_mail(user)
    return {"user": user}


@bp.post("/verify-email")
@endpoint(auth="public", body=VerifyEmailIn, status=204, tags=("auth",), errors=(400,),
          summary="Confirm a local account's address with the code mailed at registration",
          description="Single use: the code names the account and its address, and is valid "
          "`AUTH_EMAIL_VERIFICATION_TTL_SECONDS`. A bad, expired or already used code is 400. "
          "A confirmed address may accept household invitations sent to it.")
def verify_email(body: VerifyEmailIn) -> None:
    ttl = int(current_app.config["AUTH_EMAIL_VERIFICATION_TTL_SECONDS"])
    try:
        data = _serializer(VERIFY_SALT).loads(body.token, max_age=ttl)
    except BadSignature:  # SignatureExpired is one
        data = None
    user = db.session.get(User, str(data.get("u"))) if isinstance(data, dict) else None
    if (user is None or user.email is None or user.email_verified_at is not None
            or not isinstance(data, dict) or data.get("e") != user.email):
        audit.record_denial("users.email_verified",
                            details={"reason": "bad, expired or used code"})
        raise BadRequest("Invalid, expired or already used confirmation code")
    # Single use under concurrent confirmations too: one conditional update wins.
    confirmed = db.session.execute(
        update(User).where(User.id == user.id, User.email == user.email,
                           User.email_verified_at.is_(None))
        .values(email_verified_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if rows_changed(confirmed) != 1:
        db.session.rollback()
        audit.record_denial("users.email_verified", details={"reason": "already used code"})
        raise BadRequest("Invalid, expired or already used confirmation code")
    audit.record("users.email_verified", resource=f"user:{user.id}", principal_id=user.id)


@bp.post("/reset-password")
@endpoint(auth="public", body=ResetIn, status=202, tags=("auth",),
          summary="Mail a reset link; 202 whether or not the account exists",
          description="The answer is the same, and the request does the same work (the same "
          "statements, one audit event, one message handed to the mail queue), whether or not "
          "the address has a local account; the mail is sent off the request path, so neither "
          "the body nor the timing says whether the account exists.")
def reset_password(body: ResetIn) -> None:
    email = _lookup_form(body.email)
    user = db.session.scalars(
        select(User).where(User.email == email, User.password_hash.is_not(None))
    ).first()
    # The same work either way, so the answer's timing says nothing about the account.
    subject = user.id if user is not None else new_id("usr")
    fingerprint = _fingerprint(user.password_hash if user else None)
    token = _serializer().dumps({"u": subject, "p": fingerprint})
    ttl_minutes = int(current_app.config["AUTH_PASSWORD_RESET_TTL_SECONDS"]) // 60
    queue_mail(email if user is not None else None, "Reset your Hearthgate password",
               f"Use this code within {ttl_minutes} minutes to choose a new password:\n\n"
               f"{token}\n")
    audit.record("auth.reset.request", resource=f"user:{user.id}" if user is not None else None,
                 principal_id=user.id if user is not None else None,
                 details={"account": "local" if user is not None else "none"})


@bp.post("/reset-password/confirm")
@endpoint(auth="public", body=ResetConfirmIn, status=204, tags=("auth",), errors=(401,),
          summary="Set a new password with a reset token (single use); ends every session",
          description="Every session of the account ends (their refresh tokens stop working at "
          "once), and the address counts as verified: the reset mail reached it.")
def reset_password_confirm(body: ResetConfirmIn) -> None:
    ttl = int(current_app.config["AUTH_PASSWORD_RESET_TTL_SECONDS"])
    try:
        data = _serializer().loads(body.token, max_age=ttl)
    except BadSignature:  # SignatureExpired is one
        audit.record_denial("auth.reset.confirm", details={"reason": "bad or expired token"})
        raise Unauthorized("Invalid or expired reset token") from None
    new_hash = hash_password(body.password)  # before the transaction: argon2 is slow
    user = db.session.get(User, str(data.get("u"))) if isinstance(data, dict) else None
    if user is None or user.password_hash is None or not secrets.compare_digest(
        str(data.get("p")), _fingerprint(user.password_hash)
    ):
        audit.record_denial("auth.reset.confirm", details={"reason": "used or unknown token"})
        raise Unauthorized("Invalid or expired reset token")
    # Single use under concurrent confirmations too: the hash changes only from the one the token
    # was signed for, and the row lock makes every other confirmation see the new hash. The reset
    # mail reached the address, so it is verified now if it was not before.
    changed = db.session.execute(
        update(User).where(User.id == user.id, User.password_hash == user.password_hash)
        .values(password_hash=new_hash, updated_at=utcnow(),
                email_verified_at=func.coalesce(User.email_verified_at, clock.now()))
        .execution_options(synchronize_session=False)
    )
    if rows_changed(changed) != 1:
        db.session.rollback()
        audit.record_denial("auth.reset.confirm", details={"reason": "used or unknown token"})
        raise Unauthorized("Invalid or expired reset token")
    revoke_all(user.id)
    audit.record("auth.reset.confirm", resource=f"user:{user.id}", principal_id=user.id)


@bp.post("/password")
@endpoint(auth="bearer", body=ChangePasswordIn, status=204, tags=("auth",), errors=(403, 409, 429),
          sensitive=True,
          summary="Change the caller's password; ends every session of the account",
          description="Needs the current password (a wrong one is 403 and counts as a failed "
          "login of the account, `AUTH_LOGIN_FAILURES_PER_ACCOUNT`). Every session of the "
          "account ends, this one included: log in again with the new password. 409 when a "
          "concurrent change of the same password won.")
def change_password(body: ChangePasswordIn, principal: Principal) -> None:
    user = db.session.get(User, principal.user_id)
    if user is None or user.password_hash is None or user.email is None:
        raise Forbidden("This account has no password")
    user_id, email, stored = user.id, user.email, user.password_hash
    # Nothing is written yet: end the read before the slow hashes, so that the transaction (on
    # SQLite, the database's one write lock) is not held while argon2 runs.
    db.session.commit()
    throttle = login_throttle()
    throttle.check(email)
    try:
        hasher.verify(stored, body.current_password)
    except (VerificationError, InvalidHashError):
        throttle.failed(None, email)
        audit.record_denial("auth.password.change", principal_id=user_id,
                            details={"reason": "wrong current password"})
        raise Forbidden("The current password is wrong") from None
    throttle.succeeded(email)
    new_hash = hash_password(body.new_password)
    # One change wins among concurrent ones: the hash changes only from the one just verified.
    changed = db.session.execute(
        update(User).where(User.id == user_id, User.password_hash == stored)
        .values(password_hash=new_hash, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if rows_changed(changed) != 1:
        db.session.rollback()
        raise Conflict("The password was changed meanwhile")
    ended = revoke_all(user_id)
    audit.record("auth.password.change", resource=f"user:{user_id}", principal_id=user_id,
                 details={"revoked": ended})


# -- hooks -----------------------------------------------------------------------------------


def write_to_instance_folder(instance_path: str) -> Callable[[str, str, str], None]:
    """Development mail: one file per message in ``<instance>/mail`` (never the log)."""

    def send(to: str, subject: str, body: str) -> None:
        folder = Path(instance_path) / "mail"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{utcnow():%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.eml"
        path = folder / name
        path.write_text(f"To: {to}\nSubject: {subject}\n\n{body}", encoding="utf-8")
        path.chmod(0o600)
        log.info("mail written to the instance folder (%s)", name)

    return send


@hookimpl
def mail_sender(
    config: dict[str, Any], instance_path: str
) -> Callable[[str, str, str], None] | None:
    if config.get("HEARTHGATE_ENV") == "production":
        return None
    return write_to_instance_folder(instance_path)


@hookimpl
def login_providers(app: Flask) -> list[Any] | None:
    return [LocalAccounts()] if app.config.get("AUTH_LOCAL_ACCOUNTS_ENABLED") else None


@hookimpl
def register_blueprints(app: Flask) -> list[Blueprint] | None:
    return [bp] if app.config.get("AUTH_LOCAL_ACCOUNTS_ENABLED") else None


@hookimpl
def startup_checks(config: dict[str, Any]) -> list[str] | None:
    if config.get("HEARTHGATE_ENV") != "production":
        return None
    if not config.get("AUTH_LOCAL_ACCOUNTS_ENABLED"):
        return None
    problems = []
    if not config.get("AUTH_PASSWORD_RESET_SECRET"):
        problems.append("AUTH_PASSWORD_RESET_SECRET is unset while AUTH_LOCAL_ACCOUNTS_ENABLED")
    return problems
