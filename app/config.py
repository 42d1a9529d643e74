"""Settings from the environment (12-factor), per-environment defaults and production refusals.

The settings themselves (name, type, defaults, secret or not, documentation) are declared in
``app.settings``; this module reads them, parses them and holds the rules that refuse an unsafe
configuration.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from app.settings import DEV_JWT_SECRET, ENVIRONMENTS, SETTINGS, Setting


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
    values = read_settings(SETTINGS, env, environ, overrides, secret_fallbacks)
    values["HEARTHGATE_ENV"] = env
    if not environ.get("RATELIMIT_STORAGE_URI") and environ.get("REDIS_URL"):
        values["RATELIMIT_STORAGE_URI"] = environ["REDIS_URL"]
    values.update(overrides)
    return values


def read_settings(
    settings: Iterable[Setting],
    env: str,
    environ: Mapping[str, str],
    overrides: Mapping[str, Any],
    secret_fallbacks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The values of ``settings`` in ``environ`` (parsed), else their defaults for ``env``; a
    secret without a value goes to ``secret_fallbacks`` as ``load_settings`` says. Overrides are
    only looked at, not applied."""
    values: dict[str, Any] = {}
    for setting in settings:
        raw = environ.get(setting.name)
        value = setting.default_for(env) if raw is None else parse_value(setting, raw)
        if (secret_fallbacks is not None and setting.secret and not raw
                and overrides.get(setting.name) in (None, "", [])):
            if value not in (None, "", []):
                secret_fallbacks[setting.name] = value
            value = None
        values[setting.name] = list(value) if isinstance(value, list) else value
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


def _row_security_off(c: Mapping[str, Any]) -> str | None:
    if not c.get("DATABASE_ROW_SECURITY", True):
        return "DATABASE_ROW_SECURITY is off (PostgreSQL's row-level security would admit nothing)"
    return None


def _secret_store(c: Mapping[str, Any]) -> str | None:
    if str(c.get("SECRET_STORE_URL", "")).startswith("memory://"):
        return "SECRET_STORE_URL is memory:// (development only)"
    return None


def _audit_signing_key(c: Mapping[str, Any]) -> str | None:
    if not c.get("AUDIT_SIGNING_KEY"):
        return "AUDIT_SIGNING_KEY is unset (audit checkpoints could not be signed)"
    return None


def _sink_gather(c: Mapping[str, Any]) -> str | None:
    if int(c.get("AUDIT_SINK_GATHER_MILLISECONDS") or 0) < 0:
        return "AUDIT_SINK_GATHER_MILLISECONDS is negative (0: the sink thread does not rest)"
    return None


def _sink_queue(c: Mapping[str, Any]) -> str | None:
    if int(c.get("AUDIT_SINK_QUEUE_SIZE") or 0) < 1:
        # queue.Queue reads a size below 1 as no bound: memory would grow while the sinks lag.
        return "AUDIT_SINK_QUEUE_SIZE is below 1 (the queue of events for the sinks needs a bound)"
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

# Refused in every environment, development and test included (production's rules hold them too).
ALWAYS_RULES: tuple[Rule, ...] = (_cors, _sink_gather, _sink_queue)

PRODUCTION_RULES: tuple[Rule, ...] = (
    _jwt_secret,
    _jwt_private_key,
    _flag("DEVELOPMENT_AUTH_ENABLED", "DEVELOPMENT_AUTH_ENABLED is true"),
    _flag("DEBUG", "DEBUG is true"),
    _row_security_off,
    _flag("DEMO_HELPERS_ENABLED", "DEMO_HELPERS_ENABLED is true"),
    _required_token("REQUIRE_BUYFLOW_INTERNAL_TOKEN", "BUYFLOW_INTERNAL_TOKEN"),
    _required_token("REQUIRE_INTERNAL_EVENT_TOKEN", "ORCHESTRATOR_INTERNAL_TOKEN"),
    _webhook_secret,
    *(_weak_secret(name) for name in STRENGTH_CHECKED),
    *ALWAYS_RULES,
    _limiter_storage,
    _secret_store,
    _audit_signing_key,
    _data_encryption_keys,
)


def refused_everywhere(config: Mapping[str, Any]) -> list[str]:
    """The unsafe settings that refuse the start in every environment."""
    return [msg for rule in ALWAYS_RULES if (msg := rule(config))]


def configuration_problems(config: Mapping[str, Any], extra: Iterable[str] = ()) -> list[str]:
    """Every unsafe setting of ``config``; in production all rules apply, elsewhere a few."""
    rules = PRODUCTION_RULES if config.get("HEARTHGATE_ENV") == "production" else ALWAYS_RULES
    problems = [msg for rule in rules if (msg := rule(config))]
    problems.extend(m for m in extra if m not in problems)
    return problems
