"""The data encryption keys: ``DATA_ENCRYPTION_KEYS``, comma-separated standard-base64 32-byte
AES keys read through the secret store. The first encrypts; every one decrypts (several during a
rotation). A key is named by its id, the first 8 hex digits of its SHA-256, which every ciphertext
carries.

Production refuses to start without a key (``app.config``). Outside production one is generated
once and kept in the instance folder (``data-encryption-key``, next to the SQLite database it
protects): the memory secret store forgets its values at exit, and every process (gunicorn
workers, the test suite's servers) must read what another wrote. It is also put in the secret
store, as the audit signing key is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, current_app, has_app_context

from app.db import Database
from app.state import Slot

KEYS_SETTING = "DATA_ENCRYPTION_KEYS"
KEY_BYTES = 32
GENERATED_KEY_FILE = "data-encryption-key"
KEYRING: Slot[KeyRing] = Slot("crypto.keys")  # the application's keys (init_keys)
# The key ring of each app's connection pool: the ORM events find the keys of the database they
# write to even outside an application context (a script, a test reading rows directly).
_BY_POOL: WeakKeyDictionary[Any, KeyRing] = WeakKeyDictionary()


class KeyRingError(Exception):
    """``DATA_ENCRYPTION_KEYS`` is missing or not a list of base64 32-byte keys (the message
    names the setting and the position, never a value)."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def parse_key(text: str) -> bytes | None:
    """The 32 bytes of one standard-base64 key, or ``None`` when it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == KEY_BYTES else None


def key_problem(values: Any) -> str | None:
    """Why ``values`` (the setting: a list, or one comma-separated string) is not a key ring."""
    texts = _texts(values)
    if not texts:
        return f"{KEYS_SETTING} is unset (stored free text could not be encrypted)"
    bad = [i for i, text in enumerate(texts, 1) if parse_key(text) is None]
    if bad:
        return (f"{KEYS_SETTING} value {', '.join(map(str, bad))} of {len(texts)} is not a "
                f"standard-base64 {KEY_BYTES}-byte key")
    ids = [key_id(parse_key(t) or b"") for t in texts]
    if len(set(ids)) != len(ids):
        return f"{KEYS_SETTING} names one key twice"
    return None


def _texts(values: Any) -> list[str]:
    if values in (None, "", []):
        return []
    items = values if isinstance(values, list) else [values]
    return [part for item in items for part in str(item).replace(",", " ").split() if part]


@dataclass(frozen=True)
class KeyRing:
    """The ciphers by key id; ``current`` encrypts."""

    current: str
    ciphers: dict[str, AESGCM] = field(repr=False)

    @classmethod
    def from_setting(cls, values: Any) -> KeyRing:
        problem = key_problem(values)
        if problem is not None:
            raise KeyRingError(problem)
        keys = [parse_key(text) or b"" for text in _texts(values)]
        return cls(current=key_id(keys[0]), ciphers={key_id(k): AESGCM(k) for k in keys})

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self.ciphers)


def generate_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def _generated_key(app: Flask) -> str:
    """The generated key of this instance folder, created (mode 0600) on first use. Several
    processes may start at once (gunicorn workers, test servers): the file is written whole under
    another name and linked into place, so every process reads the one complete key."""
    path = Path(app.instance_path) / GENERATED_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(generate_key() + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process published its key first: use that one
        finally:
            draft.unlink()
    return path.read_text(encoding="ascii").strip()


def init_keys(app: Flask) -> list[str]:
    """Load the key ring into ``app``, generating a key outside production when none is set;
    returns the key texts (the caller registers them with the log redaction and, when one was
    generated, with the secret store). Raises ``ConfigurationRefused`` naming the setting."""
    from app.config import ConfigurationRefused

    values = _texts(app.config.get(KEYS_SETTING))
    if not values:
        if app.config["HEARTHGATE_ENV"] == "production":
            raise ConfigurationRefused([f"{KEYS_SETTING} is unset"])
        values = [_generated_key(app)]
        app.config[KEYS_SETTING] = values
    try:
        ring = KeyRing.from_setting(values)
    except KeyRingError as exc:
        raise ConfigurationRefused([str(exc)]) from None
    KEYRING.set(app, ring)
    _BY_POOL[Database.engine(app).pool] = ring
    return values


def keyring(app: Flask | None = None, bind: Any = None) -> KeyRing:
    """The key ring of ``app`` (default: the current app), else of the app whose engine
    ``bind`` (an engine or connection) belongs to; neither known: an error (fail closed)."""
    if app is None and has_app_context():
        app = current_app
    if app is not None:
        return KEYRING.get(app)
    pool = getattr(getattr(bind, "engine", bind), "pool", None)
    found = _BY_POOL.get(pool) if pool is not None else None
    if found is None:
        raise RuntimeError("no application: the data encryption keys are unknown")
    return found
