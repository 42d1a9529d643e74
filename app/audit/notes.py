"""Checkpoints as C2SP signed notes (https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint).

The text is ``"<origin>\\n<tree size>\\n<base64 root hash>\\n"`` with origin ``hearthgate/<chain>``;
then a blank line and one signature line ``"— hearthgate <base64(key id ‖ Ed25519 signature)>"``.
The key id is the first 4 bytes of SHA-256("hearthgate" ‖ 0x0A ‖ 0x01 ‖ the 32-byte public key),
as the signed-note spec defines it for Ed25519. Anyone holding the public key checks a note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_NAME = "hearthgate"
ORIGIN_PREFIX = "hearthgate/"
_DASH = "\u2014"


def note_key_id(public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(KEY_NAME.encode() + b"\n\x01" + raw).digest()[:4]


def origin(chain: str) -> str:
    return ORIGIN_PREFIX + chain


def body(chain: str, size: int, root: bytes) -> str:
    return f"{origin(chain)}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_note(private_key: Ed25519PrivateKey, chain: str, size: int, root: bytes) -> str:
    text = body(chain, size, root)
    signature = private_key.sign(text.encode())
    blob = base64.b64encode(note_key_id(private_key.public_key()) + signature).decode()
    return f"{text}\n{_DASH} {KEY_NAME} {blob}\n"


@dataclass(frozen=True)
class Checkpoint:
    """A parsed and verified checkpoint note."""

    chain: str
    size: int
    root: bytes
    text: str


class NoteError(ValueError):
    pass


def open_note(note: str, keys: Iterable[Ed25519PublicKey] | None) -> Checkpoint:
    """Parse ``note`` and check its signature with one of ``keys`` (``None``: parse only);
    ``NoteError`` otherwise."""
    text, sep, signatures = note.partition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise NoteError("not a signed note")
    lines = text.split("\n")
    if len(lines) != 3 or not lines[0].startswith(ORIGIN_PREFIX):
        raise NoteError("not a hearthgate checkpoint")
    try:
        size = int(lines[1])
        root = base64.b64decode(lines[2], validate=True)
    except (ValueError, binascii.Error):
        raise NoteError("malformed checkpoint body") from None
    if size < 0 or len(root) != 32 or lines[1] != str(size):
        raise NoteError("malformed checkpoint body")
    if keys is None:
        return Checkpoint(lines[0][len(ORIGIN_PREFIX):], size, root, note)
    signed = text + "\n"
    by_id = {note_key_id(k): k for k in keys}
    for line in signatures[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH or parts[1] != KEY_NAME:
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except (ValueError, binascii.Error):
            continue
        key = by_id.get(blob[:4])
        if key is None:
            continue
        try:
            key.verify(blob[4:], signed.encode())
        except InvalidSignature:
            continue
        return Checkpoint(lines[0][len(ORIGIN_PREFIX):], size, root, note)
    raise NoteError("no signature verifies with the public key")
