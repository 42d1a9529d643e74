"""Wire shapes of households, members and invitations: what a client may send and see."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.gateway.schemas import Body, Schema, Timestamp

# The wire spelling of app.models.HouseholdRole (a Literal: bodies are validated strictly, and
# a strict enum field would refuse the JSON string); tests check that the two agree.
Role = Literal["owner", "adult", "child"]
InvitationStatus = Literal["PENDING", "ACCEPTED", "DECLINED", "REVOKED", "EXPIRED"]
_LOCAL = r"[^@\s\x00-\x1f\x7f-\x9f]+"
EMAIL_PATTERN = f"^{_LOCAL}@{_LOCAL}$"
Name = Field(min_length=1, max_length=200)


class HouseholdIn(Body):
    name: str = Name


class HouseholdPatch(Body):
    name: str = Name


class HouseholdOut(Schema):
    id: str
    name: str
    role: Role
    created_at: Timestamp


class MemberIn(Body):
    # No control characters (U+0085 is whitespace to the server, not to ECMA-262's \s).
    email: str = Field(min_length=3, max_length=320, pattern=EMAIL_PATTERN)
    role: Role


class MemberPatch(Body):
    role: Role


class MemberOut(Schema):
    user_id: str
    email: str | None
    name: str
    role: Role
    joined_at: Timestamp


class HouseholdPage(Schema):
    items: list[HouseholdOut]
    next_cursor: str | None = None


class MemberPage(Schema):
    items: list[MemberOut]
    next_cursor: str | None = None


class InvitationOut(Schema):
    """An invitation as its household's owners see it (and the 201 of ``POST …/members``)."""

    id: str
    email: str
    role: Role
    status: InvitationStatus
    expires_at: Timestamp
    created_at: Timestamp


class InvitationPage(Schema):
    items: list[InvitationOut]
    next_cursor: str | None = None


class MyInvitationOut(Schema):
    """A pending invitation as the invited person sees it: which household, which role."""

    id: str
    email: str
    role: Role
    status: InvitationStatus
    expires_at: Timestamp
    household_id: str
    household_name: str
    invited_by_name: str | None


class MyInvitationPage(Schema):
    items: list[MyInvitationOut]
    next_cursor: str | None = None


class MembershipOut(Schema):
    """The membership an accepted invitation made."""

    household_id: str
    user_id: str
    email: str | None
    name: str
    role: Role
    joined_at: Timestamp
