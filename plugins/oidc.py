"""OpenID Connect login: ID tokens posted to ``/api/auth/login``, and the authorization-code
flow (Authlib's OAuth 2 client, PKCE, state, nonce) for SPAs that prefer not to hold provider
tokens: ``authorize`` → provider → ``callback`` → one-time code in the fragment → ``exchange``.

Two bindings protect the flow. The cookie binds the provider's callback to the browser that
started the flow. The one-time code is bound to the SPA instance that started it, PKCE-style
between the SPA and this service: ``authorize`` takes the S256 challenge of a verifier the SPA
keeps, and ``exchange`` spends the code only with that verifier. A code planted in another
browser's SPA (``…#code=<the attacker's code>``, login CSRF) is refused there; a wrong verifier
does not spend the code.

Enabled when ``AUTH_OIDC_ISSUER`` and ``AUTH_OIDC_AUDIENCE`` are set; the code flow also needs
``AUTH_OIDC_CALLBACK_URL`` and ``AUTH_OIDC_CLIENT_SECRET``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from flask import Blueprint, Flask, current_app, request
from pydantic import Field
from sqlalchemy import select, update

from app import audit
from app.auth.idtokens import IdTokenError, IdTokenVerifier
from app.auth.oidc_keys import HTTP_TIMEOUT, ProviderKeys, ProviderUnavailable
from app.auth.schemas import TokenOut
from app.auth.sessions import hash_token, session_claims, start_session
from app.auth.users import upsert_identity
from app.db import db, utcnow
from app.gateway.contracts import Reply, endpoint
from app.gateway.errors import BadRequest, ServiceUnavailable, Unauthorized
from app.gateway.schemas import Body, Query
from app.hookspecs import hookimpl
from app.hooktypes import Identity, LoginBody, LoginFailed
from app.models import LoginFlow, User
from app.sqltypes import rows_changed
from app.state import Slot

log = logging.getLogger(__name__)

FLOW_TTL = timedelta(minutes=10)
CODE_TTL = timedelta(seconds=60)
BROWSER_COOKIE = "hg_oidc_flow"
SCOPE = "openid email profile"


def _claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


class OidcLogin:
    """The ``login_providers`` entry for ``{"idToken"}`` bodies."""

    name = "oidc"

    def __init__(self, config: dict[str, Any]) -> None:
        self.issuer = str(config["AUTH_OIDC_ISSUER"])
        self.client_id = str(config["AUTH_OIDC_AUDIENCE"])
        cooldown = float(config["AUTH_OIDC_JWKS_REFETCH_COOLDOWN_SECONDS"])
        self.keys = ProviderKeys(self.issuer, cooldown)
        self.verifier = IdTokenVerifier(self.keys, self.client_id,
                                        int(config["AUTH_OIDC_LEEWAY_SECONDS"]))

    def accepts(self, body: LoginBody) -> bool:
        return body.id_token is not None

    def account_of(self, body: LoginBody) -> str | None:
        return None

    def authenticate(self, body: LoginBody) -> Identity:
        assert body.id_token is not None  # noqa: S101 - accepts() checked it
        try:
            claims = self.verifier.verify(body.id_token, nonce=body.nonce)
        except IdTokenError as exc:
            raise LoginFailed(str(exc)) from None
        return Identity(user=self.user_for(claims), method="oidc", claims=claims)

    def user_for(self, claims: dict[str, Any]) -> User:
        # An email the provider says is unverified is not copied: it could name someone else's
        # address. Only an explicit ``email_verified: true`` makes it a verified address (one
        # that may accept household invitations).
        verified = claims.get("email_verified") is True
        email = _claim(claims, "email") if claims.get("email_verified", True) is True else None
        return upsert_identity(None, claims["iss"], claims["sub"], email,
                               _claim(claims, "name"), email_verified=verified)


OIDC_LOGIN: Slot[OidcLogin] = Slot("oidc")  # set while the provider is configured


def oidc() -> OidcLogin:
    return OIDC_LOGIN.get()


# -- the authorization-code flow -------------------------------------------------------------

flow_bp = Blueprint("oidc_flow", __name__, url_prefix="/api/auth/oidc")


class AuthorizeQuery(Query):
    redirect_uri: str = Field(min_length=1, max_length=2000)
    login_hint: str | None = Field(default=None, max_length=200)
    # BASE64URL(SHA-256(verifier)) without padding, RFC 7636 S256: always 43 characters.
    code_challenge: str = Field(pattern=r"^[A-Za-z0-9_-]{43}$")
    code_challenge_method: Literal["S256"] = "S256"


class CallbackQuery(Query):
    state: str = Field(min_length=1, max_length=200)
    code: str | None = Field(default=None, max_length=2000)
    error: str | None = Field(default=None, max_length=200)
    iss: str | None = Field(default=None, max_length=2000)


class ExchangeIn(Body):
    code: str = Field(min_length=1, max_length=200)
    # RFC 7636 code_verifier: 43-128 unreserved characters.
    code_verifier: str = Field(pattern=r"^[A-Za-z0-9._~-]{43,128}$")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _client() -> OAuth2Session:
    config = current_app.config
    return OAuth2Session(
        client_id=config["AUTH_OIDC_AUDIENCE"],
        client_secret=config["AUTH_OIDC_CLIENT_SECRET"],
        redirect_uri=config["AUTH_OIDC_CALLBACK_URL"],
        scope=SCOPE,
        code_challenge_method="S256",
    )


def _cookie(value: str, max_age: int) -> str:
    secure = "; Secure" if current_app.config["HEARTHGATE_ENV"] == "production" else ""
    return (f"{BROWSER_COOKIE}={value}; Path=/api/auth/oidc; Max-Age={max_age}; HttpOnly; "
            f"SameSite=Lax{secure}")


@flow_bp.get("/authorize")
@endpoint(auth="public", query=AuthorizeQuery, status=302, tags=("auth",), errors=(503,),
          writes=True, summary="Start an authorization-code login at the identity provider",
          description="The SPA generates a random verifier (RFC 7636, 43-128 characters), keeps "
          "it (e.g. in sessionStorage) and sends `codeChallenge` (or `code_challenge`) = "
          "BASE64URL(SHA-256(verifier)) without padding; `codeChallengeMethod` is `S256`, the "
          "only method. Only that verifier can later "
          "exchange the code this login yields. Sets the flow's browser-binding cookie.")
def authorize(query: AuthorizeQuery) -> Reply:
    if query.redirect_uri not in current_app.config["AUTH_OIDC_REDIRECT_URIS"]:
        raise BadRequest("redirect_uri is not allowed")
    try:
        endpoint_url = oidc().keys.metadata()["authorization_endpoint"]
    except (ProviderUnavailable, KeyError):
        raise ServiceUnavailable("The identity provider is unavailable") from None
    state, nonce, verifier, browser = (generate_token(43) for _ in range(4))
    extra = {"login_hint": query.login_hint} if query.login_hint else {}
    url, _ = _client().create_authorization_url(
        endpoint_url, state=state, nonce=nonce, code_verifier=verifier, **extra
    )
    db.session.add(LoginFlow(
        state_hash=hash_token(state), browser_hash=hash_token(browser), nonce=nonce,
        code_verifier=verifier, redirect_uri=query.redirect_uri,
        spa_challenge=query.code_challenge, expires_at=utcnow() + FLOW_TTL,
    ))
    return Reply(None, 302, {"Location": url,
                             "Set-Cookie": _cookie(browser, int(FLOW_TTL.total_seconds()))})


def _back(flow: LoginFlow, **fragment: str) -> Reply:
    return Reply(None, 302, {"Location": f"{flow.redirect_uri}#{urlencode(fragment)}",
                             "Set-Cookie": _cookie("", 0)})


@flow_bp.get("/callback")
@endpoint(auth="public", query=CallbackQuery, status=302, tags=("auth",), writes=True,
          summary="The identity provider's redirect back; answers with a one-time code")
def callback(query: CallbackQuery) -> Reply:
    flow = db.session.scalars(
        select(LoginFlow).where(LoginFlow.state_hash == hash_token(query.state))
    ).first()
    browser = request.cookies.get(BROWSER_COOKIE, "")
    now = utcnow()
    if (flow is None or flow.expires_at <= now or flow.callback_at is not None
            or not hmac.compare_digest(flow.browser_hash, hash_token(browser))):
        audit.record_denial("auth.oidc.callback", details={"reason": "unknown or replayed state"})
        raise BadRequest("Unknown, expired or replayed login")
    claimed = db.session.execute(
        update(LoginFlow).where(LoginFlow.id == flow.id, LoginFlow.callback_at.is_(None))
        .values(callback_at=now)
    )
    if rows_changed(claimed) != 1:
        raise BadRequest("Unknown, expired or replayed login")
    provider = oidc()
    if query.error or not query.code or (query.iss is not None and query.iss != provider.issuer):
        audit.record("auth.oidc.callback", decision="denied",
                     details={"reason": query.error or "no code or wrong iss"})
        return _back(flow, error="access_denied")
    try:
        token = _client().fetch_token(
            provider.keys.metadata()["token_endpoint"], code=query.code,
            code_verifier=flow.code_verifier, timeout=HTTP_TIMEOUT,
        )
        claims = provider.verifier.verify(str(token.get("id_token", "")), nonce=flow.nonce)
    except (IdTokenError, ProviderUnavailable, KeyError, ValueError, OSError) as exc:
        audit.record("auth.oidc.callback", decision="denied",
                     details={"reason": f"{type(exc).__name__}: {exc}"[:200]})
        return _back(flow, error="login_failed")
    except Exception as exc:  # noqa: BLE001 - Authlib's OAuth errors: the provider said no
        audit.record("auth.oidc.callback", decision="denied",
                     details={"reason": type(exc).__name__})
        return _back(flow, error="login_failed")
    user = provider.user_for(claims)
    code = secrets.token_urlsafe(32)
    flow.code_hash = hash_token(code)
    flow.code_expires_at = now + CODE_TTL
    flow.user_id = user.id
    flow.claims = session_claims(claims)  # for the session the exchange opens
    audit.record("auth.oidc.callback", resource=f"user:{user.id}", principal_id=user.id)
    return _back(flow, code=code)


@flow_bp.post("/exchange")
@endpoint(auth="public", body=ExchangeIn, response=TokenOut, sensitive=True, tags=("auth",),
          errors=(401,), summary="Trade the one-time code for the login's token pair",
          description="`codeVerifier` is the verifier whose S256 challenge the SPA sent to "
          "`authorize`: a code is exchanged only by the SPA instance that started its login, "
          "once, within 60 s. An unknown, spent or expired code and a wrong verifier are the same "
          "401; a wrong verifier does not spend the code.")
def exchange(body: ExchangeIn) -> Any:
    now = utcnow()
    flow = db.session.scalars(
        select(LoginFlow).where(LoginFlow.code_hash == hash_token(body.code))
    ).first()
    if flow is not None and (flow.spa_challenge is None or not hmac.compare_digest(
            flow.spa_challenge, s256(body.code_verifier))):
        # Not the SPA that started this login (a planted code): refused, and the code is left to
        # its owner.
        db.session.rollback()
        audit.record_denial("auth.login", details={"method": "oidc-code",
                                                   "reason": "code verifier mismatch"})
        raise Unauthorized("Invalid or expired code", invalid_token=True)
    spent = None
    if flow is not None:
        spent = db.session.execute(
            update(LoginFlow)
            .where(LoginFlow.id == flow.id, LoginFlow.consumed_at.is_(None),
                   LoginFlow.code_expires_at > now)
            .values(consumed_at=now)
        )
    user = db.session.get(User, flow.user_id) if flow is not None and flow.user_id else None
    if (flow is None or spent is None or rows_changed(spent) != 1
            or user is None or user.disabled):
        audit.record_denial("auth.login", details={"method": "oidc-code",
                                                   "reason": "unknown, used or expired code"})
        raise Unauthorized("Invalid or expired code", invalid_token=True)
    return start_session(user, "oidc-code", flow.claims)


# -- hooks -----------------------------------------------------------------------------------


def _enabled(config: Any) -> bool:
    return bool(config.get("AUTH_OIDC_ISSUER") and config.get("AUTH_OIDC_AUDIENCE"))


@hookimpl
def login_providers(app: Flask) -> list[Any] | None:
    if not _enabled(app.config):
        return None
    return [OIDC_LOGIN.set(app, OidcLogin(dict(app.config)))]


@hookimpl
def register_blueprints(app: Flask) -> list[Blueprint] | None:
    config = app.config
    if not (_enabled(config) and config.get("AUTH_OIDC_CALLBACK_URL")
            and config.get("AUTH_OIDC_CLIENT_SECRET")):
        return None
    return [flow_bp]


@hookimpl
def startup_checks(config: dict[str, Any]) -> list[str] | None:
    problems = []
    issuer = str(config.get("AUTH_OIDC_ISSUER") or "")
    if config.get("HEARTHGATE_ENV") == "production" and issuer.startswith("http://"):
        problems.append("AUTH_OIDC_ISSUER is not https")
    for uri in config.get("AUTH_OIDC_REDIRECT_URIS") or []:
        if "#" in uri:
            problems.append("AUTH_OIDC_REDIRECT_URIS holds a URI with a fragment")
    return problems
