"""The settings test apps start from: the suite's own (``BASE_CONFIG``), and a production
configuration that passes every check, for tests that break one thing at a time."""

from __future__ import annotations

import base64
import functools
import os
from typing import Any

from joserfc.jwk import RSAKey

DB_BACKEND = os.environ.get("HEARTHGATE_TEST_DB", "sqlite")
# The PostgreSQL suite's role: it owns the database and its tables, and is neither a superuser
# nor BYPASSRLS, so the row-level security policies (FORCE) bind every test, as in production.
APP_ROLE = "hearthgate_app"
TEST_JWT_SECRET = "test-jwt-secret-0123456789abcdef-not-for-production"

BASE_CONFIG: dict[str, Any] = {
    "HEARTHGATE_ENV": "test",
    "SECRET_STORE_URL": "memory://",
    "AUTH_JWT_SECRET": TEST_JWT_SECRET,
    "RATELIMIT_ENABLED": False,
    "LOG_JSON": True,
    # No timer thread: one that outlived its test would sign the next test's chains with its key.
    "AUDIT_CHECKPOINT_INTERVAL_SECONDS": 0,
    "AUDIT_ANOMALY_ENABLED": False,  # tests/audit/test_audit_anomaly.py turns it on
}


@functools.cache
def rsa_pem() -> str:
    return RSAKey.generate_key(2048).as_pem(private=True).decode()


@functools.cache
def audit_key_pem() -> str:
    from app.audit.signing import generate_pem

    return generate_pem()


PRODUCTION_DATA_KEY = base64.b64encode(bytes(range(32))).decode()  # a test key, 32 bytes


def production_config(**changes: Any) -> dict[str, Any]:
    """A production configuration that passes every check; tests break one thing at a time."""
    config: dict[str, Any] = {
        "HEARTHGATE_ENV": "production",
        "SECRET_STORE_URL": "env://?prefix=HGTEST_UNUSED_",
        "AUTH_JWT_ALGORITHM": "RS256",
        "AUTH_JWT_PRIVATE_KEY": rsa_pem(),
        "AUTH_JWT_SECRET": None,
        "BUYFLOW_INTERNAL_TOKEN": ["buyflow-internal-token-value-0001"],
        "ORCHESTRATOR_INTERNAL_TOKEN": ["orchestrator-internal-token-0001"],
        "HYPERBEAM_EVENT_SIGNING_SECRET": ["whsec_dGVzdC1zaWduaW5nLXNlY3JldC0wMDAx"],
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6399",
        "WEB_CONCURRENCY": 2,
        "CORS_ORIGINS": ["https://spa.example.test"],
        "AUDIT_SIGNING_KEY": audit_key_pem(),
        "DATA_ENCRYPTION_KEYS": [PRODUCTION_DATA_KEY],
    }
    config.update(changes)
    return config
