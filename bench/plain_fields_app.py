"""The service with encryption at rest replaced by a marked passthrough, for
bench/bench_encryption.py only: the same app, routes and decode points, minus AES-GCM, base64 and
the key lookup. The "without encryption" side of that comparison; never deployed.
"""

from typing import Any

from app.crypto import fields

PREFIX = "v1:plain:"  # passes the Sealed column type's check, so the ORM path is the same


def _encrypt(_table: str, _column: str, _row_id: str, plaintext: str, _ring: Any = None) -> str:
    return PREFIX + plaintext


def _decrypt(_table: str, _column: str, _row_id: str, value: str, _ring: Any = None) -> str:
    return value[len(PREFIX):]


def disable_encryption() -> None:
    fields.encrypt = _encrypt  # type: ignore[assignment]
    fields.decrypt = _decrypt  # type: ignore[assignment]


disable_encryption()

from wsgi import app  # noqa: E402,F401 - after the patch
