"""Keep credentials out of stored audit details: by key name, by shape, and by known value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

_SENSITIVE_KEYS = (
    "token", "secret", "password", "passwd", "authorization", "apikey", "api_key", "privatekey",
    "private_key", "signature", "cookie", "credential",
)

def _sensitive_key(key: str) -> bool:
    lowered = key.lower().replace("-", "_")
    return any(word in lowered or word in lowered.replace("_", "") for word in _SENSITIVE_KEYS)


def _credential(value: str) -> bool:
    """Shaped like a credential or handed out by the secret store: whatever the log redactor
    would mask (app/logs.py keeps the one list of shapes)."""
    from app.logs import redactor

    return redactor.redact(value) != value


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact_details(value)
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if isinstance(value, str) and _credential(value):
        return REDACTED
    return value


def redact_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Mask values under keys that name a credential, values shaped like one, and values the
    secret store handed out, recursively through mappings and lists."""
    if not details:
        return {}
    clean: dict[str, Any] = {}
    for key, value in details.items():
        clean[str(key)] = REDACTED if _sensitive_key(str(key)) else _clean(value)
    return clean
