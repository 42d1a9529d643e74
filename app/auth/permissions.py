"""The permission catalogue, the defaults of new users and what a user holds at login/refresh.

Permissions are copied into the access token when it is minted, so a change (``flask users
grant|revoke`` or a plugin's mapping) takes effect at the user's next login or refresh. The
plugins see the ID-token claims the session was opened with at its login and at every refresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import current_app

CATALOGUE: tuple[str, ...] = tuple(
    (
        "households:create households:read households:update households:delete members:read "
        "members:manage items:read items:write outfits:read outfits:write requests:read "
        "requests:create requests:approve purchases:create purchases:confirm audit:read "
        "users:admin"
    ).split()
)
ADMIN = "users:admin"


class UnknownPermission(ValueError):
    """A permission that is not in the catalogue."""


def default_permissions(config: Mapping[str, Any]) -> list[str]:
    configured = config.get("AUTH_DEFAULT_PERMISSIONS")
    if configured is None:
        return [p for p in CATALOGUE if p != ADMIN]
    return checked(configured)


def checked(permissions: Iterable[str]) -> list[str]:
    result: list[str] = []
    for permission in permissions:
        if permission not in CATALOGUE:
            raise UnknownPermission(permission)
        if permission not in result:
            result.append(permission)
    return result


def effective_permissions(user: Any, claims: dict[str, Any] | None = None) -> list[str]:
    """The user's stored permissions plus those the ``permissions_for_user`` plugins add."""
    from app.plugins import hook

    held = list(user.permissions or [])
    for extra in hook(current_app).permissions_for_user(user=user, claims=claims):
        for permission in extra or []:
            if permission not in held:
                held.append(str(permission))
    return sorted(held)
