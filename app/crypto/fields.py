"""The encrypted columns, and sealing or opening one value.

A stored value is ``v1:<key id>:<base64(nonce | ciphertext and tag)>``: AES-256-GCM with a fresh
96-bit nonce, and as associated data the format version, table, column and row id, so a value
copied to another row or column (or altered) does not open. That refusal is
``FieldDecryptionError``, logged with the table, column, row id and key id (never the value); the
gateway answers it with a 500 problem. There is no fall-back to the stored text: a value that is
not in this format is refused too.

JSON columns (``Field.json``) seal the value's JSON text; ``decode`` returns text in both cases
and ``decode_value`` the Python value.

No filter or sort of any list route reads these columns (they are free text): the database can
neither compare nor order them.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag

from app.crypto.keys import KeyRing, keyring

VERSION = "v1"
NONCE_BYTES = 12
log = logging.getLogger("app.crypto")


@dataclass(frozen=True)
class Field:
    table: str
    column: str
    json: bool = False


# Every encrypted column; the models and `flask data rotate` both read this list.
ENCRYPTED_FIELDS: tuple[Field, ...] = (
    Field("items", "notes"),
    Field("purchase_requests", "note"),
    Field("purchase_requests", "url"),
    Field("intent_events", "data", json=True),
    Field("intent_artifacts", "uri"),
    Field("webhook_events", "payload", json=True),
    Field("login_flows", "claims", json=True),
    Field("refresh_tokens", "login_claims", json=True),
    Field("auth_sessions", "user_agent"),
    Field("auth_sessions", "ip"),
)
BY_COLUMN: dict[tuple[str, str], Field] = {(f.table, f.column): f for f in ENCRYPTED_FIELDS}


class FieldDecryptionError(Exception):
    """A stored value did not open: altered, moved from another row or column, under a key not
    in ``DATA_ENCRYPTION_KEYS``, or not encrypted at all. Carries no part of the value."""

    def __init__(self, table: str, column: str, row_id: str, reason: str,
                 key_id: str | None = None) -> None:
        self.table, self.column, self.row_id, self.reason, self.key_id = (
            table, column, row_id, reason, key_id)
        super().__init__(f"{table}.{column} of row {row_id} does not decrypt: {reason}"
                         + (f" (key {key_id})" if key_id else ""))


def _associated_data(table: str, column: str, row_id: str) -> bytes:
    # Unambiguous: the version, table and column are identifiers without "|", the row id last.
    return f"{VERSION}|{table}|{column}|{row_id}".encode()


def _check_row_id(row_id: str | None) -> str:
    if not row_id:
        raise ValueError("an encrypted value needs its row id")
    return row_id


def encrypt(table: str, column: str, row_id: str, plaintext: str,
            ring: KeyRing | None = None) -> str:
    """``plaintext`` sealed for this table, column and row, under the current key. A string
    that is not valid Unicode (a lone surrogate) raises ``UnicodeEncodeError``."""
    ring = ring or keyring()
    nonce = os.urandom(NONCE_BYTES)
    sealed = ring.ciphers[ring.current].encrypt(
        nonce, plaintext.encode("utf-8"), _associated_data(table, column, _check_row_id(row_id))
    )
    return f"{VERSION}:{ring.current}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def key_id_of(value: str) -> str | None:
    """The key id a stored value names, or ``None`` when it is not in the format."""
    parts = value.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == VERSION else None


def decrypt(table: str, column: str, row_id: str, value: str,
            ring: KeyRing | None = None) -> str:
    """The plaintext of a stored value, or ``FieldDecryptionError`` (logged)."""
    ring = ring or keyring()
    parts = value.split(":", 2)
    kid = parts[1] if len(parts) == 3 and parts[0] == VERSION else None
    try:
        if kid is None:
            raise _Refused("not an encrypted value")
        cipher = ring.ciphers.get(kid)
        if cipher is None:
            raise _Refused("its key is not in DATA_ENCRYPTION_KEYS")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise _Refused("malformed") from None
        if len(raw) < NONCE_BYTES + 16:
            raise _Refused("malformed")
        try:
            opened = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                    _associated_data(table, column, row_id))
        except InvalidTag:
            raise _Refused("authentication failed (altered, or moved from another row or "
                           "column)") from None
        return opened.decode("utf-8")
    except _Refused as refused:
        error = FieldDecryptionError(table, column, row_id, str(refused), kid)
        log.error("%s", error)
        raise error from None


class _Refused(Exception):
    pass


def decode(table: str, column: str, row_id: str, value: str | None) -> str | None:
    """The one decode point of a stored encrypted column, for any read path: the plaintext
    (a JSON column's JSON text), ``None`` for SQL NULL."""
    if value is None:
        return None
    return decrypt(table, column, row_id, value)


def decode_value(table: str, column: str, row_id: str, value: str | None,
                 ring: KeyRing | None = None) -> Any:
    """``decode``, then a JSON column's text parsed: the value the model's attribute holds."""
    text = None if value is None else decrypt(table, column, row_id, value, ring)
    if text is None or not BY_COLUMN[(table, column)].json:
        return text
    return json.loads(text)


def read_decoder() -> Callable[[str, str, str, str | None], Any]:
    """``decode_value`` bound to the current app's key ring, for the rows of one read: the ring
    is looked up once per read instead of once per value (a third of what decoding one small
    value costs)."""
    ring = keyring()

    def decode(table: str, column: str, row_id: str, value: str | None) -> Any:
        return decode_value(table, column, row_id, value, ring)

    return decode


def encode_value(table: str, column: str, row_id: str, value: Any,
                 ring: KeyRing | None = None) -> str | None:
    """A Python value sealed for storage (a JSON column's value as compact JSON text);
    ``None`` stays SQL NULL."""
    if value is None:
        return None
    if BY_COLUMN[(table, column)].json:
        value = json.dumps(value, separators=(",", ":"))
    return encrypt(table, column, row_id, value, ring)
