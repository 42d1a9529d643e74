"""Keep credentials out of stored audit details: by key name, by shape, and by known value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from app.logs import redactor

REDACTED = "[REDACTED]"

_SENSITIVE_KEYS = (
    "token", "secret", "password", "passwd", "authorization", "apikey", "api_key", "privatekey",
    "private_key", "signature", "cookie", "credential",
)
_SENSITIVE_KEY = re.compile("|".join(map(re.escape, _SENSITIVE_KEYS)))  # any of them, anywhere


@lru_cache(maxsize=1024)  # details' keys are few and come from the code: each is looked at once
def _sensitive_key(key: str) -> bool:
    """A key naming a credential: one of the words in it, lower-cased with ``-`` read as ``_``,
    or in it with its ``_`` left out (``api-key``, ``Private_Key``, ``refreshToken``)."""
    lowered = key.lower().replace("-", "_")
    return bool(_SENSITIVE_KEY.search(lowered) or _SENSITIVE_KEY.search(lowered.replace("_", "")))


def _credential(value: str) -> bool:
    """Shaped like a credential or handed out by the secret store: whatever the log redactor
    would mask (app/logs.py keeps the one list of shapes)."""
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
        name = str(key)
        clean[name] = REDACTED if _sensitive_key(name) else _clean(value)
    return clean
