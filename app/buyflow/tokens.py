"""Confirmation tokens: 256 random bits, shown once, stored as a SHA-256 bound to intent and actor.

The stored hash covers ``intent id : actor id : token``, so a hash copied onto another intent or
another actor never matches, and a token presented for another intent fails like a wrong one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32  # 256 bits


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(intent_id: str, actor_user_id: str, token: str) -> str:
    material = f"{intent_id}:{actor_user_id}:{token}".encode()
    return hashlib.sha256(material).hexdigest()


def token_matches(stored_hash: str, intent_id: str, actor_user_id: str, token: str) -> bool:
    """Constant-time comparison of hashes (equal length whatever the token offered)."""
    offered = token_hash(intent_id, actor_user_id, token)
    return hmac.compare_digest(stored_hash.encode(), offered.encode())
