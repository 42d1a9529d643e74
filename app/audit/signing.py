"""The audit signing key (Ed25519): checkpoints and exports are signed with it, and an auditor
verifies them with the public key alone.

The private key is the secret setting ``AUDIT_SIGNING_KEY`` (PEM). Production refuses to start
without it (``app.config``); in development and tests one is generated and kept in the secret store
(the memory store accepts it), so a restart of a development server signs with a new key.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import Flask

from app.audit.chain import canonical
from app.state import Slot

SIGNING_KEY_SETTING = "AUDIT_SIGNING_KEY"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @property
    def note_key_id(self) -> str:
        from app.audit.notes import note_key_id

        return note_key_id(self.public_key).hex()

    def sign(self, payload: Mapping[str, Any]) -> str:
        return _b64(self.private_key.sign(canonical(payload)))


class PublicKeys:
    """The public keys an auditor trusts, by key id (several across a key rotation)."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id(k): k for k in keys}

    @property
    def keys(self) -> list[Ed25519PublicKey]:
        return list(self._keys.values())

    @classmethod
    def from_pem(cls, pem: str | bytes) -> PublicKeys:
        """Every public key (or private key, whose public half is taken) in a PEM bundle."""
        text = pem.decode() if isinstance(pem, bytes) else pem
        keys: list[Ed25519PublicKey] = []
        for block in text.split("-----END ")[:-1]:
            start = block.rfind("-----BEGIN ")
            label = block[start + len("-----BEGIN "):].split("-----", 1)[0]
            chunk = f"{block[start:]}-----END {label}-----\n".encode()
            if "PRIVATE" in label:
                keys.append(load_private_key(chunk).public_key())
            else:
                loaded = serialization.load_pem_public_key(chunk)
                if not isinstance(loaded, Ed25519PublicKey):
                    raise ValueError("not an Ed25519 public key")
                keys.append(loaded)
        if not keys:
            raise ValueError("no PEM key found")
        return cls(keys)

    def verify(self, payload: Mapping[str, Any], signature: str, kid: str) -> bool:
        key = self._keys.get(kid)
        if key is None:
            return False
        try:
            key.verify(_unb64(signature), canonical(payload))
        except (InvalidSignature, ValueError):
            return False
        return True


def load_private_key(pem: str | bytes) -> Ed25519PrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def generate_pem() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def init_signing(app: Flask) -> None:
    """Load the signing key, or (outside production) generate one and keep it in the store."""
    from app.config import ConfigurationRefused
    from app.logs import redactor
    from app.secrets import SECRET_STORE, SecretStoreError

    pem = app.config.get(SIGNING_KEY_SETTING)
    if not pem:
        if app.config["HEARTHGATE_ENV"] == "production":
            raise ConfigurationRefused([f"{SIGNING_KEY_SETTING} is unset"])
        pem = generate_pem()
        try:
            SECRET_STORE.get(app).set(SIGNING_KEY_SETTING, pem)
        except SecretStoreError:
            pass  # a read-only store: the key lives in the configuration only
        app.logger.warning("%s is unset: a key was generated for this process only; checkpoints "
                           "and exports it signs will not verify after a restart",
                           SIGNING_KEY_SETTING)
        app.config[SIGNING_KEY_SETTING] = pem
    redactor.add(str(pem))
    try:
        private_key = load_private_key(str(pem))
    except (ValueError, TypeError):
        raise ConfigurationRefused(
            [f"{SIGNING_KEY_SETTING} is not an Ed25519 private key in PEM"]
        ) from None
    SIGNER.set(app, Signer(private_key))


SIGNER: Slot[Signer] = Slot("audit.signer")


def signer(app: Flask | None = None) -> Signer:
    return SIGNER.get(app)
