"""Routes of households and their members. Thin: each route declares its contract; the rules
live in services.py and policies.py (the before guards)."""

from __future__ import annotations

from app.context import Principal
from app.gateway.contracts import Call, Reply, endpoint
from app.gateway.schemas import PageQuery, Trusted
from app.gateway.tenancy import HouseholdScope
from app.households import bp, services
from app.households.policies import keeps_an_owner, target_member
from app.households.schemas import (
    HouseholdIn,
    HouseholdOut,
    HouseholdPage,
    HouseholdPatch,
    MemberOut,
    MemberPage,
    MemberPatch,
)
from app.models import HouseholdRole

OWNER = [HouseholdRole.OWNER]
HOUSEHOLD = "households"


# -- households ------------------------------------------------------------------------------


@bp.post("/households")
@endpoint(permissions=["households:create"], body=HouseholdIn, response=HouseholdOut, status=201,
          tags=[HOUSEHOLD], summary="Create a household; the caller becomes its owner")
def create_household(body: HouseholdIn, principal: Principal) -> HouseholdOut:
    return services.create_household(body, principal)


@bp.get("/households")
@endpoint(permissions=["households:read"], query=PageQuery, response=HouseholdPage,
          tags=[HOUSEHOLD], summary="Households the caller is a member of")
def list_households(query: PageQuery, principal: Principal) -> Trusted:
    return services.household_page(query, principal)


@bp.get("/households/<household_id>")
@endpoint(permissions=["households:read"], response=HouseholdOut, household=True,
          tags=[HOUSEHOLD], summary="A household of the caller")
def get_household(household: HouseholdScope) -> Trusted:
    return services.get_household(household)


@bp.patch("/households/<household_id>")
@endpoint(permissions=["households:update"], body=HouseholdPatch, response=HouseholdOut,
          household=True, roles=OWNER, tags=[HOUSEHOLD], summary="Rename a household (owner)")
def rename_household(household: HouseholdScope, body: HouseholdPatch) -> HouseholdOut:
    return services.rename_household(household, body)


@bp.delete("/households/<household_id>")
@endpoint(permissions=["households:delete"], household=True, household_lock="update", roles=OWNER,
          tags=[HOUSEHOLD], summary="Delete a household and everything in it (owner)")
def delete_household(household: HouseholdScope) -> Reply:
    services.delete_household(household)
    return Reply(status=204)


# -- members ---------------------------------------------------------------------------------


@bp.get("/households/<household_id>/members")
@endpoint(permissions=["members:read"], query=PageQuery, response=MemberPage, household=True,
          tags=["members"], summary="Members of a household")
def list_members(household: HouseholdScope, query: PageQuery) -> Trusted:
    return services.member_page(household, query)


@bp.patch("/households/<household_id>/members/<user_id>")
@endpoint(permissions=["members:manage"], body=MemberPatch, response=MemberOut, household=True,
          roles=OWNER, before=[keeps_an_owner], tags=["members"], errors=[409],
          summary="Change a member's role (owner); the last owner cannot be demoted")
def change_role(call: Call, household: HouseholdScope, body: MemberPatch,
                user_id: str) -> MemberOut:
    return services.change_role(household, target_member(call), body)


@bp.delete("/households/<household_id>/members/<user_id>")
@endpoint(permissions=["members:manage"], household=True, roles=OWNER, before=[keeps_an_owner],
          tags=["members"], errors=[409],
          summary="Remove a member (owner); the last owner cannot be removed")
def remove_member(call: Call, household: HouseholdScope, user_id: str) -> Reply:
    services.remove_member(household, target_member(call))
    return Reply(status=204)
