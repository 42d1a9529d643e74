"""Routes of invitations: owners invite, list and revoke; the invited person lists, accepts or
declines. Thin: each route declares its contract; the rules live in invitations.py."""

from __future__ import annotations

from app.context import Principal
from app.gateway.contracts import Reply, endpoint
from app.gateway.schemas import PageQuery, Trusted
from app.gateway.tenancy import HouseholdScope
from app.households import bp, invitations
from app.households.schemas import (
    InvitationOut,
    InvitationPage,
    MemberIn,
    MembershipOut,
    MyInvitationPage,
)
from app.models import HouseholdRole

OWNER = [HouseholdRole.OWNER]
TAGS = ["invitations"]


@bp.post("/households/<household_id>/members")
@endpoint(permissions=["members:manage"], body=MemberIn, response=InvitationOut, status=201,
          household=True, roles=OWNER, tags=["members", *TAGS], errors=[409, 422],
          creates="invitation_id", household_lock="update",
          summary="Invite someone by email (owner): an invitation, not yet a membership",
          description="The invited person becomes a member when they accept it, logged in with "
          "this address verified (`GET /api/invitations`, `POST /api/invitations/{id}/accept`), "
          "within `INVITATION_TTL_SECONDS`. Whether the address has an account is not revealed. "
          "409 when the address is a member already or has a pending invitation here; 422 for an "
          "address whose domain is not a valid internationalised domain name or mixes scripts "
          "(a look-alike of another).")
def invite(household: HouseholdScope, body: MemberIn) -> InvitationOut:
    return invitations.invite(household, body)


@bp.get("/households/<household_id>/invitations")
@endpoint(permissions=["members:manage"], query=PageQuery, response=InvitationPage,
          household=True, roles=OWNER, tags=TAGS,
          summary="The household's invitations, newest first (owner)",
          description="Every invitation with its status: PENDING, ACCEPTED, DECLINED, REVOKED, "
          "or EXPIRED (pending past its expiry).")
def list_invitations(household: HouseholdScope, query: PageQuery) -> Trusted:
    return invitations.list_invitations(household, query)


@bp.delete("/households/<household_id>/invitations/<invitation_id>")
@endpoint(permissions=["members:manage"], household=True, roles=OWNER, tags=TAGS, errors=[409],
          summary="Revoke a pending invitation (owner)",
          description="Another household's or an unknown invitation: 404. One that is no longer "
          "pending (accepted, declined, revoked, expired): 409.")
def revoke_invitation(household: HouseholdScope, invitation_id: str) -> Reply:
    invitations.revoke_invitation(household, invitation_id)
    return Reply(status=204)


@bp.get("/invitations")
@endpoint(auth="bearer", query=PageQuery, response=MyInvitationPage, tags=TAGS,
          summary="The caller's pending invitations (to their verified address)",
          description="Empty while the caller's address is not verified.")
def my_invitations(query: PageQuery, principal: Principal) -> Trusted:
    return invitations.my_invitations(query, principal)


@bp.post("/invitations/<invitation_id>/accept")
@endpoint(auth="bearer", response=MembershipOut, tags=TAGS, errors=[409, 410],
          summary="Accept an invitation: the caller becomes a member with its role",
          description="Only the person whose verified address the invitation names: someone "
          "else's or an unknown invitation is 404, an unverified address 403, an expired "
          "invitation 410, one no longer pending (or a caller who is a member already) 409. "
          "Of concurrent accepts, one makes the membership and the others get 409.")
def accept_invitation(invitation_id: str, principal: Principal) -> MembershipOut:
    return invitations.accept_invitation(invitation_id, principal)


@bp.post("/invitations/<invitation_id>/decline")
@endpoint(auth="bearer", status=204, tags=TAGS, errors=[409, 410],
          summary="Decline an invitation",
          description="The same rules as accepting: the invited person's own verified address "
          "only (else 404, or 403 while unverified).")
def decline_invitation(invitation_id: str, principal: Principal) -> Reply:
    invitations.decline_invitation(invitation_id, principal)
    return Reply(status=204)
