"""Settings from the environment (12-factor), per-environment defaults and production refusals.

Every setting the service reads is declared once in ``SETTINGS``: its type, its default in
development/test and in production, whether it is a secret (read through the secret store), and a
line of documentation. The README's configuration table is checked against this list by a test.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
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
            " is not forwarded, with a warning)"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
SECRET_SETTINGS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.secret)


class ConfigurationError(Exception):
    """A setting has a value that cannot be parsed."""


class ConfigurationRefused(Exception):
    """Production refuses to start; ``problems`` names every offending setting.

    Raised as an ordinary exception (not SystemExit) so that gunicorn halts instead of
    respawning workers forever.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("refusing to start: " + "; ".join(problems))


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_value(setting: Setting, raw: str) -> Any:
    if setting.kind == "str":
        return raw
    if setting.kind == "int":
        try:
            return int(raw.strip())
        except ValueError:
            raise ConfigurationError(f"{setting.name} must be an integer") from None
    if setting.kind == "bool":
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ConfigurationError(f"{setting.name} must be true or false")
    return [part for part in raw.replace(",", " ").split() if part]


def load_settings(
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    secret_fallbacks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read every declared setting from ``environ`` with the environment's defaults.

    ``overrides`` (typed values, as tests pass them to ``create_app``) win over the environment.
    With ``secret_fallbacks`` (a dict to fill), a secret setting that neither gives is left unset
    and its default goes into that dict instead: the caller looks in the secret store first and
    applies the default only when the store does not have the secret.
    """
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    env = str(
        overrides.get("HEARTHGATE_ENV") or environ.get("HEARTHGATE_ENV") or "development"
    ).strip().lower()
    if env not in ENVIRONMENTS:
        raise ConfigurationError(f"HEARTHGATE_ENV must be one of {', '.join(ENVIRONMENTS)}")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.name)
        value = setting.default_for(env) if raw is None else parse_value(setting, raw)
        if (secret_fallbacks is not None and setting.secret and not raw
                and overrides.get(setting.name) in (None, "", [])):
            if value not in (None, "", []):
                secret_fallbacks[setting.name] = value
            value = None
        values[setting.name] = list(value) if isinstance(value, list) else value
    values["HEARTHGATE_ENV"] = env
    if not environ.get("RATELIMIT_STORAGE_URI") and environ.get("REDIS_URL"):
        values["RATELIMIT_STORAGE_URI"] = environ["REDIS_URL"]
    values.update(overrides)
    return values


# -- secret strength ----------------------------------------------------------------------------
#
# A value's strength is estimated from its length and the narrowest alphabet it fits: decimal
# digits carry log2(10) bits a character, hex 4, base64 and base64url (padding not counted) 6,
# and anything else is counted at 6 as well, never more: a value outside those alphabets is
# seldom drawn at random from a larger one. A ``whsec_`` webhook secret counts the bytes its
# base64 decodes to, 8 bits each. This is what a random value of that shape carries at best; it
# cannot tell a random value from a chosen one of the same shape.

MIN_SECRET_BITS = 128
MIN_HS256_SECRET_LENGTH = 32
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a format marker
_ALPHABETS: tuple[tuple[re.Pattern[str], float], ...] = (
    (re.compile(r"[0-9]+"), math.log2(10)),
    (re.compile(r"[0-9A-Fa-f]+"), 4.0),
    (re.compile(r"[A-Za-z0-9+/_-]+"), 6.0),
)
_OTHER_BITS_PER_CHARACTER = 6.0


def estimated_bits(value: str) -> float:
    """Bits a random value of this length and alphabet carries (see above)."""
    body = value.rstrip("=") or value
    for alphabet, bits in _ALPHABETS:
        if alphabet.fullmatch(body):
            return len(body) * bits
    return len(value) * _OTHER_BITS_PER_CHARACTER


def webhook_secret_bits(value: str) -> float | None:
    """Bits of a webhook secret: ``whsec_`` counts its decoded bytes (None when it is not base64,
    which the Hyperbeam plugin's start-up check refuses), a raw secret is estimated."""
    if not value.startswith(WEBHOOK_SECRET_PREFIX):
        return estimated_bits(value)
    encoded = value[len(WEBHOOK_SECRET_PREFIX):].rstrip("=")
    try:
        return 8.0 * len(base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True))
    except (binascii.Error, ValueError):
        return None


def _values(value: Any) -> list[str]:
    if value in (None, "", []):
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


# A refusal rule looks at the whole configuration and returns a message naming the setting, or None.
# Messages name settings and never carry their values.
Rule = Callable[[Mapping[str, Any]], "str | None"]


def _jwt_secret(c: Mapping[str, Any]) -> str | None:
    """The HS256 secret, and any value of AUTH_JWT_SECRET whatever the algorithm: voice and
    reset tokens derive their keys from it when their own secrets are unset."""
    secret = c.get("AUTH_JWT_SECRET")
    if secret == DEV_JWT_SECRET:
        return "AUTH_JWT_SECRET is the development default"
    if not secret:
        if c.get("AUTH_JWT_ALGORITHM") == "HS256":
            return "AUTH_JWT_SECRET is unset while AUTH_JWT_ALGORITHM is HS256"
        return None
    if len(str(secret)) < MIN_HS256_SECRET_LENGTH:
        return f"AUTH_JWT_SECRET is shorter than {MIN_HS256_SECRET_LENGTH} characters"
    return None


def _jwt_private_key(c: Mapping[str, Any]) -> str | None:
    if c.get("AUTH_JWT_ALGORITHM") != "HS256" and not c.get("AUTH_JWT_PRIVATE_KEY"):
        return f"AUTH_JWT_PRIVATE_KEY is unset for AUTH_JWT_ALGORITHM={c.get('AUTH_JWT_ALGORITHM')}"
    return None


def _weak_secret(name: str) -> Rule:
    """Every value of a secret setting (several during rotation) carries MIN_SECRET_BITS."""
    measure = webhook_secret_bits if name == "HYPERBEAM_EVENT_SIGNING_SECRET" else estimated_bits

    def rule(c: Mapping[str, Any]) -> str | None:
        values = _values(c.get(name))
        weak = [i for i, v in enumerate(values, 1) if (bits := measure(v)) is not None
                and bits < MIN_SECRET_BITS]
        if not weak:
            return None
        which = "" if len(values) == 1 else " (value " + ", ".join(map(str, weak)) + \
            f" of {len(values)})"
        return (f"{name} carries fewer than {MIN_SECRET_BITS} bits{which}: use at least 32 hex "
                "or 22 base64 characters" + (", or 16 bytes after whsec_"
                                              if name == "HYPERBEAM_EVENT_SIGNING_SECRET" else ""))

    rule.__name__ = f"_weak_secret_{name}"
    return rule


def _flag(name: str, message: str) -> Rule:
    def rule(c: Mapping[str, Any]) -> str | None:
        return message if c.get(name) else None

    rule.__name__ = f"_flag_{name}"
    return rule


def _required_token(flag: str, token: str) -> Rule:
    def rule(c: Mapping[str, Any]) -> str | None:
        if not c.get(flag):
            return f"{flag} is false"
        if not c.get(token):
            return f"{token} is unset while {flag} is true"
        return None

    rule.__name__ = f"_required_token_{token}"
    return rule


def _webhook_secret(c: Mapping[str, Any]) -> str | None:
    if not c.get("HYPERBEAM_ENFORCE_EVENT_SIGNATURES"):
        return "HYPERBEAM_ENFORCE_EVENT_SIGNATURES is false"
    if not c.get("HYPERBEAM_EVENT_SIGNING_SECRET"):
        return "HYPERBEAM_EVENT_SIGNING_SECRET is unset while signatures are enforced"
    return None


def _cors(c: Mapping[str, Any]) -> str | None:
    if "*" in (c.get("CORS_ORIGINS") or []) and c.get("CORS_ALLOW_CREDENTIALS"):
        return "CORS_ORIGINS has '*' while CORS_ALLOW_CREDENTIALS is true"
    return None


def _limiter_storage(c: Mapping[str, Any]) -> str | None:
    uri = str(c.get("RATELIMIT_STORAGE_URI") or "memory://")
    if uri.startswith("memory://") and int(c.get("WEB_CONCURRENCY") or 1) > 1:
        return (
            "RATELIMIT_STORAGE_URI is in-process (memory://) while WEB_CONCURRENCY > 1: "
            "limits would not hold across workers"
        )
    return None


def _secret_store(c: Mapping[str, Any]) -> str | None:
    if str(c.get("SECRET_STORE_URL", "")).startswith("memory://"):
        return "SECRET_STORE_URL is memory:// (development only)"
    return None


def _audit_signing_key(c: Mapping[str, Any]) -> str | None:
    if not c.get("AUDIT_SIGNING_KEY"):
        return "AUDIT_SIGNING_KEY is unset (audit checkpoints could not be signed)"
    return None


def _data_encryption_keys(c: Mapping[str, Any]) -> str | None:
    if not c.get("DATA_ENCRYPTION_KEYS"):
        return "DATA_ENCRYPTION_KEYS is unset (stored free text could not be encrypted)"
    return None


# Secrets whose strength is this service's choice. AUTH_JWT_SECRET has its own, stricter rule;
# the PEM settings are keys whose parsing refuses what is not one.
STRENGTH_CHECKED: tuple[str, ...] = (
    "BUYFLOW_INTERNAL_TOKEN",
    "ORCHESTRATOR_INTERNAL_TOKEN",
    "HYPERBEAM_EVENT_SIGNING_SECRET",
    "VOICE_SESSION_SECRET",
    "AUTH_PASSWORD_RESET_SECRET",
    "AUTH_OIDC_CLIENT_SECRET",
)

PRODUCTION_RULES: tuple[Rule, ...] = (
    _jwt_secret,
    _jwt_private_key,
    _flag("DEVELOPMENT_AUTH_ENABLED", "DEVELOPMENT_AUTH_ENABLED is true"),
    _flag("DEBUG", "DEBUG is true"),
    _flag("DEMO_HELPERS_ENABLED", "DEMO_HELPERS_ENABLED is true"),
    _required_token("REQUIRE_BUYFLOW_INTERNAL_TOKEN", "BUYFLOW_INTERNAL_TOKEN"),
    _required_token("REQUIRE_INTERNAL_EVENT_TOKEN", "ORCHESTRATOR_INTERNAL_TOKEN"),
    _webhook_secret,
    *(_weak_secret(name) for name in STRENGTH_CHECKED),
    _cors,
    _limiter_storage,
    _secret_store,
    _audit_signing_key,
    _data_encryption_keys,
)

# Refused in every environment, development and test included.
ALWAYS_RULES: tuple[Rule, ...] = (_cors,)


def refused_everywhere(config: Mapping[str, Any]) -> list[str]:
    """The unsafe settings that refuse the start in every environment."""
    return [msg for rule in ALWAYS_RULES if (msg := rule(config))]


def configuration_problems(config: Mapping[str, Any], extra: Iterable[str] = ()) -> list[str]:
    """Every unsafe setting of ``config``; in production all rules apply, elsewhere a few."""
    rules = PRODUCTION_RULES if config.get("HEARTHGATE_ENV") == "production" else ALWAYS_RULES
    problems = [msg for rule in rules if (msg := rule(config))]
    problems.extend(m for m in extra if m not in problems)
    return problems
