"""Invitations: an owner invites an email address into a household with a role; only the person
whose **verified** address it names accepts (a membership) or declines it, until it expires
(``INVITATION_TTL_SECONDS``) or an owner revokes it.

Another person's invitation is the same 404 as an unknown one. An unverified address (a local
account whose confirmation link was not used, an OIDC login without ``email_verified: true``)
is 403: no one becomes a member by claiming an address they cannot read. Each step is audited on
the household's chain. Accepting is one conditional ``UPDATE … WHERE status = 'PENDING'`` plus the
membership insert in one transaction: of two concurrent accepts one wins, the other gets 409.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from app import audit, clock
from app.auth.emails import InvalidEmail
from app.auth.users import normalise_email
from app.context import Principal
from app.db import db
from app.fastread import Read
from app.gateway.errors import Conflict, Forbidden, Gone, NotFound, Unprocessable
from app.gateway.pagination import keyset
from app.gateway.schemas import PageQuery, Trusted
from app.gateway.tenancy import HouseholdScope
from app.households.schemas import (
    InvitationOut,
    MemberIn,
    MembershipOut,
)
from app.models import Household, Invitation, Member, User
from app.sqltypes import rows_changed

NOT_FOUND = "Invitation not found"


def status_of(invitation: Invitation | dict[str, Any]) -> str:
    """The status a client sees: a pending invitation past its expiry is ``EXPIRED``."""
    status, expires_at = ((invitation["status"], invitation["expires_at"])
                          if isinstance(invitation, dict)
                          else (invitation.status, invitation.expires_at))
    if status == "PENDING" and expires_at <= clock.now():
        return "EXPIRED"
    return str(status)


# Reads, built once (app.fastread).
_INVITATIONS = keyset(
    select(Invitation.id, Invitation.email, Invitation.role, Invitation.status,
           Invitation.expires_at, Invitation.created_at)
    .where(Invitation.household_id == bindparam("household_id")),
    Invitation.created_at, Invitation.id, newest_first=True)
_INVITER = select(User.name).where(User.id == Invitation.invited_by).scalar_subquery()
_MY_INVITATIONS = keyset(
    select(Invitation.id, Invitation.email, Invitation.role, Invitation.status,
           Invitation.expires_at, Invitation.household_id, Invitation.created_at,
           Household.name.label("household_name"), _INVITER.label("invited_by_name"))
    .join(Household, Household.id == Invitation.household_id)
    .where(Invitation.email == bindparam("email"), Invitation.status == "PENDING",
           Invitation.expires_at > bindparam("now", type_=Invitation.expires_at.type)),
    Invitation.created_at, Invitation.id, newest_first=True)
_USER_EMAIL = Read(select(User.email, User.email_verified_at).where(User.id == bindparam("id")))


def _out(invitation: Invitation) -> InvitationOut:
    return InvitationOut(id=invitation.id, email=invitation.email,
                         role=invitation.role,  # type: ignore[arg-type]
                         status=status_of(invitation),  # type: ignore[arg-type]
                         expires_at=invitation.expires_at, created_at=invitation.created_at)


# -- owners: invite, list, revoke ------------------------------------------------------------


def invite(household: HouseholdScope, body: MemberIn) -> InvitationOut:
    """Check, then insert: the household's row lock (``household_lock="update"``) makes
    concurrent invitations of one household take turns, so one address gets one pending
    invitation."""
    try:
        email = normalise_email(body.email)
    except InvalidEmail as refused:
        raise Unprocessable("This email address cannot be used",
                            details=[{"field": "email", "message": str(refused)}]) from None
    member = db.session.scalars(
        household.select(Member).join(User, User.id == Member.user_id).where(User.email == email)
    ).first()
    if member is not None:
        raise Conflict("Already a member")
    now = clock.now()
    pending = db.session.scalars(household.select(Invitation).where(
        Invitation.email == email, Invitation.status == "PENDING", Invitation.expires_at > now,
    )).first()
    if pending is not None:
        raise Conflict("Already invited", invitationId=pending.id)
    ttl = int(current_app.config["INVITATION_TTL_SECONDS"])
    invitation = household.add(Invitation(
        email=email, role=body.role, status="PENDING", invited_by=household.user_id,
        created_at=now, expires_at=now + timedelta(seconds=ttl),
    ))
    db.session.flush()
    audit.record("invitation.created", household_id=household.id,
                 resource=f"invitation:{invitation.id}", details={"role": body.role})
    return _out(invitation)


def list_invitations(household: HouseholdScope, query: PageQuery) -> Trusted:
    rows, cursor = _INVITATIONS.page({"household_id": household.id},
                                     limit=query.limit, cursor=query.cursor)
    return Trusted({"items": [{**row, "status": status_of(row)} for row in rows],
                    "next_cursor": cursor})


def revoke_invitation(household: HouseholdScope, invitation_id: str) -> None:
    invitation = household.get(Invitation, invitation_id, "Invitation")
    now = clock.now()
    revoked = db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.status == "PENDING",
               Invitation.expires_at > now)
        .values(status="REVOKED", decided_at=now, decided_by=household.user_id)
    )
    if rows_changed(revoked) != 1:
        raise Conflict("The invitation is no longer pending",
                       invitationStatus=status_of(invitation))
    audit.record("invitation.revoked", household_id=household.id,
                 resource=f"invitation:{invitation.id}")


# -- the invited person: list, accept, decline -----------------------------------------------


def _verified_email(principal: Principal) -> tuple[User, str | None]:
    """The caller and their address if it is verified (else None)."""
    user = db.session.get(User, principal.user_id)
    if user is None:
        raise NotFound(NOT_FOUND)
    verified = user.email if user.email is not None and user.email_verified_at else None
    return user, verified


def my_invitations(query: PageQuery, principal: Principal) -> Trusted:
    user = _USER_EMAIL.first({"id": principal.user_id})
    if user is None:
        raise NotFound(NOT_FOUND)
    if user["email"] is None or user["email_verified_at"] is None:
        return Trusted({"items": [], "next_cursor": None})
    rows, cursor = _MY_INVITATIONS.page({"email": user["email"], "now": clock.now()},
                                        limit=query.limit, cursor=query.cursor)
    return Trusted({"items": [{**row, "status": status_of(row)} for row in rows],
                    "next_cursor": cursor})


def _answerable(invitation_id: str, principal: Principal, action: str) -> tuple[Invitation, User]:
    """The caller's own pending invitation, or the refusal: someone else's or unknown 404,
    unverified address 403, no longer pending 409, expired 410."""
    invitation = db.session.get(Invitation, invitation_id)
    user, verified = _verified_email(principal)
    if invitation is None or user.email is None or invitation.email != user.email:
        raise NotFound(NOT_FOUND)
    if verified is None:
        audit.record_denial(action, household_id=invitation.household_id,
                            resource=f"invitation:{invitation.id}",
                            details={"reason": "email not verified"})
        raise Forbidden("Confirm your email address before answering an invitation",
                        reason="EmailNotVerified")
    status = status_of(invitation)
    if status == "EXPIRED":
        raise Gone("The invitation has expired")
    if status != "PENDING":
        raise Conflict("The invitation is no longer pending", invitationStatus=status)
    return invitation, user


def _decide(invitation: Invitation, user: User, status: str) -> None:
    """PENDING → ``status``, exactly once (409 for the loser of a race), in this transaction."""
    now = clock.now()
    decided = db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.status == "PENDING",
               Invitation.expires_at > now)
        .values(status=status, decided_at=now, decided_by=user.id)
    )
    if rows_changed(decided) != 1:
        db.session.rollback()
        raise Conflict("The invitation is no longer pending")


def accept_invitation(invitation_id: str, principal: Principal) -> MembershipOut:
    invitation, user = _answerable(invitation_id, principal, "invitation.accepted")
    if db.session.get(Member, (invitation.household_id, user.id)) is not None:
        raise Conflict("Already a member of this household")
    _decide(invitation, user, "ACCEPTED")
    member = Member(household_id=invitation.household_id, user_id=user.id, role=invitation.role,
                    joined_at=clock.now())
    try:
        with db.session.begin_nested():
            db.session.add(member)
            db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("Already a member of this household") from None
    audit.record("invitation.accepted", household_id=invitation.household_id,
                 resource=f"invitation:{invitation.id}", principal_id=user.id,
                 details={"role": invitation.role, "userId": user.id})
    return MembershipOut(household_id=member.household_id, user_id=user.id, email=user.email,
                         name=user.name, role=member.role,  # type: ignore[arg-type]
                         joined_at=member.joined_at)


def decline_invitation(invitation_id: str, principal: Principal) -> None:
    invitation, user = _answerable(invitation_id, principal, "invitation.declined")
    _decide(invitation, user, "DECLINED")
    audit.record("invitation.declined", household_id=invitation.household_id,
                 resource=f"invitation:{invitation.id}", principal_id=user.id)
