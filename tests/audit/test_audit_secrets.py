"""No secret, token or password is stored in an audit detail: by key, by shape, by known value,
however deeply nested; and the suite-wide scan really finds one when it is there."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from app import audit
from app.audit.redaction import _SENSITIVE_KEYS, REDACTED, redact_details
from app.models import AuditEvent
from app.secrets import SECRET_STORE
from testkit.builders.audit import session_of
from testkit.checks.audit_leaks import known_secrets, leaks
from testkit.config import TEST_JWT_SECRET

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3IifQ.c2lnbmF0dXJlLXZhbHVl"


def test_credentials_never_reach_the_table(app: Flask) -> None:
    store = SECRET_STORE.get(app)
    internal = "internal-callback-token-value-123"
    store.set("BUYFLOW_INTERNAL_TOKEN", internal)
    store.get("BUYFLOW_INTERNAL_TOKEN")  # handed out: the process now knows it is secret
    details = {
        "password": "hunter2-hunter2",
        "Confirmation-Token": "ct_abcdef123456",
        "nested": {"refresh_token": "rt_abcdef123456", "ok": 1},
        "headers": [{"Authorization": f"Bearer {JWT}"}, {"X-Api-Key": "k"}],
        "note": f"called with {JWT}",
        "echo": internal,
        "jwtSecret": TEST_JWT_SECRET,
        "webhook": "whsec_dGVzdC1zaWduaW5nLXNlY3JldC0wMDAx",
        "material": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        "kept": "plain words",
        "finalHeadHash": "a" * 64,
    }
    with app.app_context(), session_of(app) as session:
        audit.record("test.secrets", details=details, session=session)
        session.commit()
        stored = session.scalars(select(AuditEvent)).one()
    assert stored.details == {
        "password": "[REDACTED]",
        "Confirmation-Token": "[REDACTED]",
        "nested": {"refresh_token": "[REDACTED]", "ok": 1},
        "headers": [{"Authorization": "[REDACTED]"}, {"X-Api-Key": "[REDACTED]"}],
        "note": "[REDACTED]",
        "echo": "[REDACTED]",
        "jwtSecret": "[REDACTED]",
        "webhook": "[REDACTED]",
        "material": "[REDACTED]",
        "kept": "plain words",
        "finalHeadHash": "a" * 64,  # a hash is a proof, not a secret
    }
    assert stored.hash == audit.entry_hash(stored)


def test_the_scan_finds_a_planted_secret(app: Flask) -> None:
    known = known_secrets()
    assert TEST_JWT_SECRET in known
    assert leaks([("usr_1", "x", None, None, {"v": f"Bearer {JWT}"})], known)
    assert leaks([("usr_1", "x", None, None, {"v": TEST_JWT_SECRET})], known)
    assert leaks([("usr_1", "x", None, None, {"v": "plain"})], known) == []


def _names_a_credential(key: str) -> bool:
    """The key rule spelled out: a word of the list in the key lower-cased with ``-`` as ``_``,
    or in it with its ``_`` left out."""
    lowered = key.lower().replace("-", "_")
    return any(word in lowered or word in lowered.replace("_", "") for word in _SENSITIVE_KEYS)


def test_every_spelling_of_a_credential_key_is_redacted_and_no_other_key() -> None:
    """Every word of the list, in every spelling a caller may use (case, ``-``, ``_``, inside a
    longer name), asked twice (the answer is cached); and names that merely resemble one."""
    spellings: list[str] = []
    for word in _SENSITIVE_KEYS:
        for form in (word, word.upper(), word.title(), word.replace("_", "-"),
                     word.replace("_", ""), "_".join(word), "-".join(word).upper()):
            spellings += [form, f"x{form}", f"{form}Hash", f"refresh-{form}-id"]
    harmless = ["method", "sessionId", "reason", "householdId", "finalHeadHash", "pass", "key",
                "api", "private", "sig", "cook", "toke", "cred"]
    for _ in range(2):
        for key in [*spellings, *harmless]:
            expected = _names_a_credential(key)
            assert redact_details({key: "plain"}) == {key: REDACTED if expected else "plain"}, key
    assert all(_names_a_credential(key) for key in spellings)
    assert not any(_names_a_credential(key) for key in harmless)
