"""Every setting the service reads, declared once: its type, its default in development/test
and in production, whether it is a secret (read through the secret store), and a line of
documentation. The README's configuration table is checked against ``SETTINGS`` by a test;
``app.config`` reads them from the environment and holds the production refusals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ENVIRONMENTS = ("development", "test", "production")
DEV_JWT_SECRET = "dev-secret-change-me"  # noqa: S105 - the known development value that production refuses

Kind = Literal["str", "int", "bool", "list"]


@dataclass(frozen=True)
class Setting:
    name: str
    kind: Kind
    default: Any
    doc: str
    production: Any = ...  # ``...`` means "same as default"
    secret: bool = False
    development: Any = ...  # the default in development only (``...``: same as default)

    def default_for(self, env: str) -> Any:
        if env == "production" and self.production is not ...:
            return self.production
        if env == "development" and self.development is not ...:
            return self.development
        return self.default


SETTINGS: tuple[Setting, ...] = (
    Setting("HEARTHGATE_ENV", "str", "development", "development, test or production"),
    Setting("DEBUG", "bool", False, "Flask debug mode; refused in production"),
    Setting("DATABASE_URL", "str", "", "SQLAlchemy URL; Heroku's postgres:// is accepted. Empty: "
            "SQLite file in the instance folder"),
    Setting("DATABASE_POOL_SIZE", "int", 5, "connections per worker (PostgreSQL)"),
    Setting("DATABASE_CONNECT_TIMEOUT_SECONDS", "int", 2,
            "seconds before a database connection attempt gives up (then 503)"),
    Setting("DATABASE_ROW_SECURITY", "bool", True,
            "PostgreSQL: tell the database who asks at each transaction's start, for its "
            "row-level security policies (off: the policies admit nothing; refused in "
            "production; only to measure the settings' cost)"),
    Setting("SECRET_STORE_URL", "str", "memory://", "secret store, see 'Secret stores'",
            production="env://"),
    Setting("SECRET_STORE_CACHE_TTL_SECONDS", "int", 0,
            "cache secret values this long (0: no cache)"),
    Setting("VAULT_TOKEN", "str", None, "vault:// token (a bootstrap credential: never read "
            "through the store)"),
    Setting("VAULT_ROLE_ID", "str", None, "vault:// AppRole role id (with VAULT_SECRET_ID)"),
    Setting("VAULT_SECRET_ID", "str", None, "vault:// AppRole secret id (bootstrap credential)"),
    Setting("HEARTHGATE_PLUGINS", "list", None,
            "allow-list of third-party plugin (entry point) names; unset: all installed"),
    Setting("MAX_CONTENT_LENGTH", "int", 1024 * 1024,
            "largest request body in bytes (413 above, with Content-Length or chunked)"),
    Setting("MAX_JSON_DEPTH", "int", 32, "deepest nesting accepted in a JSON body (400 above)"),
    Setting("LOG_LEVEL", "str", "INFO", "root log level"),
    Setting("LOG_JSON", "bool", True, "structured JSON log lines"),
    Setting("CORS_ORIGINS", "list", [], "origins allowed to read API responses"),
    Setting("CORS_ALLOW_CREDENTIALS", "bool", False, "send Access-Control-Allow-Credentials"),
    Setting("WEB_CONCURRENCY", "int", 2, "gunicorn workers"),
    Setting("TRUSTED_PROXY_COUNT", "int", 0,
            "proxies in front of the app whose X-Forwarded-For is trusted (Heroku: 1)"),
    # Identity
    Setting("AUTH_JWT_SECRET", "str", DEV_JWT_SECRET,
            "HS256 signing secret; voice and reset tokens derive their keys from it when their own "
            "secrets are unset (production refuses the development default)",
            production=None, secret=True),
    Setting("AUTH_JWT_ALGORITHM", "str", "HS256", "internal JWT algorithm: HS256, RS256, ES256, "
            "EdDSA", production="RS256"),
    Setting("AUTH_JWT_PRIVATE_KEY", "str", None, "PEM private key for asymmetric signing",
            secret=True),
    Setting("AUTH_JWT_PREVIOUS_PUBLIC_KEYS", "str", None,
            "PEM public keys of earlier signing keys, still accepted and published", secret=True),
    Setting("AUTH_JWT_ISSUER", "str", "hearthgate", "iss of internal tokens"),
    Setting("AUTH_JWT_AUDIENCE", "str", "hearthgate-api", "aud of internal tokens"),
    Setting("AUTH_ACCESS_TOKEN_TTL_SECONDS", "int", 3600, "lifetime of an access token"),
    Setting("AUTH_REFRESH_TOKEN_TTL_SECONDS", "int", 30 * 24 * 3600, "lifetime of a refresh token"),
    Setting("AUTH_REFRESH_REUSE_GRACE_SECONDS", "int", 10,
            "a spent refresh token presented again this soon after its rotation gets 409 and "
            "revokes nothing (two tabs refreshing at once); later it revokes its session "
            "(0: always)"),
    Setting("STEP_UP_MAX_AGE_SECONDS", "int", 900,
            "creating a purchase intent and confirming checkout need a login at most this old "
            "(else 401 insufficient_user_authentication)"),
    Setting("AUTH_EMAIL_VERIFICATION_TTL_SECONDS", "int", 3 * 24 * 3600,
            "lifetime of the email confirmation link mailed at registration"),
    Setting("PUBLIC_SPA_URL", "str", None,
            "the SPA's public URL, for links in mail (unset: mail carries the code alone)"),
    Setting("INVITATION_TTL_SECONDS", "int", 7 * 24 * 3600,
            "how long a household invitation can be accepted"),
    Setting("AUTH_VERIFIED_TOKEN_CACHE_SIZE", "int", 10000,
            "verified access tokens remembered per worker until they expire (0: verify always)"),
    Setting("AUTH_OIDC_ISSUER", "str", None, "OpenID provider issuer URL"),
    Setting("AUTH_OIDC_AUDIENCE", "str", None, "client id expected in ID tokens' aud"),
    Setting("AUTH_OIDC_LEEWAY_SECONDS", "int", 60, "clock leeway for exp/nbf/iat"),
    Setting("AUTH_DEFAULT_PERMISSIONS", "list", None,
            "permissions of new users (default: the catalogue but users:admin)"),
    Setting("AUTH_LOCAL_ACCOUNTS_ENABLED", "bool", False,
            "local email/password accounts (on by default in development)", development=True),
    Setting("DEVELOPMENT_AUTH_ENABLED", "bool", False,
            "requests without a token act as DEVELOPMENT_AUTH_USER; refused in production"),
    Setting("DEVELOPMENT_AUTH_USER", "str", "dev@example.test", "email of the development user"),
    Setting("AUTH_OIDC_CLIENT_SECRET", "str", None,
            "client secret for the authorization-code login at the provider", secret=True),
    Setting("AUTH_OIDC_CALLBACK_URL", "str", None,
            "this service's /api/auth/oidc/callback URL as registered at the provider"),
    Setting("AUTH_OIDC_REDIRECT_URIS", "list", [],
            "SPA URLs the authorization-code login may return to (exact match)"),
    Setting("AUTH_OIDC_JWKS_REFETCH_COOLDOWN_SECONDS", "int", 30,
            "at most one JWKS refetch per this many seconds for unknown kids"),
    Setting("AUTH_LOGIN_FAILURES_PER_ACCOUNT", "str", "5/15minute",
            "failed password logins allowed per account (then 429, even for the right password)"),
    Setting("AUTH_LOGIN_FAILURES_PER_IP", "str", "30/15minute",
            "failed logins allowed per client IP (then each further failure is 429; correct "
            "credentials still log in)"),
    Setting("AUTH_PASSWORD_RESET_TTL_SECONDS", "int", 3600, "lifetime of a password-reset token"),
    Setting("AUTH_PASSWORD_RESET_SECRET", "str", None,
            "signing secret of password-reset tokens (required for local accounts in production)",
            secret=True),
    # Buy-flow and machine-to-machine
    Setting("CHECKOUT_CONFIRMATION_TTL_SECONDS", "int", 900, "confirmation token lifetime"),
    Setting("IDEMPOTENCY_KEY_RETENTION_SECONDS", "int", 86400,
            "how long an Idempotency-Key replays its response (then it names a new request, and"
            " `flask buyflow purge-idempotency-keys` deletes it)"),
    Setting("BUYFLOW_ALLOW_OWNER_SELF_APPROVAL", "bool", False,
            "an owner may approve their own request"),
    Setting("BUYFLOW_INTERNAL_TOKEN", "list", None,
            "X-Internal-Token values for buy-flow callbacks (several during rotation)",
            secret=True),
    Setting("REQUIRE_BUYFLOW_INTERNAL_TOKEN", "bool", False, "enforce BUYFLOW_INTERNAL_TOKEN",
            production=True),
    Setting("ORCHESTRATOR_INTERNAL_TOKEN", "list", None,
            "X-Internal-Token values for orchestrator events and artifacts", secret=True),
    Setting("REQUIRE_INTERNAL_EVENT_TOKEN", "bool", False, "enforce ORCHESTRATOR_INTERNAL_TOKEN",
            production=True),
    Setting("HYPERBEAM_EVENT_SIGNING_SECRET", "list", None,
            "webhook secrets (whsec_<base64> or raw; several during rotation)", secret=True),
    Setting("HYPERBEAM_ENFORCE_EVENT_SIGNATURES", "bool", False, "reject unsigned webhooks",
            production=True),
    Setting("VOICE_LIVE_PUBLIC_RATE_LIMIT_MAX_REQUESTS", "int", 12, "voice sessions per window"),
    Setting("VOICE_LIVE_PUBLIC_RATE_LIMIT_WINDOW_SECONDS", "int", 60, "voice window in seconds"),
    Setting("VOICE_SESSION_SECRET", "str", None,
            "key signing public voice-session tokens (unset: derived from AUTH_JWT_SECRET; "
            "with neither, the voice route answers 503)", secret=True),
    Setting("VOICE_SESSION_TTL_SECONDS", "int", 120, "lifetime of a public voice-session token"),
    # Rate limits
    Setting("RATELIMIT_ENABLED", "bool", True, "apply rate limits"),
    Setting("RATELIMIT_STORAGE_URI", "str", "memory://",
            "limiter storage: memory://, redis://, redis+sentinel://, redis+cluster://, "
            "memcached://; REDIS_URL is used when this is unset"),
    Setting("RATELIMIT_STRATEGY", "str", "fixed-window",
            "fixed-window, moving-window or sliding-window-counter"),
    Setting("RATELIMIT_AUTHENTICATED", "str", "100/minute", "per verified sub, all routes"),
    Setting("RATELIMIT_ANONYMOUS", "str", "10/minute",
            "per client IP, all routes (60/minute in development, where one person registers and "
            "logs in as several)", development="60/minute"),
    Setting("RATELIMIT_INTERNAL", "str", "1200/minute",
            "per internal token (orchestrator callbacks), all internal routes"),
    Setting("WEBHOOK_RATE_LIMIT", "str", "600/minute",
            "webhook deliveries per sending IP (instead of the anonymous limit)"),
    # Development
    Setting("DEMO_HELPERS_ENABLED", "bool", False,
            "/api/dev/* helpers for the SPA (simulated orchestrator; on by default in "
            "development); refused in production", development=True),
    Setting("API_DOCS_ENABLED", "bool", True,
            "interactive API documentation at /api/docs (off by default in production)",
            production=False),
    Setting("SPA_ENABLED", "bool", True,
            "serve the reference SPA (web/) at / (off by default in production)", production=False),
    # Audit trail
    Setting("AUDIT_SIGNING_KEY", "str", None, "Ed25519 private key (PEM) signing audit "
            "checkpoints and exports; generated per process outside production", secret=True),
    # Encryption at rest
    Setting("DATA_ENCRYPTION_KEYS", "list", None,
            "AES-256 keys encrypting stored free text (notes, URLs, event data, webhook payloads, "
            "login claims, session devices): comma-separated standard-base64 32-byte keys, the "
            "first encrypts, all decrypt (several during `flask data rotate`); required in "
            "production, generated outside it", secret=True),
    Setting("AUDIT_CHECKPOINT_EVERY", "int", 100,
            "sign a chain's head every N entries (0: only on `flask audit checkpoint`)"),
    Setting("AUDIT_CHECKPOINT_INTERVAL_SECONDS", "int", 60,
            "sign a chain's head at most this long after its newest unsigned event, from a "
            "thread of each worker (0: only every AUDIT_CHECKPOINT_EVERY entries)"),
    Setting("AUDIT_WITNESS_URL", "str", None,
            "witness receiving every checkpoint: file:///dir (one append-only file per chain); "
            "`flask audit verify` compares the database with it"),
    Setting("AUDIT_ANOMALY_ENABLED", "bool", True,
            "built-in sink flagging denial bursts, refresh-token reuse, new-device logins and "
            "unusual approvals as security.alert events and warnings"),
    Setting("AUDIT_ANOMALY_WINDOW_SECONDS", "int", 60, "window of the denial-burst signal"),
    Setting("AUDIT_ANOMALY_DENIALS", "int", 20,
            "denied events of one principal, or in one household, within the window that raise "
            "an alert"),
    Setting("AUDIT_ANOMALY_APPROVAL_HISTORY", "int", 10,
            "approvals a household needs before an approval at a new hour of day is flagged"),
    Setting("AUDIT_SINK_QUEUE_SIZE", "int", 10000,
            "committed events waiting for the audit_sink plugins, per process (beyond it an event"
            " is not forwarded, with a warning; below 1: refused)"),
    Setting("AUDIT_SINK_GATHER_MILLISECONDS", "int", 10,
            "after handing events to the audit_sink plugins, the sink thread rests this long and"
            " then takes every event committed meanwhile at once: under a stream of commits it"
            " wakes once per interval, not once per event (0: at once; negative: refused; the"
            " first event after a quiet spell always goes at once)"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
SECRET_SETTINGS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.secret)


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return f"`{' '.join(map(str, value))}`" if value else "empty"
    return f"`{value}`"


def settings_table(settings: tuple[Setting, ...] | list[Setting]) -> str:
    """The README's configuration table for ``settings``, in the core's columns: a plugin
    documents its own settings with it (and can test that its README holds this text)."""
    lines = ["| setting | default (dev/test) | production default | secret | what |",
             "|---|---|---|---|---|"]
    for s in settings:
        default = _shown(s.default)
        if s.development is not ...:
            default += f" ({_shown(s.development)} in development)"
        lines.append(f"| `{s.name}` | {default} | {_shown(s.default_for('production'))} | "
                     f"{'yes' if s.secret else ''} | {s.doc} |")
    return "\n".join(lines) + "\n"
