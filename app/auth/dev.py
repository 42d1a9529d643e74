"""``DEVELOPMENT_AUTH_ENABLED``: a request without a token acts as ``DEVELOPMENT_AUTH_USER``.

Refused in production by ``app.config``'s rules; here it is also never installed there.
"""

from __future__ import annotations

import logging

from flask import Flask

from app import clock
from app.auth.permissions import effective_permissions
from app.auth.users import upsert_identity
from app.context import Principal
from app.db import SESSIONS
from app.gateway.principal import DEVELOPMENT_PRINCIPAL
from app.rowsecurity import in_flow

log = logging.getLogger(__name__)

DEVELOPMENT_ISSUER = "development"


def init_development_auth(app: Flask) -> None:
    production = app.config["HEARTHGATE_ENV"] == "production"
    if not app.config.get("DEVELOPMENT_AUTH_ENABLED") or production:
        DEVELOPMENT_PRINCIPAL.pop(app)
        return
    email = str(app.config["DEVELOPMENT_AUTH_USER"])
    log.warning("development authentication is on: anonymous requests act as %s", email)

    def development_principal() -> Principal:
        factory = SESSIONS.get(app)
        with in_flow("development"), factory() as session:
            user = upsert_identity(session, DEVELOPMENT_ISSUER, email, email,
                                   email.split("@")[0])
            permissions = effective_permissions(user, None)
            session.commit()
            # No login happens: every request is as fresh as one (step-up passes).
            return Principal(user_id=user.id, email=user.email, name=user.name,
                             permissions=frozenset(permissions),
                             auth_time=clock.epoch(clock.now()))

    DEVELOPMENT_PRINCIPAL.set(app, development_principal)
