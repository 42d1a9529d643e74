"""Routes of the auth blueprint: login (every provider), refresh, logout, me."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from app import audit, clock
from app.auth import bp, sessions
from app.auth.oidc_keys import ProviderUnavailable
from app.auth.providers import LOGIN_PROVIDERS, LoginIn
from app.auth.schemas import LogoutIn, MeOut, RefreshIn, SessionPage, TokenOut
from app.auth.throttle import login_throttle
from app.context import Principal
from app.fastread import Read
from app.gateway.clientip import request_client_ip
from app.gateway.contracts import endpoint
from app.gateway.errors import Forbidden, NotFound, ServiceUnavailable, Unauthorized
from app.gateway.schemas import PageQuery, Trusted
from app.hooktypes import LoginFailed, LoginProvider
from app.models import User


def login_providers() -> list[LoginProvider]:
    return LOGIN_PROVIDERS.find() or []


@bp.post("/auth/login")
@endpoint(auth="public", body=LoginIn, response=TokenOut, sensitive=True, tags=("auth",),
          summary="Log in with an OIDC ID token or a local account", errors=(401, 403, 429),
          description="401 alike for any defective token, a wrong password or an unknown "
          "account. 429 (with `Retry-After`) while the account has used up its failed logins "
          "(`AUTH_LOGIN_FAILURES_PER_ACCOUNT`), even for the right password; and for a failed "
          "login while the client IP has used up its own (`AUTH_LOGIN_FAILURES_PER_IP`): a "
          "correct ID token or password from that IP still logs in.")
def login(body: LoginIn) -> sessions.TokenPair:
    provider = next((p for p in login_providers() if p.accepts(body)), None)
    if provider is None:
        # A well-formed body for a method this deployment has turned off: refused, not malformed.
        raise Forbidden("This login method is not enabled")
    throttle = login_throttle()
    ip = request_client_ip()
    account = provider.account_of(body)
    throttle.check(account)
    try:
        identity = provider.authenticate(body)
    except ProviderUnavailable:
        raise ServiceUnavailable("The identity provider is unavailable") from None
    except LoginFailed as failure:
        # The IP's budget refuses failures only: a correct credential from a shared address
        # (NAT, proxy) still logs in, whatever others sent from it.
        refusal = throttle.ip_refusal(ip)
        throttle.failed(ip, failure.account or account)
        audit.record_denial("auth.login", details={"method": provider.name,
                                                   "reason": failure.reason,
                                                   **({"throttled": "ip"} if refusal else {})})
        if refusal is not None:
            raise refusal from None
        raise Unauthorized("Login failed", invalid_token=body.id_token is not None) from None
    if identity.user.disabled:
        audit.record_denial("auth.login", principal_id=identity.user.id,
                            details={"method": provider.name, "reason": "user disabled"})
        raise Unauthorized("Login failed")
    throttle.succeeded(identity.account)
    return sessions.start_session(identity.user, identity.method, identity.claims)


@bp.post("/auth/refresh")
@endpoint(auth="public", body=RefreshIn, response=TokenOut, sensitive=True, tags=("auth",),
          summary="Spend a refresh token for a new token pair", errors=(401, 409),
          description="The presented token is spent. Presented again within "
          "`AUTH_REFRESH_REUSE_GRACE_SECONDS` of its rotation (two tabs refreshing at once), it "
          "gets 409 and nothing is revoked: the newest pair stays valid. Presented later, its "
          "whole session is revoked (401) and the reuse is audited.")
def refresh(body: RefreshIn) -> sessions.TokenPair:
    return sessions.rotate(body.refresh_token)


@bp.post("/auth/logout")
@endpoint(auth="bearer", body=LogoutIn, status=204, tags=("auth",),
          summary="Revoke this session's refresh tokens, or every session's")
def logout(body: LogoutIn, principal: Principal) -> None:
    if body.all:
        revoked = sessions.revoke_all(principal.user_id)
    elif principal.session_id:
        revoked = sessions.revoke_family(principal.user_id, principal.session_id)
    else:
        revoked = 0
    audit.record("auth.logout", resource=f"user:{principal.user_id}",
                 details={"all": body.all, "sessionId": principal.session_id, "revoked": revoked})


_USER_EMAIL = Read(select(User.email, User.email_verified_at).where(User.id == bindparam("id")))


@bp.get("/auth/me")
@endpoint(auth="bearer", response=MeOut, tags=("auth",), summary="The caller's identity")
def me(principal: Principal) -> Trusted:
    if principal.kind != "user":
        raise Unauthorized("Not a user")
    user = _USER_EMAIL.first({"id": principal.user_id})
    verified = user is not None and user["email"] is not None and (
        user["email_verified_at"] is not None)
    return Trusted({"id": principal.user_id, "email": principal.email, "name": principal.name,
                    "permissions": sorted(principal.permissions), "email_verified": verified})


@bp.get("/auth/sessions")
@endpoint(auth="bearer", query=PageQuery, response=SessionPage, tags=("auth",),
          summary="The caller's live login sessions, newest first",
          description="One per login (refresh-token family) that can still be refreshed; `id` is "
          "the access tokens' `sid`, `current` marks the caller's own. `userAgent` and `ip` are "
          "those of the login, truncated, shown to help a person recognise a device; nothing "
          "is decided by them.")
def list_sessions(query: PageQuery, principal: Principal) -> Trusted:
    rows, cursor = sessions.LIVE_SESSIONS.page(
        {"user_id": principal.user_id, "now": clock.now()}, limit=query.limit,
        cursor=query.cursor)
    for row in rows:
        row["current"] = row["id"] == principal.session_id
    return Trusted({"items": rows, "next_cursor": cursor})


@bp.delete("/auth/sessions/<session_id>")
@endpoint(auth="bearer", status=204, tags=("auth",),
          summary="End one of the caller's sessions",
          description="Its refresh token stops working at once; its access tokens at their "
          "`exp`. Another person's session, an ended or unknown one: 404.")
def end_session(session_id: str, principal: Principal) -> None:
    revoked = sessions.end(principal.user_id, session_id)
    if revoked is None:
        raise NotFound("Session not found")
    audit.record("auth.session.ended", resource=f"user:{principal.user_id}",
                 details={"sessionId": session_id, "revoked": revoked,
                          "current": session_id == principal.session_id})
